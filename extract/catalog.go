package extract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"pipeline/errclass"
	"pipeline/extract/fetch"
)

// Model file formats, as OpenCV's readNet understands them.
const (
	FormatONNX       = "onnx"       // one .onnx file
	FormatCaffe      = "caffe"      // .caffemodel weights + .prototxt config
	FormatTensorFlow = "tensorflow" // frozen .pb graph, optional .pbtxt config
	FormatKeras      = "keras"      // Keras 2 .h5 weights, converted to ONNX in the cache (keras_model.go)
)

// ModelFile is one file of a model: either a file in the cache, downloaded
// from URLs, or a registered local file at Path. Its identity is Size and
// SHA256, checked before every use.
type ModelFile struct {
	// File is the file name in <cache>/models (for a local file, its base
	// name, for display).
	File string `json:"file"`
	// Path is the absolute path of a registered local file; empty for a
	// file that lives in the cache.
	Path string `json:"path,omitempty"`
	// Size in bytes and SHA256 (lowercase hex) of the content.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// MD5 (lowercase hex) identifies a built-in file whose upstream
	// publishes only an MD5 (Keras's get_file); SHA256 is then empty in
	// the catalog and recorded beside the file once it verified.
	MD5 string `json:"md5,omitempty"`
	// ModTime is the modification time (Unix ns) a local file had when it
	// was last hashed: same size and mtime means unchanged, without
	// re-reading the file.
	ModTime int64 `json:"mtime_ns,omitempty"`
	// URLs are mirrors, in order of preference.
	URLs []string `json:"urls,omitempty"`
}

// ModelEntry describes a model of the catalog: a built-in one, or one the
// user registered with `pipeline models add`.
type ModelEntry struct {
	// Name is what users type: lowercase letters, digits, '.', '_', '-'.
	Name string `json:"name"`
	// Format is FormatONNX, FormatCaffe or FormatTensorFlow.
	Format string `json:"format"`
	// ModelFile is the weights file (File, Path, Size, SHA256, URLs).
	ModelFile
	// Config is the companion file: the .prototxt of a Caffe model
	// (required) or the .pbtxt of a TensorFlow graph (optional).
	Config *ModelFile `json:"config,omitempty"`
	// Input is the name of the input blob (e.g. "data"); empty means the
	// network's first input.
	Input string `json:"input,omitempty"`
	// InputDims is the NCHW shape of a batch of one (e.g. 1,3,224,224);
	// all zero when unknown, to be read from the graph.
	InputDims [4]int `json:"input_dims"`
	// FixedBatch says that the file fixes the batch dimension to 1, so
	// that images must go through the network one at a time.
	FixedBatch bool `json:"fixed_batch,omitempty"`
	// Preprocess is how images become the input blob.
	Preprocess Preprocess `json:"preprocess"`
	// Aliases names the family of friendly layer names ("vgg": fc6, fc7,
	// ...; "resnet": pool5, ...); empty means detect it from the graph.
	Aliases string `json:"aliases,omitempty"`
	// Source says where the model comes from, in a sentence.
	Source string `json:"source,omitempty"`
	// License of the weights, as an SPDX identifier or a short phrase.
	License string `json:"license,omitempty"`
	// KerasPool1Pad is keras.Options.Pool1Pad for a Keras legacy ResNet50
	// ("true", "false", "" = from the file).
	KerasPool1Pad string `json:"keras_pool1_pad,omitempty"`
	// Local marks a registered local file (Path is set; no download).
	Local bool `json:"local,omitempty"`
	// Builtin is set by the catalog on its built-in entries; not stored.
	Builtin bool `json:"-"`
}

// ModelPaths are the verified files of a model, ready for readNet.
type ModelPaths struct {
	Model  string // weights (.onnx, .caffemodel, .pb)
	Config string // companion (.prototxt, .pbtxt), or empty
	// Format and SHA256 are set when what runs is not the entry's file
	// itself: a Keras .h5 runs as the ONNX graph converted from it, whose
	// SHA-256 is then the model's identity.
	Format string
	SHA256 string
}

