package extract

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
	"pipeline/extract/fetch"
	"pipeline/extract/onnx"
)

// ErrModelSpec marks a model request that cannot work as given: a file
// whose format the extension does not tell, a Caffe model without its
// network definition, a model file without a preprocessing convention.
var ErrModelSpec = errclass.New(errclass.Usage, "bad model request")

// Kinds of ErrModelSpec a caller (the CLI's hints) tells apart.
var (
	ErrNoPreprocess = errclass.New(errclass.Usage, "model without a preprocessing convention")
	ErrNoNetworkDef = errclass.New(errclass.Usage, "Caffe model without its network definition")
	ErrKerasFile    = errclass.New(errclass.Usage, "Keras weights file used before it is registered")
)

// modelSpecErr is an ErrModelSpec whose message is only the details; kind
// is one of the kinds above, or nil.
type modelSpecErr struct {
	msg  string
	kind error
}

func (e *modelSpecErr) Error() string { return e.msg }
func (e *modelSpecErr) Is(target error) bool {
	return target == ErrModelSpec || (e.kind != nil && target == e.kind)
}
func (e *modelSpecErr) Class() errclass.Class { return errclass.Usage }

func modelSpecf(format string, args ...any) error {
	return &modelSpecErr{msg: fmt.Sprintf(format, args...)}
}

// modelSpecKindf is modelSpecf of one kind.
func modelSpecKindf(kind error, format string, args ...any) error {
	return &modelSpecErr{msg: fmt.Sprintf(format, args...), kind: kind}
}

// fileFormats is the one table from a model file's extension to its
// format, used for --model PATH and for `models add --file`.
var fileFormats = map[string]string{
	".onnx":       FormatONNX,
	".caffemodel": FormatCaffe,
	".prototxt":   FormatCaffe, // the definition given as the model: the weights are beside it
	".pb":         FormatTensorFlow,
	".h5":         FormatKeras, // registered once (models add), which converts it to ONNX
	".hdf5":       FormatKeras,
}

// formatsHelp lists the extensions for error messages.
const formatsHelp = ".onnx, .caffemodel (with its .prototxt), .pb (frozen TensorFlow graph) or a Keras .h5 weights file"

// FormatOf tells a model file's format from its extension.
func FormatOf(path string) (string, error) {
	ext := filepath.Ext(path)
	if f, ok := fileFormats[strings.ToLower(ext)]; ok {
		return f, nil
	}
	return "", modelSpecf("model %s: cannot tell the format from %q: want %s", path, ext, formatsHelp)
}

// LooksLikePath says whether a --model value names a file rather than a
// catalog entry or a generated architecture.
func LooksLikePath(s string) bool {
	if strings.ContainsRune(s, os.PathSeparator) {
		return true
	}
	_, ok := fileFormats[strings.ToLower(filepath.Ext(s))]
	return ok
}

// caffeConfigBeside is the network definition that goes with a
// .caffemodel when none is given: the same name with .prototxt.
func caffeConfigBeside(weights string) string {
	return strings.TrimSuffix(weights, filepath.Ext(weights)) + ".prototxt"
}

// ModelSpec is how a command names a model: --model, --config and the
// preprocessing flags.
type ModelSpec struct {
	Model     string    // catalog name, generated architecture name, or a file path
	Config    string    // Caffe .prototxt / TensorFlow .pbtxt for a path
	Overrides Overrides // --preprocess and the per-field flags
	// NeedPreprocess: fail when a bare model file comes without --preprocess
	// (extracting with a guessed convention would store wrong codes).
	NeedPreprocess bool
	CacheDir       string // "" = CacheDir()
}

