package flags

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// testValues are the variables of testSet's flags.
type testValues struct {
	workers  int
	qps      float64
	debounce time.Duration
	name     string
	dry      bool
	list     []string
}

// testSet returns a table bound to v.
func testSet(v *testValues) *Set {
	s := &Set{}
	s.Section("A",
		Int(&v.workers, "workers", 8, "Workers.", AtLeast(1)),
		Float(&v.qps, "qps", 100, "QPS.", Positive[float64]()),
		Duration(&v.debounce, "debounce", time.Second, "Debounce.", NotNegative[time.Duration]()),
	)
	s.Section("B",
		String(&v.name, "name", "x", "Name.", NotEmpty()).In("g"),
		Bool(&v.dry, "dry", false, "Dry | run."),
		Parsed(&v.list, "list", "", "List.", func(s string) ([]string, error) {
			if strings.Contains(s, ",,") {
				return nil, errors.New("item is empty")
			}
			if s == "" {
				return nil, nil
			}
			return strings.Split(s, ","), nil
		}),
	)
	return s
}

// parse parses args into a fresh table and validates it.
func parse(args ...string) (testValues, *Set, error) {
	var v testValues
	s := testSet(&v)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s.Register(fs)
	if err := fs.Parse(args); err != nil {
		return v, s, err
	}
	return v, s, s.Validate()
}

func TestDefaultsAndValues(t *testing.T) {
	v, s, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if v.workers != 8 || v.qps != 100 || v.debounce != time.Second || v.name != "x" || v.dry || v.list != nil {
		t.Errorf("defaults %+v", v)
	}
	if len(s.Given()) != 0 {
		t.Errorf("given %q", s.Given())
	}
	v, s, err = parse("--workers=3", "--dry", "--list=a,b", "--debounce=1m0s")
	if err != nil {
		t.Fatal(err)
	}
	if v.workers != 3 || !v.dry || len(v.list) != 2 || v.debounce != time.Minute {
		t.Errorf("values %+v", v)
	}
	if got := strings.Join(s.Given(), " "); got != "workers debounce dry list" {
		t.Errorf("given %q", got)
	}
	if vals := s.Values(); vals["workers"] != "3" || vals["qps"] != "100" || vals["debounce"] != "1m0s" {
		t.Errorf("values %v", vals)
	}
}

func TestChecks(t *testing.T) {
	for args, want := range map[string]string{
		"--workers=0":     "--workers must be at least 1, not 0",
		"--qps=-1":        "--qps must be positive, not -1",
		"--debounce=-1s":  "--debounce must not be negative, not -1s",
		"--name=":         "--name must not be empty",
		"--list=a,,b":     "--list: item is empty",
		"--debounce=soon": `invalid value "soon" for flag -debounce: parse error`,
		"--dry=maybe":     `invalid boolean value "maybe" for -dry: parse error`,
	} {
		_, _, err := parse(strings.Fields(args)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
	// Every problem at once, in table order.
	_, _, err := parse("--debounce=-1s", "--workers=0")
	if err == nil || err.Error() != "--workers must be at least 1, not 0\n--debounce must not be negative, not -1s" {
		t.Errorf("both: %v", err)
	}
}

func TestLoad(t *testing.T) {
	var v testValues
	s := testSet(&v)
	unknown, err := s.Load(map[string]string{"workers": "4", "list": "a", "newer": "1"})
	if err != nil || len(unknown) != 1 || unknown[0] != "newer" {
		t.Fatalf("load: %v, unknown %q", err, unknown)
	}
	if err := s.Validate(); err != nil || v.workers != 4 || len(v.list) != 1 {
		t.Errorf("loaded %+v, %v", v, err)
	}
	if _, err := s.Load(map[string]string{"qps": "fast"}); err == nil || !strings.Contains(err.Error(), `invalid value "fast" for --qps`) {
		t.Errorf("bad value: %v", err)
	}
}

func TestMarkdown(t *testing.T) {
	var v testValues
	md := testSet(&v).Markdown()
	for _, want := range []string{"## A\n", "## B\n", "| `--workers` (int) | `8` | Workers. |", "| `--name` (string, g) | `x` | Name. |",
		`| ` + "`--dry`" + ` (bool) | ` + "`false`" + ` | Dry \| run. |`, "| `--list` (string) | empty | List. |", "| `--debounce` (duration) | `1s` |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown has no %q:\n%s", want, md)
		}
	}
	if got := InGroup(testSet(&v).All(), "g"); len(got) != 1 || got[0].Name != "name" {
		t.Errorf("InGroup = %v", got)
	}
}