var (
	// ErrUnknownModel: no model of that name (the error lists the known ones).
	ErrUnknownModel = errclass.New(errclass.NotFound, "unknown model")
	// ErrNotCached: a downloadable model is not in the cache yet (the error
	// says how to get it).
	ErrNotCached = errclass.New(errclass.Fatal, "model not in the cache")
	// ErrModelChanged: a model file no longer matches its recorded size and
	// sha256, or has vanished.
	ErrModelChanged = errclass.New(errclass.Fatal, "model file changed")
	// ErrModelExists: Add with a name that is taken (by a built-in model or
	// an earlier registration).
	ErrModelExists = errclass.New(errclass.Conflict, "model name taken")
)

// UnknownModelError is the ErrUnknownModel error.
type UnknownModelError struct {
	Name  string
	Known []string
	// Generated are the architectures the project writes itself: the only
	// models usable without a download.
	Generated []string
}

func (e *UnknownModelError) Error() string {
	msg := fmt.Sprintf("unknown model %q (known: %s", e.Name, strings.Join(e.Known, ", "))
	if len(e.Generated) > 0 {
		msg += "; generated architectures with random weights, usable offline: " + strings.Join(e.Generated, ", ")
	}
	return msg + "); see `pipeline models list`"
}

// Is makes errors.Is(err, ErrUnknownModel) true.
func (e *UnknownModelError) Is(target error) bool { return target == ErrUnknownModel }

// Unwrap gives the error ErrUnknownModel's class.
func (e *UnknownModelError) Unwrap() error { return ErrUnknownModel }

// NotCachedError is the ErrNotCached error.
type NotCachedError struct {
	Name string
	Path string // where the file is expected
	Hint string // more, when there is (a Keras file found in ~/.keras/models)
}

func (e *NotCachedError) Error() string {
	msg := fmt.Sprintf("model %s is not in the cache (%s): run `pipeline models pull %s`, or use a local file",
		e.Name, e.Path, e.Name)
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// Is makes errors.Is(err, ErrNotCached) true.
func (e *NotCachedError) Is(target error) bool { return target == ErrNotCached }

// Unwrap gives the error ErrNotCached's class.
func (e *NotCachedError) Unwrap() error { return ErrNotCached }

// CacheDir is where models and the model registry live: $PIPELINE_CACHE
// when set and not empty, else os.UserCacheDir()/pipeline (that is
// $XDG_CACHE_HOME/pipeline or ~/.cache/pipeline on Linux).
func CacheDir() (string, error) {
	if d := os.Getenv("PIPELINE_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w (set PIPELINE_CACHE)", err)
	}
	return filepath.Join(d, "pipeline"), nil
}

// Provenance of the built-in files: docs/MODELS.md says where each URL
// comes from. The Hugging Face organisation onnxmodelzoo is where the ONNX
// Model Zoo moved; the github.com/onnx/models links (Git LFS) stopped
// serving in 2025 and stay last in case they come back.
const (
	hfZoo      = "https://huggingface.co/onnxmodelzoo/legacy_models/resolve/main/validated/vision/classification/"
	ghLFS      = "https://media.githubusercontent.com/media/onnx/models/main/validated/vision/classification/"
	ghRaw      = "https://github.com/onnx/models/raw/main/validated/vision/classification/"
	zooLicense = "Apache-2.0"
)

func zooURLs(rel string, extra ...string) []string {
	urls := []string{hfZoo + rel}
	urls = append(urls, extra...)
	return append(urls, ghLFS+rel, ghRaw+rel)
}

