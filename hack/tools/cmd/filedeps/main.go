// Command filedeps checks two things the project asks of its packages: that
// the files of a package depend on each other one way only, and that no
// function is longer than -max-lines unless its doc comment says why, in a
// paragraph starting "Long:". One-way dependencies let each file be read
// after the ones it uses.
//
//	go run ./cmd/filedeps [-dir DIR] [-max-lines 60] [-graph] PACKAGE...
//
// Patterns are resolved from DIR (default: the current directory), like go
// build's. It type-checks the packages (test files excluded), so a name
// counts as a use of another file's definition exactly when it refers to it.
//
// File A depends on file B when A uses a package-level definition of B (a
// method or a field included). Files that reach each other through these
// dependencies, directly or through other files, form a cycle. For each
// strongly connected component of more than one file, filedeps prints one
// finding: the package, the component's size and files, the shortest cycle
// through its alphabetically first file, and for each step of that cycle the
// definitions that make it:
//
//	example.com/p: 3 files depend on each other in a cycle: a.go b.go c.go
//		cycle: a.go -> b.go -> c.go -> a.go
//		a.go uses b.go's [T newT]
//		b.go uses c.go's [helper]
//		c.go uses a.go's [Run]
//
// A component of two files is a pair that uses each other's definitions. A
// larger one can hold several cycles, of which filedeps prints one: breaking
// it may leave another, which the next run reports. It prints every finding
// and exits 1 if there is any.
//
// With -graph it checks nothing and instead prints, for each package, its
// files in dependency order, lowest layer first: the layer (0 for a file that
// uses no other file of the package, else one more than the highest layer it
// uses), the file, and the files it uses; files of one cycle share a layer
// and are marked:
//
//	example.com/p
//		0 names.go
//		1 metrics.go -> names.go
//		2 server.go -> metrics.go names.go
//		3 a.go -> b.go server.go (in a cycle of 2 files: a.go b.go)
//		3 b.go -> a.go (in a cycle of 2 files: a.go b.go)
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
)

// main checks the packages named on the command line, or with -graph
// prints their file layering.
func main() {
	maxLines := flag.Int("max-lines", 60, "the longest function allowed without a reason")
	dir := flag.String("dir", "", "the directory patterns are resolved from")
	graph := flag.Bool("graph", false, "print each package's files in dependency order instead of checking")
	flag.Parse()
	cfg := &packages.Config{Dir: *dir, Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo}
	pkgs, err := packages.Load(cfg, flag.Args()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "filedeps:", err)
		os.Exit(2)
	}
	if packages.PrintErrors(pkgs) > 0 {
		os.Exit(2)
	}
	// packages.Load returns the packages in no set order.
	slices.SortFunc(pkgs, func(a, b *packages.Package) int { return strings.Compare(a.PkgPath, b.PkgPath) })
	if *graph {
		for _, p := range pkgs {
			fmt.Println(p.PkgPath)
			for _, line := range layering(fileUses(p)) {
				fmt.Println("\t" + line)
			}
		}
		return
	}
	var findings []string
	for _, p := range pkgs {
		findings = append(findings, cycleFindings(p.PkgPath, fileUses(p))...)
		findings = append(findings, longFunctions(p, *maxLines)...)
	}
	for _, f := range findings {
		fmt.Println(f)
	}
	if len(findings) > 0 {
		os.Exit(1)
	}
}

// fileUses returns the file dependency graph of p: uses[a][b] lists, sorted,
// the package-level definitions (methods and fields included) of file b that
// file a uses. Every file of p is a key, so that -graph shows the files that
// use no other file too.
func fileUses(p *packages.Package) map[string]map[string][]string {
	uses := map[string]map[string][]string{}
	for _, f := range p.Syntax {
		uses[filepath.Base(p.Fset.Position(f.Pos()).Filename)] = map[string][]string{}
	}
	for ident, obj := range p.TypesInfo.Uses {
		if obj.Pkg() != p.Types || !definedAtPackageLevel(obj) {
			continue
		}
		from := filepath.Base(p.Fset.Position(ident.Pos()).Filename)
		to := filepath.Base(p.Fset.Position(obj.Pos()).Filename)
		if from == to {
			continue
		}
		if uses[from] == nil {
			uses[from] = map[string][]string{}
		}
		if !slices.Contains(uses[from][to], obj.Name()) {
			uses[from][to] = append(uses[from][to], obj.Name())
		}
	}
	// TypesInfo.Uses is a map: sort so that the output does not change
	// from run to run.
	for _, targets := range uses {
		for _, names := range targets {
			slices.Sort(names)
		}
	}
	return uses
}

// definedAtPackageLevel reports whether obj is a package-level object, a
// method, or a field of a package-level type: what another file can use.
func definedAtPackageLevel(obj types.Object) bool {
	switch o := obj.(type) {
	case *types.Func:
		return o.Signature().Recv() != nil || o.Parent() == o.Pkg().Scope()
	case *types.Var:
		return o.IsField() || o.Parent() == o.Pkg().Scope()
	}
	return obj.Parent() == obj.Pkg().Scope()
}

