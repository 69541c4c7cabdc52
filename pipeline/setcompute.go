package pipeline

import (
	"fmt"
	"strings"

	"pipeline/extract"
	"pipeline/store"
)

// setCompute is the compute setting that reproduces feature set fs's codes
// for new images (predict's files, similar's query). The engine is c's when
// given (auto, onednn, opencv: the engines agree within 1e-5 in fp32), else
// the set's. The precision is the set's: a different one given in c is
// refused, since bf16 and fp32 codes are not comparable (cosine ~0.999, not
// 1e-5) and a set never mixes them.
func setCompute(fs store.FeatureSet, c extract.Compute) (extract.Compute, error) {
	prec := fs.Precision
	if prec == "" {
		prec = "fp32"
	}
	if c.Arith != "" && !strings.EqualFold(c.Arith, prec) {
		return c, usagef("precision %s asked for, but %s holds %s codes: %s codes would not be comparable with them; compute in %s (the default) or pick a %s feature set",
			strings.ToLower(c.Arith), fs, prec, strings.ToLower(c.Arith), prec, strings.ToLower(c.Arith))
	}
	c.Arith = ""
	switch prec {
	case "fp16":
		c.Target = "fp16"
	case "bf16":
		c.Arith = "bf16"
	}
	if c.Engine == "" {
		c.Engine = SetEngine(fs)
	}
	return c, nil
}

// engineNote is the note for codes of fs computed by another engine than
// the set's ("" when it is the set's).
func engineNote(fs store.FeatureSet, engine string) string {
	if engine == SetEngine(fs) {
		return ""
	}
	return fmt.Sprintf("engine %s computes the codes of %s, whose stored codes come from engine %s (the engines agree within 1e-5 in fp32)",
		engine, fs, SetEngine(fs))
}