// BuiltinModels returns the built-in catalog, in display order. Every call
// returns a fresh copy.
func BuiltinModels() []ModelEntry {
	torch := Presets["torch"]
	return append([]ModelEntry{
		{
			Name: "vgg16", Format: FormatONNX,
			ModelFile: ModelFile{File: "vgg16-7.onnx", Size: 553437328,
				SHA256: "f20805a3ecccaa88647bbab4ad011ff2412a9838485ea844de0fcbce349820b9",
				URLs:   zooURLs("vgg/model/vgg16-7.onnx")},
			Input: "data", InputDims: [4]int{1, 3, 224, 224}, FixedBatch: true,
			Preprocess: torch, Aliases: "vgg",
			Source:  "ONNX Model Zoo vgg16-7: VGG-16 trained with MXNet/Gluon on ImageNet, converted to ONNX opset 7 (top-1 72.62%)",
			License: zooLicense, Builtin: true,
		},
		{
			Name: "resnet50", Format: FormatONNX,
			ModelFile: ModelFile{File: "resnet50-v1-7.onnx", Size: 102583340,
				SHA256: "af16a04a6ec48ac494065d4439fe9dea590d337b9ca6dc328160ccf04a217b9c",
				URLs:   zooURLs("resnet/model/resnet50-v1-7.onnx")},
			Input: "data", InputDims: [4]int{1, 3, 224, 224},
			Preprocess: torch, Aliases: "resnet",
			Source:  "ONNX Model Zoo resnet50-v1-7: ResNet-50 v1 trained with MXNet/Gluon on ImageNet, converted to ONNX opset 7 (top-1 74.93%)",
			License: zooLicense, Builtin: true,
		},
		{
			Name: "resnet50-v2", Format: FormatONNX,
			ModelFile: ModelFile{File: "resnet50-v2-7.onnx", Size: 102442452,
				SHA256: "79102261eb6e5fd7af5d27f41316293e388c5cb691e5d25bfb035c4f64fefe31",
				URLs: zooURLs("resnet/model/resnet50-v2-7.onnx",
					"https://huggingface.co/webml/models-moved/resolve/258064ee16be20891d451753cf748dbfcb6bf17c/resnet50-v2-7.onnx")},
			Input: "data", InputDims: [4]int{1, 3, 224, 224},
			Preprocess: torch, Aliases: "resnet",
			Source:  "ONNX Model Zoo resnet50-v2-7: ResNet-50 v2 (pre-activation) trained with MXNet/Gluon on ImageNet, converted to ONNX opset 7",
			License: zooLicense, Builtin: true,
		},
	}, kerasModels()...)
}

var modelName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Validate checks that the entry is complete and consistent.
func (e ModelEntry) Validate() error {
	if !modelName.MatchString(e.Name) {
		return fmt.Errorf("model name %q: use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", e.Name)
	}
	switch e.Format {
	case FormatONNX, FormatTensorFlow, FormatKeras:
	case FormatCaffe:
		if e.Config == nil {
			return fmt.Errorf("model %s: a Caffe model needs its .prototxt as config", e.Name)
		}
	default:
		return fmt.Errorf("model %s: format %q: want %s, %s, %s or %s", e.Name, e.Format, FormatONNX, FormatCaffe, FormatTensorFlow, FormatKeras)
	}
	if err := e.ModelFile.validate(e.Name, e.Local); err != nil {
		return err
	}
	if e.Config != nil {
		if err := e.Config.validate(e.Name+" config", e.Local); err != nil {
			return err
		}
	}
	if err := e.Preprocess.Validate(); err != nil {
		return fmt.Errorf("model %s: %w", e.Name, err)
	}
	return nil
}

func (f ModelFile) validate(what string, local bool) error {
	if f.Size <= 0 {
		return fmt.Errorf("model %s: size %d must be positive", what, f.Size)
	}
	switch {
	case f.SHA256 == "" && f.MD5 != "" && !local && f.Path == "":
		if len(f.MD5) != 32 || strings.Trim(f.MD5, "0123456789abcdef") != "" {
			return fmt.Errorf("model %s: md5 %q is not 32 lowercase hex digits", what, f.MD5)
		}
	case len(f.SHA256) != 64 || strings.Trim(f.SHA256, "0123456789abcdef") != "":
		return fmt.Errorf("model %s: sha256 %q is not 64 lowercase hex digits", what, f.SHA256)
	}
	if local || f.Path != "" {
		if !filepath.IsAbs(f.Path) {
			return fmt.Errorf("model %s: local path %q must be absolute", what, f.Path)
		}
		return nil
	}
	if f.File == "" || f.File != filepath.Base(f.File) || f.File == "." || f.File == ".." {
		return fmt.Errorf("model %s: file name %q must be a plain name", what, f.File)
	}
	if len(f.URLs) == 0 {
		return fmt.Errorf("model %s: no URL to download %s from", what, f.File)
	}
	return nil
}