// cycleFindings reports, for each strongly connected component of more than
// one file in the graph uses (see fileUses), the component and the shortest
// cycle through its first file, with the definitions each step of the cycle
// uses, sorted by first file. A finding spans several lines; its first names
// the package pkg.
func cycleFindings(pkg string, uses map[string]map[string][]string) []string {
	// components lists them in dependency order; a reader looks the
	// files up by name.
	comps := components(uses)
	slices.SortFunc(comps, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	var out []string
	for _, comp := range comps {
		if len(comp) < 2 {
			continue
		}
		cycle := shortestCycle(uses, comp)
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %d files depend on each other in a cycle: %s\n", pkg, len(comp), strings.Join(comp, " "))
		fmt.Fprintf(&b, "\tcycle: %s", strings.Join(cycle, " -> "))
		for i := 0; i+1 < len(cycle); i++ {
			fmt.Fprintf(&b, "\n\t%s uses %s's %v", cycle[i], cycle[i+1], uses[cycle[i]][cycle[i+1]])
		}
		out = append(out, b.String())
	}
	return out
}

// components returns the strongly connected components of the graph uses
// (Tarjan's algorithm), each sorted. Nodes and edges are visited in sorted
// order, so the result is the same on every run; and Tarjan's algorithm
// completes a component only after every component it reaches, so each
// component comes after the components it uses.
func components(uses map[string]map[string][]string) [][]string {
	index := map[string]int{} // the order in which the search reached each file
	low := map[string]int{}   // the lowest index reachable through the search tree
	onStack := map[string]bool{}
	var stack []string
	var out [][]string
	var connect func(v string)
	connect = func(v string) {
		index[v], low[v] = len(index), len(index)
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range slices.Sorted(maps.Keys(uses[v])) {
			if _, seen := index[w]; !seen {
				connect(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		// v is the root of a component: the files above it on the stack.
		i := slices.Index(stack, v)
		comp := slices.Clone(stack[i:])
		stack = stack[:i]
		for _, w := range comp {
			onStack[w] = false
		}
		slices.Sort(comp)
		out = append(out, comp)
	}
	for _, v := range nodes(uses) {
		if _, seen := index[v]; !seen {
			connect(v)
		}
	}
	return out
}

// nodes returns, sorted, the files of the graph uses: those that use a file
// and those used.
func nodes(uses map[string]map[string][]string) []string {
	var all []string
	for a, targets := range uses {
		all = append(all, a)
		for b := range targets {
			all = append(all, b)
		}
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// shortestCycle returns a shortest cycle through comp[0] that stays within
// comp, a strongly connected component of uses of more than one file, as the
// path from comp[0] back to it: [a b c a]. A breadth-first search from
// comp[0] dequeues files in order of distance, so the first one that uses
// comp[0] closes a shortest cycle; neighbours are visited sorted so that ties
// are broken the same way on every run.
func shortestCycle(uses map[string]map[string][]string, comp []string) []string {
	start := comp[0]
	parent := map[string]string{start: ""}
	queue := []string{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		if uses[v][start] != nil {
			path := []string{start}
			for w := v; w != start; w = parent[w] {
				path = append(path, w)
			}
			path = append(path, start)
			slices.Reverse(path)
			return path
		}
		for _, w := range slices.Sorted(maps.Keys(uses[v])) {
			if _, seen := parent[w]; !seen && slices.Contains(comp, w) {
				parent[w] = v
				queue = append(queue, w)
			}
		}
	}
	// Unreachable for a strongly connected component of two or more files.
	return nil
}

// layering returns the files of the graph uses in dependency order, one
// line each: "layer file -> used files", lowest layer first, by name within
// a layer. A file's layer is 0 if it uses no other file, else one more than
// the highest layer it uses outside its own cycle: the files of a cycle
// share a layer, and their lines say so, since no order of them is one-way.
func layering(uses map[string]map[string][]string) []string {
	type entry struct {
		layer int
		file  string
		cycle []string
	}
	layer := map[string]int{}
	var entries []entry
	// components lists each component after those it uses, so their
	// layers are known when its own is computed.
	for _, comp := range components(uses) {
		l := 0
		for _, v := range comp {
			for w := range uses[v] {
				if !slices.Contains(comp, w) {
					l = max(l, layer[w]+1)
				}
			}
		}
		for _, v := range comp {
			layer[v] = l
			entries = append(entries, entry{l, v, comp})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if a.layer != b.layer {
			return a.layer - b.layer
		}
		return strings.Compare(a.file, b.file)
	})
	var out []string
	for _, e := range entries {
		line := fmt.Sprintf("%d %s", e.layer, e.file)
		if used := slices.Sorted(maps.Keys(uses[e.file])); len(used) > 0 {
			line += " -> " + strings.Join(used, " ")
		}
		if len(e.cycle) > 1 {
			line += fmt.Sprintf(" (in a cycle of %d files: %s)", len(e.cycle), strings.Join(e.cycle, " "))
		}
		out = append(out, line)
	}
	return out
}

// longFunctions reports the functions of p longer than maxLines lines whose
// doc comment has no paragraph starting "Long:".
func longFunctions(p *packages.Package, maxLines int) []string {
	var out []string
	for _, f := range p.Syntax {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			lines := lineOf(p.Fset, fn.End()) - lineOf(p.Fset, fn.Pos()) + 1
			if lines > maxLines && (fn.Doc == nil || !strings.Contains(fn.Doc.Text(), "Long:")) {
				out = append(out, fmt.Sprintf("%s: %s is %d lines, and its comment gives no reason (\"Long: ...\")",
					p.Fset.Position(fn.Pos()), fn.Name.Name, lines))
			}
		}
	}
	return out
}

// lineOf returns the line of pos.
func lineOf(fset *token.FileSet, pos token.Pos) int { return fset.Position(pos).Line }
