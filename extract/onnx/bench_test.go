package onnx

import (
	"path/filepath"
	"testing"
)

func BenchmarkRun_SmallModels(b *testing.B) {
	for _, s := range SmallModels() {
		m, err := s.Build()
		if err != nil {
			b.Fatal(err)
		}
		in := map[string]*Tensor{s.Input: randomInput(s.Dims, 1)}
		b.Run(s.File, func(b *testing.B) {
			for b.Loop() {
				if _, err := Run(m, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadGraph_ResNet50(b *testing.B) {
	m, err := ResNetV1(Options{})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "r50.onnx")
	if err := WriteFile(path, m); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := ReadGraph(path); err != nil {
			b.Fatal(err)
		}
	}
}
