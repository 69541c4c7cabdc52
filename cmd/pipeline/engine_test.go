package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"pipeline/extract"
	"pipeline/internal/testutil"
)

func TestCLI_Engine(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b"}, 4)
	sig := testutil.SigmoidModel(t, dir, 16)
	db := filepath.Join(dir, "f.db")
	env := []string{"PIPELINE_DB=" + db}
	extractJSON := func(args ...string) (struct{ Engine, Precision string }, result) {
		r := run(t, env, append([]string{"extract", "--images", imgs, "--json"}, args...)...)
		var s struct{ Engine, Precision string }
		if r.code == 0 {
			if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
				t.Fatalf("extract --json: %v\n%s", err, r.stdout)
			}
		}
		return s, r
	}

	// The same layer on both engines: two feature sets, and runs that say which.
	s, r := extractJSON("--model", tiny, "--preprocess", "caffe", "--layer", "fc2")
	r.want(t, 0)
	if s.Engine != "onednn" || s.Precision != "fp32" {
		t.Errorf("auto on the tiny VGG: engine %q precision %q, want onednn fp32", s.Engine, s.Precision)
	}
	s, r = extractJSON("--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--engine", "opencv")
	r.want(t, 0)
	if s.Engine != "opencv" {
		t.Errorf("--engine opencv: engine %q", s.Engine)
	}
	run(t, env, "sql", "SELECT engine || ' ' || precision || ' ' || count(*) FROM feature_sets JOIN features ON feature_set_id = feature_sets.id GROUP BY engine ORDER BY engine").
		want(t, 0, "onednn fp32 8", "opencv fp32 8")
	run(t, env, "sql", "SELECT group_concat(engine, ',') FROM (SELECT engine FROM runs WHERE command = 'extract' ORDER BY id)").
		want(t, 0, "onednn,opencv")

	// Unsupported operator: --engine onednn refuses (exit 2, naming it);
	// auto runs OpenCV and says why.
	_, r = extractJSON("--model", sig, "--preprocess", "torch", "--layer", "gap", "--engine", "onednn")
	r.want(t, 2, `ONNX node "sig": operator Sigmoid: not supported by the oneDNN engine`)
	s, r = extractJSON("--model", sig, "--preprocess", "torch", "--layer", "gap")
	r.want(t, 0, `engine opencv: ONNX node \"sig\": operator Sigmoid`)
	if s.Engine != "opencv" {
		t.Errorf("auto on an unsupported graph: engine %q, want opencv", s.Engine)
	}
	run(t, env, "extract", "--images", imgs, "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--engine", "tvm").
		want(t, 2, `engine "tvm": want auto, onednn or opencv`)
	run(t, env, "extract", "--images", imgs, "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--engine", "opencv", "--precision", "bf16").
		want(t, 2, "precision bf16 runs on the oneDNN engine only")

	// bf16: a feature set of its own where the CPU has it, a refusal elsewhere.
	if ok, why := extract.BF16Available(); ok {
		s, r = extractJSON("--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--precision", "bf16")
		r.want(t, 0)
		if s.Engine != "onednn" || s.Precision != "bf16" {
			t.Errorf("--precision bf16: engine %q precision %q", s.Engine, s.Precision)
		}
		run(t, env, "sql", "SELECT count(*) FROM feature_sets WHERE precision = 'bf16' AND engine = 'onednn'").want(t, 0, "1")
	} else {
		run(t, env, "extract", "--images", imgs, "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--precision", "bf16").
			want(t, 2, "precision bf16: "+why)
	}
	// On any CPU: oneDNN told to stop at avx512_core has no bf16.
	run(t, append(env, "ONEDNN_MAX_CPU_ISA=AVX512_CORE"), "extract", "--images", imgs, "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--precision", "bf16").
		want(t, 2, "precision bf16: oneDNN's best instruction set on this CPU is avx512_core; bf16 needs avx512_bf16")
}
