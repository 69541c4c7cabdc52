package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runInDir runs the binary in working directory dir ("" = this one) with
// stdin.
func runInDir(t *testing.T, dir string, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PIPELINE_CACHE="+filepath.Join(t.TempDir(), "cache"), "PIPELINE_DB="), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := result{stdout: o.String(), stderr: e.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// runIn is run in another working directory.
func runIn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	return runInDir(t, dir, env, "", args...)
}

// TestCLI_PredictSimilarModelPathAndEngine: a model given by path at
// extract time is found by predict and similar from another working
// directory without --model; --engine and --precision default to the
// feature set's, another engine is noted, another precision refused.
func TestCLI_PredictSimilarModelPathAndEngine(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "models", "my-vgg.onnx")
	if err := os.MkdirAll(filepath.Dir(model), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tiny)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(model, data, 0o644); err != nil {
		t.Fatal(err)
	}
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b"}, 6)
	env := []string{"PIPELINE_DB=" + filepath.Join(dir, "f.db")}
	run(t, env, "extract", "--model", model, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 0)
	run(t, env, "fit", "--layer", "fc2", "--clf", "logreg", "--name", "lr").want(t, 0)
	images(t, filepath.Join(dir, "new"), []string{"x", "y", "z"}, 1) // the third class's picture is new
	photo := filepath.Join(dir, "new", "z", "00.png")

	elsewhere := t.TempDir()
	runIn(t, elsewhere, env, "predict", "lr", photo).want(t, 0, photo)
	runIn(t, elsewhere, env, "similar", photo, "--layer", "fc2", "--k", "2").want(t, 0, "computed now")
	runIn(t, elsewhere, env, "similar", photo, "--layer", "fc2", "--k", "2", "--engine", "opencv").
		want(t, 0, "engine opencv computes the codes of", "(the engines agree within 1e-5 in fp32)")
	runIn(t, elsewhere, env, "predict", "lr", photo, "--precision", "bf16").want(t, 2, "precision bf16 asked for", "holds fp32 codes")
	runIn(t, elsewhere, env, "predict", "lr", photo, "--store", "--engine", "opencv").want(t, 2, "would mix engines in one set")

	// The file at the recorded path changed: refused, naming it.
	other, err := os.ReadFile("../../testdata/models/vgg-torch-tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(model, other, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, elsewhere, env, "predict", "lr", photo)
	r.want(t, 2, model, "changed since")
	if strings.Contains(r.stdout, "PATH\tLABEL") {
		t.Errorf("a refused predict printed rows: %s", r.stdout)
	}
}
