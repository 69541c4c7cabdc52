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

// flagNamesLeft are the string literals of store/, extract/ and pipeline/
// that still name a CLI flag: a bad value named by its flag ("--pool %q:
// want avg, max or none"), and the command line `sweep` recommends, which
// is output. Advice on which flag to use lives in hints (exit.go) instead;
// a new literal naming a flag fails TestFlagNames_LowerLayers.
var flagNamesLeft = map[string]bool{
	"pipeline/classify.go\t--name %q: use letters, digits, '.', '_' or '-' (e.g. cats-svm)":                                                   true,
	"pipeline/classify.go\t--test-frac %v must be between 0 and 1":                                                                            true,
	"pipeline/classify.go\tfit --final: refitting on all %d labelled vectors (%s); no held-out estimate will exist for this classifier":       true,
	"pipeline/classify.go\tit was fitted without --cv, so there is no estimate at all":                                                        true,
	"pipeline/classify.go\t%s: deleted the automatic split of %d images; the split chosen by the user (folder layout, extract --split) stays": true,
	"pipeline/export.go\t--format %q: want libsvm, csv or npy":                                                                                true,
	"pipeline/export.go\t--split %q: want all, train or test":                                                                                 true,
	"pipeline/featureset.go\t--pool %q: want avg, max or none":                                                                                true,
	"pipeline/layout.go\t--split %q: want train or test":                                                                                      true,
	"pipeline/similar.go\t--k %d: want a positive number of neighbours":                                                                       true,
	"pipeline/similar.go\t--metric %s: want cosine or l2":                                                                                     true,
	"pipeline/sqlrun.go\t-f %s: no such file, and no example of that name (examples: %s; `pipeline sql --list` describes them)":               true,
	"pipeline/sweep.go\t--cv %d: want 2 or more folds":                                                                                        true,
	"pipeline/sweep.go\t--test-frac %v must be between 0 and 1":                                                                               true,
	"pipeline/sweep.go\t--pool %q: want avg, max or none":                                                                                     true,
	"extract/backend.go\t--target %q: want fp32 or fp16":                                                                                      true,
	"extract/backend.go\t%w: --target fp16 needs --backend opencl or cuda; OpenCV's CPU backend computes in fp32 only":                        true,
	"extract/backend.go\t--backend %q: want cpu, opencl or cuda":                                                                              true,
	"extract/backend.go\t%w: --backend %s --target %s is not available in this OpenCV build (%s); available: %s":                              true,
	"extract/decode.go\t%w: %dx%d = %s pixels, over --max-pixels %s":                                                                          true,
	"extract/engine.go\t--engine %q: want auto, onednn or opencv: %w":                                                                         true,
	"extract/engine.go\t--precision %q: want fp32 or bf16: %w":                                                                                true,
	"extract/engine.go\t--precision bf16 runs on the oneDNN engine only, not with --engine opencv: %w":                                        true,
	"extract/engine.go\t--precision bf16 runs on the oneDNN engine (CPU) only, not with --backend %s --target %s: %w":                         true,
	"extract/engine.go\t--engine onednn runs ONNX models only; %s is a %s model: %w":                                                          true,
	"extract/engine.go\t--precision bf16 runs on the oneDNN engine, which runs ONNX models only; %s is a %s model: %w":                        true,
	"extract/engine.go\t--engine onednn runs on the CPU only, not with --backend %s --target %s: %w":                                          true,
	"extract/engine.go\t--precision bf16: %s: %w":                                                                                             true,
	"extract/extractor.go\t--pool %q: want avg, max or none":                                                                                  true,
	"extract/extractor.go\tno layer requested (--layer)":                                                                                      true,
	"extract/keras_model.go\tmodel %s: --pool1-pad %q: want true or false":                                                                    true,
	"extract/keras_model.go\tmodel %s: --size %q: a Keras model takes a square input":                                                         true,
	"extract/preprocess.go\t--mean %w":                                                                                                        true,
	"extract/preprocess.go\t--std %w":                                                                                                         true,
	"extract/preprocess.go\t--swap-rb %q: want true or false":                                                                                 true,
}

// TestFlagNames_LowerLayers: store/, extract/ and pipeline/ say what is
// wrong; which flag helps is the CLI's hint. Every string literal there that
// names a flag is either the recommended command line of sweep
// (pipeline/recommend.go) or listed in flagNamesLeft.
func TestFlagNames_LowerLayers(t *testing.T) {
	flag := regexp.MustCompile(`(^|[^-\w])--[a-z]`)
	seen := map[string]bool{}
	for _, dir := range []string{"pipeline", "extract", "store"} {
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