// Catalog is the built-in models plus the user registry
// (<cache>/models.json). Add and Remove persist at once; the registry is
// locked while it is rewritten, so two processes adding at once lose
// nothing. A Catalog is not safe for concurrent use by goroutines.
type Catalog struct {
	dir      string
	builtin  []ModelEntry
	user     []ModelEntry
	warnings []string
}

// registryFile is the JSON form of models.json.
type registryFile struct {
	Version int          `json:"version"`
	Models  []ModelEntry `json:"models"`
}

const registryVersion = 1

// LoadCatalog reads the catalog of the cache directory cacheDir (CacheDir()
// when empty): the built-in models and the registry, if there is one.
func LoadCatalog(cacheDir string) (*Catalog, error) {
	return NewCatalog(cacheDir, BuiltinModels())
}

// NewCatalog is LoadCatalog with other built-in entries (tests, or a
// program with its own set).
func NewCatalog(cacheDir string, builtin []ModelEntry) (*Catalog, error) {
	if cacheDir == "" {
		d, err := CacheDir()
		if err != nil {
			return nil, err
		}
		cacheDir = d
	}
	c := &Catalog{dir: cacheDir}
	for _, e := range builtin {
		e.Builtin = true
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("built-in %w", err)
		}
		c.builtin = append(c.builtin, e)
	}
	user, err := c.readRegistry()
	if err != nil {
		return nil, err
	}
	c.setUser(user)
	return c, nil
}

// Dir is the cache directory.
func (c *Catalog) Dir() string { return c.dir }

// ModelsDir is where downloaded model files are kept.
func (c *Catalog) ModelsDir() string { return filepath.Join(c.dir, "models") }

// RegistryPath is the file that lists the registered models.
func (c *Catalog) RegistryPath() string { return filepath.Join(c.dir, "models.json") }

// Warnings are problems found in the registry that did not stop loading it
// (an entry whose name is now a built-in model, an invalid entry).
func (c *Catalog) Warnings() []string { return slices.Clone(c.warnings) }

// Entries returns every model: built-ins first, then registered ones in
// the order they were added.
func (c *Catalog) Entries() []ModelEntry {
	return append(slices.Clone(c.builtin), c.user...)
}

// Names returns the names of Entries, in the same order.
func (c *Catalog) Names() []string {
	var n []string
	for _, e := range c.Entries() {
		n = append(n, e.Name)
	}
	return n
}

// Lookup finds a model by name (case-insensitive). The error is an
// *UnknownModelError (errors.Is ErrUnknownModel) listing the known names.
func (c *Catalog) Lookup(name string) (ModelEntry, error) {
	key := strings.ToLower(strings.TrimSpace(name))
	for _, e := range c.Entries() {
		if e.Name == key {
			return e, nil
		}
	}
	var gen []string
	for _, g := range GeneratedModels() {
		gen = append(gen, g.Name)
	}
	return ModelEntry{}, &UnknownModelError{Name: name, Known: c.Names(), Generated: gen}
}

// Add registers e in the user registry and saves it. The name must not be
// taken: not by a built-in model (a registered "vgg16" would silently
// change what every script calling vgg16 gets), nor by an earlier
// registration (remove that first). See NewLocalModel for the usual way to
// make e.
func (c *Catalog) Add(e ModelEntry) error {
	e.Builtin = false
	if err := e.Validate(); err != nil {
		return err
	}
	if c.isBuiltin(e.Name) {
		return fmt.Errorf("add model %s: %w: %s is a built-in model; choose another name", e.Name, ErrModelExists, e.Name)
	}
	return c.updateRegistry(func(user []ModelEntry) ([]ModelEntry, error) {
		if slices.ContainsFunc(user, func(u ModelEntry) bool { return u.Name == e.Name }) {
			return nil, fmt.Errorf("add model %s: %w: it is already registered; run `pipeline models remove %s` first to replace it",
				e.Name, ErrModelExists, e.Name)
		}
		return append(user, e), nil
	})
}

