package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"pipeline/errclass"
	"pipeline/extract"
	"pipeline/extract/fetch"
	"pipeline/extract/onnx"
)

// ModelSpec is how a command names a model: --model, --config and the
// preprocessing flags.
type ModelSpec struct {
	Model     string            // catalog name, generated architecture name, or a file path
	Config    string            // Caffe .prototxt / TensorFlow .pbtxt for a path
	Overrides extract.Overrides // --preprocess and the per-field flags
	// NeedPreprocess: fail when a bare model file comes without --preprocess
	// (extracting with a guessed convention would store wrong codes).
	NeedPreprocess bool
	CacheDir       string // "" = extract.CacheDir()
}

// ResolveModel finds the model files, verifies them and works out the
// preprocessing and the input size.
func ResolveModel(s ModelSpec) (extract.Model, error) {
	cache := s.CacheDir
	if cache == "" {
		d, err := extract.CacheDir()
		if err != nil {
			return extract.Model{}, err
		}
		cache = d
	}
	var m extract.Model
	var err error
	switch {
	case looksLikePath(s.Model):
		m, err = modelFromPath(s.Model, s.Config)
	default:
		if g, ok := extract.LookupGenerated(s.Model); ok {
			m, err = generatedModel(g, cache)
			break
		}
		m, err = modelFromCatalog(s.Model, cache)
		if errors.Is(err, extract.ErrUnknownModel) {
			if _, statErr := os.Stat(s.Model); statErr == nil {
				m, err = modelFromPath(s.Model, s.Config)
			}
		}
	}
	if err != nil {
		return m, err
	}
	if s.NeedPreprocess && !m.HasPreprocess && s.Overrides.Preset == "" {
		return m, usagef("model %s comes without a preprocessing convention: pass --preprocess caffe (Keras VGG16/ResNet50 and the Caffe originals: BGR, mean subtracted), torch (torchvision and the ONNX model zoo: RGB, /255, ImageNet mean and std) or tf (Keras tf mode: RGB scaled to [-1, 1]); or register it once with `pipeline models add NAME --file %s --preprocess ...`",
			m.Path, m.Path)
	}
	if m.Preprocess, err = s.Overrides.Apply(m.Preprocess); err != nil {
		return m, usagef("model %s: %v", m.Name, err)
	}
	if s.Overrides.Preset != "" {
		m.HasPreprocess = true
	}
	return m, nil
}

func looksLikePath(s string) bool {
	if strings.ContainsRune(s, os.PathSeparator) {
		return true
	}
	switch strings.ToLower(filepath.Ext(s)) {
	case ".onnx", ".caffemodel", ".prototxt", ".pb":
		return true
	}
	return false
}

// defaultPreprocess is the starting point for a model without a
// convention: only its size matters until the user picks a preset.
func defaultPreprocess(dims []int) extract.Preprocess {
	p := extract.Presets["torch"]
	p.Preset = ""
	p.Resize = extract.Resize{}
	if len(dims) == 4 && dims[2] > 0 && dims[3] > 0 {
		p.Height, p.Width = dims[2], dims[3]
	}
	return p
}

func modelFromPath(path, config string) (extract.Model, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return extract.Model{}, err
	}
	m := extract.Model{Name: filepath.Base(abs), Path: abs, Config: config}
	switch ext := strings.ToLower(filepath.Ext(abs)); ext {
	case ".onnx":
		m.Format = "onnx"
	case ".caffemodel":
		m.Format = "caffe"
		if m.Config == "" {
			guess := strings.TrimSuffix(abs, filepath.Ext(abs)) + ".prototxt"
			if _, err := os.Stat(guess); err != nil {
				return m, usagef("model %s: a Caffe model needs its network definition: pass --config deploy.prototxt", path)
			}
			m.Config = guess
		}
	case ".prototxt":
		// The definition was given as the model: find the weights beside it.
		m.Format, m.Config = "caffe", abs
		m.Path = strings.TrimSuffix(abs, filepath.Ext(abs)) + ".caffemodel"
		m.Name = filepath.Base(m.Path)
	case ".pb":
		m.Format = "tensorflow"
	default:
		return m, usagef("model %s: cannot tell the format from %q: want .onnx, .caffemodel (with --config .prototxt) or .pb", path, ext)
	}
	if err := hashModel(&m); err != nil {
		return m, err
	}
	if m.Format == "onnx" {
		g, err := onnx.ReadGraph(m.Path)
		if err != nil {
			return m, fmt.Errorf("model %s: %w", path, err)
		}
		ins := g.Graph.DataInputs()
		if len(ins) == 0 {
			return m, fmt.Errorf("model %s: the graph has no input", path)
		}
		m.Input = ins[0].Name
		dims, _ := ins[0].Fixed()
		m.InputDims = dims
		m.Preprocess = defaultPreprocess(dims)
		return m, nil
	}
	m.Preprocess = defaultPreprocess(nil)
	return m, nil
}

// hashModel sets m.SHA256: the weights file's hash, or for a model with a
// companion file (Caffe, TensorFlow .pbtxt) the hash of both hashes, since
// the same weights under another network definition are another model.
func hashModel(m *extract.Model) error {
	sha, _, err := fetch.HashFile(m.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return errclass.Wrap(errclass.NotFound, fmt.Errorf("model %w", err)) // a --model path that names nothing
	}
	if err != nil {
		return fmt.Errorf("model %w", err)
	}
	m.SHA256 = sha
	if m.Config != "" {
		c, _, err := fetch.HashFile(m.Config)
		if err != nil {
			return fmt.Errorf("model config %w", err)
		}
		m.SHA256 = combineHashes(sha, c)
	}
	return nil
}

func combineHashes(a, b string) string {
	h := sha256.Sum256([]byte(a + "\n" + b + "\n"))
	return hex.EncodeToString(h[:])
}

func modelFromCatalog(name, cache string) (extract.Model, error) {
	cat, err := extract.LoadCatalog(cache)
	if err != nil {
		return extract.Model{}, err
	}
	e, err := cat.Lookup(name)
	if err != nil {
		return extract.Model{}, err
	}
	paths, err := cat.Locate(e)
	if err != nil {
		return extract.Model{}, err
	}
	m := extract.Model{Name: e.Name, Format: e.Format, Path: paths.Model, Config: paths.Config,
		SHA256: e.SHA256, Input: e.Input, Preprocess: e.Preprocess, HasPreprocess: true}
	if e.Config != nil {
		m.SHA256 = combineHashes(e.SHA256, e.Config.SHA256)
	}
	if e.InputDims != [4]int{} {
		m.InputDims = e.InputDims[:]
	}
	return m, nil
}

func generatedModel(g extract.Generated, cache string) (extract.Model, error) {
	path, sha, err := g.Ensure(cache)
	if err != nil {
		return extract.Model{}, err
	}
	return extract.Model{Name: g.Name, Format: "onnx", Path: path, SHA256: sha, Input: "data",
		Preprocess: extract.Presets["torch"], HasPreprocess: true, InputDims: []int{0, 3, 224, 224}}, nil
}
