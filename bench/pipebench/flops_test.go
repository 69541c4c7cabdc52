package main

import (
	"math"
	"os"
	"testing"

	"pipeline/extract"
	"pipeline/extract/onnx"
)

// generatedGraph reads a generated model's graph from the cache, without
// its weights, generating the model first when it is not there (skipped
// with -short: the full-size models are hundreds of MB).
func generatedGraph(t *testing.T, name string) *onnx.Model {
	t.Helper()
	cache, err := extract.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	path := extract.GeneratedPath(cache, name)
	if _, err := os.Stat(path); err != nil {
		if testing.Short() {
			t.Skipf("-short: %s not in the cache (`pipeline models gen %s`)", name, name)
		}
		g, ok := extract.LookupGenerated(name)
		if !ok {
			t.Fatalf("no generated model %s", name)
		}
		if path, _, err = g.Ensure(cache); err != nil {
			t.Fatal(err)
		}
	}
	m, err := onnx.ReadGraph(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCountMACs(t *testing.T) {
	// VGG-16 by hand: 3x3 convolutions at 224, 112, 56, 28, 14, then
	// 25088 -> 4096 -> 4096.
	vgg := int64(0)
	cin := int64(3)
	for i, block := range [][]int64{{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}} {
		side := int64(224 >> i)
		for _, c := range block {
			vgg += side * side * c * cin * 9
			cin = c
		}
	}
	vggFC2 := vgg + 25088*4096 + 4096*4096
	for _, c := range []struct {
		name, model, node string
		want              float64 // MACs per 224 x 224 image
		tol               float64 // relative
	}{
		{"VGG16_fc2_zoo", "vgg16-arch", "vgg0_dense1_relu_fwd", float64(vggFC2), 0},
		{"VGG16_fc2_torchvision", "vgg16-arch-torch", "/classifier/classifier.4/Relu", float64(vggFC2), 0},
		{"VGG16_block5_pool", "vgg16-arch", "vgg0_pool4_fwd", float64(vgg), 0},
		// torchvision's model table: ResNet-50 (v1.5) 4.09 "GFLOPS" (multiply-adds).
		{"ResNet50v15_avg_pool", "resnet50-arch-torch", "/avgpool/GlobalAveragePool", 4.09e9, 0.005},
		// He et al. 2015, table 1: 3.8 x 10^9 "FLOPs" (multiply-adds), v1.
		{"ResNet50v1_avg_pool", "resnet50-arch", "resnetv17_pool1_fwd", 3.8e9, 0.02},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := generatedGraph(t, c.model)
			got, err := countMACs(m, []string{c.node}, 224, 224)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(float64(got.MACs)-c.want) / c.want; d > c.tol {
				t.Errorf("MACs = %d, want %.0f (within %.1f%%, off by %.2f%%)", got.MACs, c.want, 100*c.tol, 100*d)
			}
			if want := 2 * float64(got.MACs) / 1e9; got.GFLOP != want {
				t.Errorf("GFLOP = %v, want %v", got.GFLOP, want)
			}
		})
	}
	t.Run("ErrUnknownNode", func(t *testing.T) {
		m := generatedGraph(t, "resnet50-arch")
		_, err := countMACs(m, []string{"no_such_node"}, 224, 224)
		if err == nil || err.Error() != "no ONNX node produces [no_such_node]" {
			t.Errorf("err = %v, want one naming no_such_node", err)
		}
	})
}