// Remove unregisters a model added with Add. Files stay where they are.
func (c *Catalog) Remove(name string) error {
	key := strings.ToLower(strings.TrimSpace(name))
	if c.isBuiltin(key) {
		return fmt.Errorf("remove model %s: it is built in and cannot be removed", key)
	}
	return c.updateRegistry(func(user []ModelEntry) ([]ModelEntry, error) {
		i := slices.IndexFunc(user, func(u ModelEntry) bool { return u.Name == key })
		if i < 0 {
			return nil, fmt.Errorf("remove model: %w", &UnknownModelError{Name: name, Known: c.namesWith(user)})
		}
		return slices.Delete(user, i, i+1), nil
	})
}

// Path returns where the model's weights are (or will be, once pulled) and
// whether they are there and verified, config included. Verification takes
// the fast path (size and mtime unchanged) when it can; otherwise it hashes
// the file once.
func (c *Catalog) Path(e ModelEntry) (path string, cached bool) {
	path = c.filePath(e.ModelFile)
	if e.Format == FormatKeras { // verified, without converting it here
		_, err := c.verify(e, &e.ModelFile, "file")
		return path, err == nil
	}
	_, err := c.Locate(e)
	return path, err == nil
}

// Locate returns the verified files of a model. Errors: *NotCachedError
// (ErrNotCached) when a file to download is not in the cache yet;
// ErrModelChanged when a registered local file changed or vanished, or a
// cached file is corrupt; each says what to run.
func (c *Catalog) Locate(e ModelEntry) (ModelPaths, error) {
	var p ModelPaths
	var err error
	if p.Model, err = c.verify(e, &e.ModelFile, "file"); err != nil {
		return ModelPaths{}, err
	}
	if e.Config != nil {
		if p.Config, err = c.verify(e, e.Config, "config"); err != nil {
			return ModelPaths{}, err
		}
	}
	if e.Format == FormatKeras {
		return c.kerasGraph(e, p.Model)
	}
	return p, nil
}

// PullOptions tune Pull.
type PullOptions struct {
	// Fetch are the downloader's options (progress, logging, client).
	Fetch fetch.Options
	// URL, when set, is tried first for the weights file (--url), before
	// the entry's own mirrors. The file must still match size and sha256.
	URL string
}

// Pull downloads a model's files into the cache unless they are already
// there, and returns them verified. A registered local model has nothing to
// download: it is only verified.
func (c *Catalog) Pull(ctx context.Context, name string, opts PullOptions) (ModelPaths, error) {
	e, err := c.Lookup(name)
	if err != nil {
		return ModelPaths{}, err
	}
	var p ModelPaths
	if p.Model, err = c.pullFile(ctx, e, e.ModelFile, opts.URL, opts.Fetch); err != nil {
		return ModelPaths{}, err
	}
	if e.Config != nil {
		if p.Config, err = c.pullFile(ctx, e, *e.Config, "", opts.Fetch); err != nil {
			return ModelPaths{}, err
		}
	}
	if e.Format == FormatKeras {
		return c.kerasGraph(e, p.Model)
	}
	return p, nil
}

func (c *Catalog) pullFile(ctx context.Context, e ModelEntry, f ModelFile, override string, opts fetch.Options) (string, error) {
	if f.Path != "" {
		return c.verify(e, &f, "file")
	}
	urls := f.URLs
	if override != "" {
		urls = append([]string{override}, slices.DeleteFunc(slices.Clone(urls), func(u string) bool { return u == override })...)
	}
	if e.Format == FormatKeras {
		c.importKerasHome(e, f, opts.Logf)
	}
	path, err := fetch.Fetch(ctx, fetch.Spec{Name: f.File, Size: f.Size, SHA256: f.SHA256, MD5: f.MD5, URLs: urls}, c.ModelsDir(), opts)
	if err != nil {
		if e.Format == FormatKeras {
			return "", fmt.Errorf("pull %s: %w\n%s", e.Name, err, c.kerasOfflineHint(f))
		}
		return "", fmt.Errorf("pull %s: %w", e.Name, err)
	}
	return path, nil
}

