package extract

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"pipeline/extract/fetch"
	"pipeline/extract/onnx"
)

// Generated is a model architecture the project writes itself, with
// deterministic random weights: the full VGG-16 and ResNet-50 graphs in the
// naming of the ONNX model zoo files or of torchvision exports. They give
// meaningless codes but exercise exactly the paths (and the cost) of the
// real models, for tests, benchmarks and demos where the real weights
// cannot be downloaded. They are generated into the cache on first use.
type Generated struct {
	Name  string
	About string
	build func() (*onnx.Model, error)
}

// GeneratedModels lists the generated architectures by name.
func GeneratedModels() []Generated {
	g := []Generated{
		{"vgg16-arch", "VGG-16 architecture, vgg16-7.onnx (model zoo) naming and declared 1x3x224x224 input, random weights",
			func() (*onnx.Model, error) { return onnx.VGG(onnx.Options{Style: onnx.Zoo}) }},
		{"vgg16-arch-torch", "VGG-16 architecture, torchvision export naming, random weights",
			func() (*onnx.Model, error) { return onnx.VGG(onnx.Options{Style: onnx.Torchvision}) }},
		{"resnet50-arch", "ResNet-50 v1 architecture, resnet50-v1-7.onnx (model zoo) naming, random weights",
			func() (*onnx.Model, error) { return onnx.ResNetV1(onnx.Options{Style: onnx.Zoo}) }},
		{"resnet50-arch-torch", "ResNet-50 v1.5 architecture, torchvision export naming, random weights",
			func() (*onnx.Model, error) { return onnx.ResNetV1(onnx.Options{Style: onnx.Torchvision}) }},
		{"resnet50-v2-arch", "ResNet-50 v2 architecture, resnet50-v2-7.onnx (model zoo) naming, random weights",
			func() (*onnx.Model, error) { return onnx.ResNetV2(onnx.Options{Style: onnx.Zoo}) }},
	}
	sort.SliceStable(g, func(i, j int) bool { return g[i].Name < g[j].Name })
	return g
}

// LookupGenerated returns the generated architecture with that name.
func LookupGenerated(name string) (Generated, bool) {
	for _, g := range GeneratedModels() {
		if g.Name == name {
			return g, true
		}
	}
	return Generated{}, false
}

// GeneratedPath is where a generated model lives in the cache.
func GeneratedPath(cacheDir, name string) string {
	return filepath.Join(cacheDir, "generated", name+".onnx")
}

// Ensure writes the model into the cache unless it is already there, and
// returns its path and SHA-256. Writing is atomic, so concurrent callers
// and interrupted runs never see a partial file.
func (g Generated) Ensure(cacheDir string) (path, sha string, err error) {
	path = GeneratedPath(cacheDir, g.Name)
	if _, err := os.Stat(path); err != nil {
		m, err := g.build()
		if err != nil {
			return "", "", fmt.Errorf("generate %s: %w", g.Name, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", "", fmt.Errorf("generate %s: %w", g.Name, err)
		}
		if err := onnx.WriteFile(path, m); err != nil {
			return "", "", fmt.Errorf("generate %s: %w", g.Name, err)
		}
	}
	sha, err = fileSHA256(path)
	if err != nil {
		return "", "", fmt.Errorf("generated model %s: %w", g.Name, err)
	}
	return path, sha, nil
}

// fileSHA256 hashes a file once; later calls read the sidecar.
func fileSHA256(path string) (string, error) {
	sha, _, err := fetch.HashFileCached(path)
	return sha, err
}
