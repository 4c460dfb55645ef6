// Command filedeps checks two things the project asks of its packages: that
// no two files of a package use each other's definitions (dependencies
// between files go one way, so each file can be read after the ones it
// uses), and that no function is longer than -max-lines unless its doc
// comment says why, in a paragraph starting "Long:".
//
//	go run ./cmd/filedeps [-dir DIR] [-max-lines 60] PACKAGE...
//
// Patterns are resolved from DIR (default: the current directory), like go
// build's. It
// type-checks the packages (test files excluded), so a name counts as a use
// of another file's definition exactly when it refers to it. It prints
// every finding and exits 1 if there is any.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
)

func main() {
	maxLines := flag.Int("max-lines", 60, "the longest function allowed without a reason")
	dir := flag.String("dir", "", "the directory patterns are resolved from")
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
	var findings []string
	for _, p := range pkgs {
		findings = append(findings, mutualDependencies(p)...)
		findings = append(findings, longFunctions(p, *maxLines)...)
	}
	for _, f := range findings {
		fmt.Println(f)
	}
	if len(findings) > 0 {
		os.Exit(1)
	}
}

// mutualDependencies reports each pair of p's files that use each other's
// package-level definitions (methods and fields included).
func mutualDependencies(p *packages.Package) []string {
	// uses[a][b] lists the names file a uses that file b defines.
	uses := map[string]map[string][]string{}
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
	var out []string
	for _, a := range slices.Sorted(mapsKeys(uses)) {
		for _, b := range slices.Sorted(mapsKeys(uses[a])) {
			if a < b && uses[b][a] != nil {
				slices.Sort(uses[a][b])
				slices.Sort(uses[b][a])
				out = append(out, fmt.Sprintf("%s: %s and %s depend on each other: %s uses %v; %s uses %v",
					p.PkgPath, a, b, a, uses[a][b], b, uses[b][a]))
			}
		}
	}
	return out
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

// mapsKeys iterates over the keys of m.
func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