func (c *Catalog) filePath(f ModelFile) string {
	if f.Path != "" {
		return f.Path
	}
	return filepath.Join(c.ModelsDir(), f.File)
}

// verify checks one file of e and returns its path.
func (c *Catalog) verify(e ModelEntry, f *ModelFile, what string) (string, error) {
	path := c.filePath(*f)
	if f.Path == "" {
		_, err := fetch.VerifyCachedID(path, fetch.ID{Size: f.Size, SHA256: f.SHA256, MD5: f.MD5})
		switch {
		case err == nil:
			return path, nil
		case errors.Is(err, fs.ErrNotExist):
			return "", &NotCachedError{Name: e.Name, Path: path, Hint: c.kerasNotCachedHint(e, *f)}
		case errors.Is(err, fetch.ErrMismatch):
			return "", fmt.Errorf("model %s: %w: the cached %s is corrupt (%v); run `pipeline models pull %s` to download it again",
				e.Name, ErrModelChanged, what, err, e.Name)
		}
		return "", fmt.Errorf("model %s: %w", e.Name, err)
	}

	// A registered local file: same size and mtime as when last hashed
	// means unchanged; otherwise hash it again.
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("model %s: %w: the registered %s %s is missing; restore it, or run `pipeline models remove %s`",
			e.Name, ErrModelChanged, what, path, e.Name)
	}
	if err != nil {
		return "", fmt.Errorf("model %s: %w", e.Name, err)
	}
	if st.Size() == f.Size && st.ModTime().UnixNano() == f.ModTime {
		return path, nil
	}
	err = fetch.VerifyFile(path, f.Size, f.SHA256)
	if errors.Is(err, fetch.ErrMismatch) {
		return "", fmt.Errorf("model %s: %w: the registered %s changed since it was added (%v); if that is intended, run `pipeline models remove %s` and add it again",
			e.Name, ErrModelChanged, what, err, e.Name)
	}
	if err != nil {
		return "", fmt.Errorf("model %s: %w", e.Name, err)
	}
	// Same content, new mtime (touched, copied back): remember the mtime
	// so that the next use takes the fast path. Best effort.
	if e.Local && !e.Builtin {
		c.refreshModTime(e.Name, path, st.ModTime().UnixNano())
	}
	return path, nil
}

func (c *Catalog) refreshModTime(name, path string, mtime int64) {
	_ = c.updateRegistry(func(user []ModelEntry) ([]ModelEntry, error) {
		for i := range user {
			if user[i].Name != name {
				continue
			}
			if user[i].Path == path {
				user[i].ModTime = mtime
			}
			if user[i].Config != nil && user[i].Config.Path == path {
				user[i].Config.ModTime = mtime
			}
		}
		return user, nil
	})
}

func (c *Catalog) isBuiltin(name string) bool {
	return slices.ContainsFunc(c.builtin, func(b ModelEntry) bool { return b.Name == name })
}

func (c *Catalog) namesWith(user []ModelEntry) []string {
	var n []string
	for _, e := range append(slices.Clone(c.builtin), user...) {
		n = append(n, e.Name)
	}
	return n
}

// setUser installs the registry's entries, setting aside (with a warning)
// those that are invalid or whose name is now a built-in model.
func (c *Catalog) setUser(user []ModelEntry) {
	c.user, c.warnings = nil, nil
	for _, e := range user {
		switch err := e.Validate(); {
		case err != nil:
			c.warnings = append(c.warnings, fmt.Sprintf("%s: ignoring an entry: %v", c.RegistryPath(), err))
		case c.isBuiltin(e.Name):
			c.warnings = append(c.warnings, fmt.Sprintf("%s: ignoring registered model %s: a built-in model has that name now; remove it and add it again under another name",
				c.RegistryPath(), e.Name))
		default:
			c.user = append(c.user, e)
		}
	}
}

func (c *Catalog) readRegistry() ([]ModelEntry, error) {
	path := c.RegistryPath()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read model registry: %w", err)
	}
	var r registryFile
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read model registry %s: %w (fix or delete the file: it only lists models added with `pipeline models add`)", path, err)
	}
	if r.Version > registryVersion {
		return nil, fmt.Errorf("read model registry %s: version %d was written by a newer pipeline (this one reads version %d)", path, r.Version, registryVersion)
	}
	for i := range r.Models {
		r.Models[i].Builtin = false
	}
	return r.Models, nil
}

