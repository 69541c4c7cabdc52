package main

import "flag"

// addSetEngineFlags adds --engine and --precision to a command that
// computes codes for an existing feature set (predict, similar): both
// default to the set's, so that the codes are comparable with the stored
// ones.
func addSetEngineFlags(fs *flag.FlagSet) (engine, precision *string) {
	engine = fs.String("engine", "", "inference engine for new images: auto (oneDNN for ONNX graphs it supports, else OpenCV, with a note), onednn or opencv (default: the feature set's engine; the engines agree within 1e-5 in fp32)")
	precision = fs.String("precision", "", "fp32 or bf16 for new images (default: the feature set's precision; another one is refused, its codes would not be comparable)")
	return engine, precision
}
