package main

import (
	"slices"
	"strings"
	"testing"
)

// edges is shorthand for one file's edges in a file dependency graph: the
// files it uses, each with the definitions it uses there.
type edges = map[string][]string

// TestGraph checks the pure graph functions on small graphs: the strongly
// connected components, the cycle findings and the -graph layering.
func TestGraph(t *testing.T) {
	tests := []struct {
		name           string
		graph          map[string]edges
		wantComponents [][]string
		wantFindings   []string
		wantLayering   []string
	}{{
		name: "no cycle",
		graph: map[string]edges{
			"a.go": {"b.go": {"B"}},
			"b.go": {"c.go": {"C"}},
			"d.go": {},
		},
		wantComponents: [][]string{{"c.go"}, {"b.go"}, {"a.go"}, {"d.go"}},
		wantLayering: []string{
			"0 c.go",
			"0 d.go",
			"1 b.go -> c.go",
			"2 a.go -> b.go",
		},
	}, {
		name: "a pair",
		graph: map[string]edges{
			"a.go": {"b.go": {"B", "newB"}},
			"b.go": {"a.go": {"A"}},
		},
		wantComponents: [][]string{{"a.go", "b.go"}},
		wantFindings: []string{
			"p: 2 files depend on each other in a cycle: a.go b.go\n" +
				"\tcycle: a.go -> b.go -> a.go\n" +
				"\ta.go uses b.go's [B newB]\n" +
				"\tb.go uses a.go's [A]",
		},
		wantLayering: []string{
			"0 a.go -> b.go (in a cycle of 2 files: a.go b.go)",
			"0 b.go -> a.go (in a cycle of 2 files: a.go b.go)",
		},
	}, {
		name: "a 3-cycle, and a file outside it that uses it",
		graph: map[string]edges{
			"a.go": {"b.go": {"B"}},
			"b.go": {"c.go": {"C"}},
			"c.go": {"a.go": {"A"}},
			"d.go": {"a.go": {"A"}},
		},
		wantComponents: [][]string{{"a.go", "b.go", "c.go"}, {"d.go"}},
		wantFindings: []string{
			"p: 3 files depend on each other in a cycle: a.go b.go c.go\n" +
				"\tcycle: a.go -> b.go -> c.go -> a.go\n" +
				"\ta.go uses b.go's [B]\n" +
				"\tb.go uses c.go's [C]\n" +
				"\tc.go uses a.go's [A]",
		},
		wantLayering: []string{
			"0 a.go -> b.go (in a cycle of 3 files: a.go b.go c.go)",
			"0 b.go -> c.go (in a cycle of 3 files: a.go b.go c.go)",
			"0 c.go -> a.go (in a cycle of 3 files: a.go b.go c.go)",
			"1 d.go -> a.go",
		},
	}, {
		name: "the shortest of the cycles through the first file",
		graph: map[string]edges{
			"a.go": {"b.go": {"B"}},
			"b.go": {"c.go": {"C"}},
			"c.go": {"a.go": {"A"}, "d.go": {"D"}},
			"d.go": {"a.go": {"A"}},
		},
		wantComponents: [][]string{{"a.go", "b.go", "c.go", "d.go"}},
		wantFindings: []string{
			"p: 4 files depend on each other in a cycle: a.go b.go c.go d.go\n" +
				"\tcycle: a.go -> b.go -> c.go -> a.go\n" +
				"\ta.go uses b.go's [B]\n" +
				"\tb.go uses c.go's [C]\n" +
				"\tc.go uses a.go's [A]",
		},
	}, {
		name: "two separate cycles, one using the other",
		graph: map[string]edges{
			"a.go": {"b.go": {"B"}},
			"b.go": {"a.go": {"A"}, "c.go": {"C"}},
			"c.go": {"d.go": {"D"}},
			"d.go": {"e.go": {"E"}},
			"e.go": {"c.go": {"C"}},
		},
		wantComponents: [][]string{{"c.go", "d.go", "e.go"}, {"a.go", "b.go"}},
		wantFindings: []string{
			"p: 2 files depend on each other in a cycle: a.go b.go\n" +
				"\tcycle: a.go -> b.go -> a.go\n" +
				"\ta.go uses b.go's [B]\n" +
				"\tb.go uses a.go's [A]",
			"p: 3 files depend on each other in a cycle: c.go d.go e.go\n" +
				"\tcycle: c.go -> d.go -> e.go -> c.go\n" +
				"\tc.go uses d.go's [D]\n" +
				"\td.go uses e.go's [E]\n" +
				"\te.go uses c.go's [C]",
		},
		wantLayering: []string{
			"0 c.go -> d.go (in a cycle of 3 files: c.go d.go e.go)",
			"0 d.go -> e.go (in a cycle of 3 files: c.go d.go e.go)",
			"0 e.go -> c.go (in a cycle of 3 files: c.go d.go e.go)",
			"1 a.go -> b.go (in a cycle of 2 files: a.go b.go)",
			"1 b.go -> a.go c.go (in a cycle of 2 files: a.go b.go)",
		},
	}, {
		name: "a DAG with a diamond",
		graph: map[string]edges{
			"a.go": {"b.go": {"B"}, "c.go": {"C"}},
			"b.go": {"d.go": {"D"}},
			"c.go": {"d.go": {"D"}},
		},
		wantComponents: [][]string{{"d.go"}, {"b.go"}, {"c.go"}, {"a.go"}},
		wantLayering: []string{
			"0 d.go",
			"1 b.go -> d.go",
			"1 c.go -> d.go",
			"2 a.go -> b.go c.go",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := components(tt.graph); !slices.EqualFunc(got, tt.wantComponents, slices.Equal) {
				t.Errorf("components = %q, want %q", got, tt.wantComponents)
			}
			if got := cycleFindings("p", tt.graph); !slices.Equal(got, tt.wantFindings) {
				t.Errorf("cycleFindings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.wantFindings, "\n"))
			}
			if tt.wantLayering == nil {
				return
			}
			if got := layering(tt.graph); !slices.Equal(got, tt.wantLayering) {
				t.Errorf("layering =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.wantLayering, "\n"))
			}
		})
	}
}
