package engine

import (
	"go/build"
	"strings"
	"testing"
)

// TestNoDriverImport keeps the seam: engine, and every package it imports,
// imports nothing outside the standard library and osc's own packages, so
// no database driver (the dialects in package dialect bring those).
func TestNoDriverImport(t *testing.T) {
	seen := map[string]bool{}
	var walk func(path, from string)
	walk = func(path, from string) {
		if seen[path] {
			return
		}
		seen[path] = true
		pkg, err := build.Import(path, ".", 0)
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		if pkg.Goroot {
			return
		}
		if path != "osc" && !strings.HasPrefix(path, "osc/") {
			t.Errorf("engine depends on %s (imported by %s)", path, from)
			return
		}
		for _, imp := range pkg.Imports {
			walk(imp, path)
		}
	}
	walk("osc/engine", "")
}
