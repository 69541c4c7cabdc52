package extract

import (
	"path/filepath"
	"testing"

	"pipeline/extract/keras"
	"pipeline/internal/testutil"
)

// TestKeras_SingleLayers: a layer requested alone gives its own values,
// even where OpenCV fuses it with its neighbours when nothing between is
// requested (a convolution followed by its BatchNormalization and ReLU; a
// BatchNormalization alone; a block's add).
func TestKeras_SingleLayers(t *testing.T) {
	img := randomNRGBA(13, 80, 90)
	for _, kc := range []kerasCase{kerasCases()[4], kerasCases()[6]} {
		t.Run(kc.name, func(t *testing.T) {
			dir := t.TempDir()
			h5, mem := writeKerasCase(t, dir, kc, 6)
			model, _, _ := kerasModel(t, filepath.Join(dir, "cache"), "k", h5, Overrides{Size: "64"})
			p := model.Preprocess
			ref, err := keras.Forward(&kc.spec, mem, pilNearestInput(img, p.Width))
			if err != nil {
				t.Fatal(err)
			}
			blob, _, err := p.FileBlob(testutil.EncodePNG(t, img), DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			layers := []string{"conv1_conv", "conv1_bn", "conv2_block1_1_conv", "conv2_block1_2_bn", "conv3_block2_add", "conv4_block1_0_conv"}
			if kc.spec.Layers[2].Name == "conv1" {
				layers = []string{"conv1", "bn_conv1", "res2a_branch2a", "bn2b_branch2b", "res3a_branch1", "bn4a_branch1"}
			}
			for _, l := range layers {
				ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: []string{l}, Pool: "none"})
				if err != nil {
					t.Fatal(err)
				}
				got, err := ex.Forward(blob, 1)
				ex.Close()
				if err != nil {
					t.Fatal(err)
				}
				if e := testutil.RelErr(got[0][0], ref[l].NCHW()); e > 1e-5 {
					t.Errorf("%s alone: max relative error %.3g", l, e)
				}
			}
		})
	}
}