// updateRegistry applies change to the registry as it is on disk now,
// under the registry lock, writes it atomically and installs the result.
func (c *Catalog) updateRegistry(change func([]ModelEntry) ([]ModelEntry, error)) error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("model registry: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unlock, err := fetch.Lock(ctx, c.RegistryPath()+".lock", nil)
	if err != nil {
		return fmt.Errorf("model registry: %w", err)
	}
	defer unlock()
	user, err := c.readRegistry()
	if err != nil {
		return err
	}
	user, err = change(user)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(registryFile{Version: registryVersion, Models: user}, "", "  ")
	if err != nil {
		return fmt.Errorf("model registry: %w", err)
	}
	if err := fetch.WriteFileAtomic(c.RegistryPath(), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write model registry: %w", err)
	}
	c.setUser(user)
	return nil
}

// NewLocalModel describes a local model file for Add (`pipeline models add
// NAME --file PATH [--config PATH] [--preprocess P] [overrides]`): it finds
// the format from the extension (.onnx; .caffemodel with a .prototxt
// config; .pb with an optional .pbtxt config), hashes the files, and
// applies the preprocessing overrides to the format's usual preset (torch
// for ONNX, caffe for Caffe, tf for TensorFlow) when o.Preset is empty.
// The input blob and shape are left to be read from the graph.
func NewLocalModel(name, file, config string, o Overrides) (ModelEntry, error) {
	e := ModelEntry{Name: strings.ToLower(strings.TrimSpace(name)), Local: true}
	format, err := FormatOf(file)
	if err != nil {
		return ModelEntry{}, err
	}
	e.Format = format
	if format == FormatKeras {
		return ModelEntry{}, modelSpecKindf(ErrKerasFile, "model %s: %s is a Keras weights file: it is converted when registered (AddKeras)", e.Name, file)
	}
	if strings.EqualFold(filepath.Ext(file), ".prototxt") {
		// The definition given as the model, as --model accepts: the
		// weights are beside it.
		if config == "" {
			config = file
		}
		file = strings.TrimSuffix(file, filepath.Ext(file)) + ".caffemodel"
	}
	if e.Format == FormatCaffe && config == "" {
		if guess := caffeConfigBeside(file); fileExists(guess) {
			config = guess
		} else {
			return ModelEntry{}, modelSpecKindf(ErrNoNetworkDef, "model %s: a Caffe model needs its network definition (a deploy .prototxt), and none is beside it", e.Name)
		}
	}
	mf, err := localFile(file)
	if err != nil {
		return ModelEntry{}, fmt.Errorf("model %s: %w", e.Name, err)
	}
	e.ModelFile = mf
	if config != "" {
		cf, err := localFile(config)
		if err != nil {
			return ModelEntry{}, fmt.Errorf("model %s: config: %w", e.Name, err)
		}
		e.Config = &cf
	}
	base := map[string]string{FormatONNX: "torch", FormatCaffe: "caffe", FormatTensorFlow: "tf"}[e.Format]
	if e.Preprocess, err = o.Apply(Presets[base]); err != nil {
		return ModelEntry{}, fmt.Errorf("model %s: %w", e.Name, err)
	}
	e.Source = fmt.Sprintf("local file %s, registered %s", e.Path, time.Now().Format("2006-01-02"))
	return e, e.Validate()
}

func localFile(path string) (ModelFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ModelFile{}, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return ModelFile{}, err
	}
	if !st.Mode().IsRegular() {
		return ModelFile{}, fmt.Errorf("%s is not a regular file", abs)
	}
	sum, n, err := fetch.HashFile(abs)
	if err != nil {
		return ModelFile{}, err
	}
	// The mtime read before hashing: a write during the hash then shows
	// as a change next time instead of being trusted.
	return ModelFile{File: filepath.Base(abs), Path: abs, Size: n, SHA256: sum, ModTime: st.ModTime().UnixNano()}, nil
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