// ResolveModel finds the model files, verifies them and works out the
// preprocessing and the input size.
func ResolveModel(s ModelSpec) (Model, error) {
	cache := s.CacheDir
	if cache == "" {
		d, err := CacheDir()
		if err != nil {
			return Model{}, err
		}
		cache = d
	}
	var m Model
	var err error
	switch {
	case LooksLikePath(s.Model):
		m, err = modelFromPath(s.Model, s.Config)
	default:
		if g, ok := LookupGenerated(s.Model); ok {
			m, err = generatedModel(g, cache)
			break
		}
		m, err = modelFromCatalog(s.Model, cache)
		if errors.Is(err, ErrUnknownModel) {
			if _, statErr := os.Stat(s.Model); statErr == nil {
				m, err = modelFromPath(s.Model, s.Config)
			}
		}
	}
	if err != nil {
		return m, err
	}
	if s.NeedPreprocess && !m.HasPreprocess && s.Overrides.Preset == "" {
		return m, modelSpecKindf(ErrNoPreprocess, "model %s comes without a preprocessing convention: caffe (Keras VGG16/ResNet50 and the Caffe originals: BGR, mean subtracted), torch (torchvision and the ONNX model zoo: RGB, /255, ImageNet mean and std) or tf (Keras tf mode: RGB scaled to [-1, 1])",
			m.Path)
	}
	if m.Preprocess, err = s.Overrides.Apply(m.Preprocess); err != nil {
		return m, modelSpecf("model %s: %v", m.Name, err)
	}
	if s.Overrides.Preset != "" {
		m.HasPreprocess = true
	}
	return m, nil
}

// defaultPreprocess is the starting point for a model without a
// convention: only its size matters until the user picks a preset.
func defaultPreprocess(dims []int) Preprocess {
	p := Presets["torch"]
	p.Preset = ""
	p.Resize = Resize{}
	if len(dims) == 4 && dims[2] > 0 && dims[3] > 0 {
		p.Height, p.Width = dims[2], dims[3]
	}
	return p
}

func modelFromPath(path, config string) (Model, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Model{}, err
	}
	m := Model{Name: filepath.Base(abs), Path: abs, Config: config}
	if m.Format, err = FormatOf(path); err != nil {
		return m, err
	}
	switch strings.ToLower(filepath.Ext(abs)) {
	case ".caffemodel":
		if m.Config == "" {
			guess := caffeConfigBeside(abs)
			if _, err := os.Stat(guess); err != nil {
				return m, modelSpecKindf(ErrNoNetworkDef, "model %s: a Caffe model needs its network definition (a deploy .prototxt), and none is beside it", path)
			}
			m.Config = guess
		}
	case ".prototxt":
		// The definition was given as the model: find the weights beside it.
		m.Config = abs
		m.Path = strings.TrimSuffix(abs, filepath.Ext(abs)) + ".caffemodel"
		m.Name = filepath.Base(m.Path)
	case ".h5", ".hdf5":
		return m, modelSpecKindf(ErrKerasFile, "model %s: a Keras weights file is used once registered, which converts it", path)
	}
	if err := hashModel(&m); err != nil {
		return m, err
	}
	if m.Format == FormatONNX {
		g, err := onnx.ReadInputs(m.Path) // not the nodes: before the memory check, cheap for any graph
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
func hashModel(m *Model) error {
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
		m.SHA256 = CombineHashes(sha, c)
	}
	return nil
}

// CombineHashes is the identity of a model made of two files (weights and
// network definition): the SHA-256 of both hex digests.
func CombineHashes(a, b string) string {
	h := sha256.Sum256([]byte(a + "\n" + b + "\n"))
	return hex.EncodeToString(h[:])
}

func modelFromCatalog(name, cache string) (Model, error) {
	cat, err := LoadCatalog(cache)
	if err != nil {
		return Model{}, err
	}
	e, err := cat.Lookup(name)
	if err != nil {
		return Model{}, err
	}
	paths, err := cat.Locate(e)
	if err != nil {
		return Model{}, err
	}
	m := Model{Name: e.Name, Format: e.Format, Path: paths.Model, Config: paths.Config,
		SHA256: e.SHA256, Input: e.Input, Preprocess: e.Preprocess, HasPreprocess: true}
	if e.Config != nil {
		m.SHA256 = CombineHashes(e.SHA256, e.Config.SHA256)
	}
	if paths.Format != "" { // a Keras file runs as the graph converted from it
		m.Format, m.SHA256 = paths.Format, paths.SHA256
	}
	if e.InputDims != [4]int{} {
		m.InputDims = e.InputDims[:]
	}
	return m, nil
}

func generatedModel(g Generated, cache string) (Model, error) {
	path, sha, err := g.Ensure(cache)
	if err != nil {
		return Model{}, err
	}
	return Model{Name: g.Name, Format: FormatONNX, Path: path, SHA256: sha, Input: "data",
		Preprocess: Presets["torch"], HasPreprocess: true, InputDims: []int{0, 3, 224, 224}}, nil
}
