package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// flagNamesLeft are string literals of store/, extract/ and pipeline/ that
// may name a CLI flag (file TAB literal); none today. A bad value is named
// by its option ("pool \"bogus\": want avg, max or none"), advice on which
// flag to use lives in hints (exit.go), and pipeline/recommend.go writes
// the command line `sweep` recommends, which is output.
var flagNamesLeft = map[string]bool{}

// TestFlagNames_LowerLayers: store/, extract/, pipeline/ and classify/ say what is
// wrong; which flag helps is the CLI's hint. Every string literal there that
// names a flag is either the recommended command line of sweep
// (pipeline/recommend.go) or listed in flagNamesLeft.
func TestFlagNames_LowerLayers(t *testing.T) {
	flag := regexp.MustCompile(`(^|[^-\w])--[a-z]`)
	seen := map[string]bool{}
	for _, dir := range []string{"pipeline", "extract", "store", "classify"} {
		err := filepath.WalkDir(filepath.Join("../..", dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			rel, _ := filepath.Rel("../..", path)
			if rel == filepath.Join("pipeline", "recommend.go") {
				return nil // the command line sweep recommends: output, not a message
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				l, ok := n.(*ast.BasicLit)
				if !ok || l.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(l.Value)
				if err != nil || !flag.MatchString(s) {
					return true
				}
				key := filepath.ToSlash(rel) + "\t" + s
				seen[key] = true
				if !flagNamesLeft[key] {
					t.Errorf("%s: %q names a CLI flag: say what is wrong there, and give the flag as a hint in cmd/pipeline (hints in exit.go, or withHint)", rel, s)
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for k := range flagNamesLeft {
		if !seen[k] {
			t.Errorf("flagNamesLeft lists %q, which is gone: drop it from the list", k)
		}
	}
}

// TestHints_Table: every condition of the hint table gets its hint, wrapped
// or not, and its sentinel's own message names no flag.
func TestHints_Table(t *testing.T) {
	flag := regexp.MustCompile(`(^|[^-\w])--[a-z]`)
	for _, h := range hints {
		if got := hintOf(fmt.Errorf("cmd: %w", h.err)); got != h.hint {
			t.Errorf("hint of %v = %q, want %q", h.err, got, h.hint)
		}
		if flag.MatchString(h.err.Error()) {
			t.Errorf("sentinel %q names a flag", h.err)
		}
		if !flag.MatchString(h.hint) && !strings.Contains(h.hint, "pipeline ") {
			t.Errorf("hint %q names neither a flag nor a command", h.hint)
		}
	}
	// A hint the command attached wins over the table's.
	err := withHint(fmt.Errorf("x: %w", hints[0].err), "the command's own")
	if got := hintOf(err); got != "the command's own" {
		t.Errorf("hint = %q, want the command's own", got)
	}
	if hintOf(errors.New("plain")) != "" {
		t.Error("a plain error has a hint")
	}
}
