package plan

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsNoClient keeps the package pure: outside the standard library
// it may import Kubernetes' API types, apimachinery and the ptr helpers,
// and never a client, lister, informer, queue or clock, nor reroll's own
// packages.
func TestImportsNoClient(t *testing.T) {
	allowed := []string{"k8s.io/api/", "k8s.io/apimachinery/", "k8s.io/utils/ptr"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if !strings.Contains(first, ".") {
				continue // the standard library
			}
			ok := false
			for _, prefix := range allowed {
				ok = ok || strings.HasPrefix(path, prefix)
			}
			if !ok {
				t.Errorf("%s imports %s: pkg/plan imports only %v outside the standard library", name, path, allowed)
			}
		}
	}
}
