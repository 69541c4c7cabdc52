package extract

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"pipeline/extract/fetch"
	"pipeline/extract/keras"
	"pipeline/extract/onnx"
)

// ErrNotKerasModel: a file given as a Keras model is not one of an
// architecture we know (not HDF5, another network, a layer missing, a
// weight of the wrong shape). The CLI maps it to a usage error (exit 2).
var ErrNotKerasModel = keras.ErrNotKeras

// kerasConverter versions the conversion: a change of Convert's output
// gives converted graphs another name in the cache (and so another model
// identity in feature sets).
const kerasConverter = "1"

// Upstream locations of the Keras applications' weights: the bucket
// keras.applications downloads from today, and the GitHub releases older
// versions used (same files for VGG16; ResNet50's v0.2 is the older
// keras_applications network).
const (
	kerasGCS      = "https://storage.googleapis.com/tensorflow/keras-applications/"
	kerasGitHub   = "https://github.com/keras-team/keras-applications/releases/download/"
	kerasFchollet = "https://github.com/fchollet/deep-learning-models/releases/download/"
	vggLicense    = "CC-BY-4.0 (weights by the Oxford VGG group, ported by Keras)"
	resnetLicense = "MIT (weights by Kaiming He, ported by Keras)"
)

// kerasModels are the Keras applications' ImageNet weights files, as
// keras.utils.get_file identifies them (by MD5; the SHA-256 is recorded
// beside the file once it verified).
func kerasModels() []ModelEntry {
	k := func(name, file string, size int64, md5, src, lic string, urls ...string) ModelEntry {
		pad := ""
		if strings.Contains(name, "legacy") {
			// The v0.2 files serve Keras 2.0 to 2.3; since 2.2.3
			// (keras_applications' pool1_pad) the network pads before
			// its first max pool, which is what pip installs today.
			pad = "true"
		}
		return ModelEntry{Name: name, Format: FormatKeras,
			ModelFile: ModelFile{File: file, Size: size, MD5: md5, URLs: urls},
			Input:     "input_1", InputDims: [4]int{1, 3, 224, 224}, Preprocess: Presets["keras"],
			Source: src, License: lic, KerasPool1Pad: pad, Builtin: true}
	}
	const vgg = "vgg16_weights_tf_dim_ordering_tf_kernels"
	const res = "resnet50_weights_tf_dim_ordering_tf_kernels"
	return []ModelEntry{
		k("keras-vgg16", vgg+".h5", 553467096, "64373286793e3c8b2b4e3219cbf3544b",
			"Keras applications VGG16(weights='imagenet', include_top=True): the file keras.applications downloads, converted to ONNX on first use; Keras's input convention", vggLicense,
			kerasGCS+"vgg16/"+vgg+".h5", kerasFchollet+"v0.1/"+vgg+".h5"),
		k("keras-vgg16-notop", vgg+"_notop.h5", 58889256, "6d6bbae143d832006294945121d1f1fc",
			"Keras applications VGG16(weights='imagenet', include_top=False) (up to block5_pool), converted to ONNX on first use", vggLicense,
			kerasGCS+"vgg16/"+vgg+"_notop.h5", kerasFchollet+"v0.1/"+vgg+"_notop.h5"),
		k("keras-resnet50", res+".h5", 102967424, "2cb95161c43110f7111970584f804107",
			"Keras applications ResNet50(weights='imagenet') of keras.applications.resnet (TF 2; conv1_conv ... avg_pool, predictions), converted to ONNX on first use", resnetLicense,
			kerasGCS+"resnet/"+res+".h5", kerasGitHub+"resnet/"+res+".h5"),
		k("keras-resnet50-notop", res+"_notop.h5", 94765736, "4d473c1dd8becc155b73f8504c6f6626",
			"Keras applications ResNet50(weights='imagenet', include_top=False) of keras.applications.resnet (TF 2), converted to ONNX on first use", resnetLicense,
			kerasGCS+"resnet/"+res+"_notop.h5", kerasGitHub+"resnet/"+res+"_notop.h5"),
		// Same file names in ~/.keras/models as the TF 2 files: the cache
		// names differ, the lookup uses the URL's base name.
		k("keras-resnet50-legacy", res+"-v0.2.h5", 102853048, "a7b3fe01876f51b976af0dea6bc144eb",
			"ResNet50 of Keras 2.0-2.3 / keras_applications resnet50.py (conv1, bn_conv1, res2a_branch2a ... fc1000), fchollet/deep-learning-models v0.2, converted to ONNX on first use", resnetLicense,
			kerasFchollet+"v0.2/"+res+".h5"),
		k("keras-resnet50-legacy-notop", res+"_notop-v0.2.h5", 94653016, "a268eb855778b3df3c7506639542a6af",
			"ResNet50 of Keras 2.0-2.3 / keras_applications resnet50.py without top, fchollet/deep-learning-models v0.2, converted to ONNX on first use", resnetLicense,
			kerasFchollet+"v0.2/"+res+"_notop.h5"),
	}
}

// kerasGraphPath is where the ONNX graph converted from a Keras file of
// content sha lives in the cache.
func (c *Catalog) kerasGraphPath(name, sha, pool1Pad string) string {
	opt := ""
	if pool1Pad != "" {
		opt = "-pad" + pool1Pad
	}
	return filepath.Join(c.dir, "keras", fmt.Sprintf("%s-%s%s-c%s.onnx", name, sha[:16], opt, kerasConverter))
}

// kerasGraph returns the converted graph of a verified Keras file,
// converting it into the cache when it is not there (first use, a wiped
// cache, a new converter).
func (c *Catalog) kerasGraph(e ModelEntry, h5 string) (ModelPaths, error) {
	sha := e.SHA256
	if sha == "" {
		if sha = fetch.RecordedSHA256(h5); sha == "" {
			var err error
			if sha, _, err = fetch.HashFile(h5); err != nil {
				return ModelPaths{}, fmt.Errorf("model %s: %w", e.Name, err)
			}
		}
	}
	out := c.kerasGraphPath(e.Name, sha, e.KerasPool1Pad)
	if _, err := os.Stat(out); errors.Is(err, fs.ErrNotExist) {
		if _, err := ConvertKeras(h5, out, keras.Options{InputSize: e.InputDims[3], Pool1Pad: e.KerasPool1Pad}); err != nil {
			return ModelPaths{}, fmt.Errorf("model %s: %w", e.Name, err)
		}
	}
	osha, _, err := fetch.HashFileCached(out)
	if err != nil {
		return ModelPaths{}, fmt.Errorf("model %s: %w", e.Name, err)
	}
	return ModelPaths{Model: out, Format: FormatONNX, SHA256: osha}, nil
}

// ConvertKeras reads a Keras .h5 weights file, recognises its network and
// writes the equivalent ONNX graph to out (atomically; nothing is written
// when the file is not a known Keras model). o.InputSize 0 means 224, or
// what a VGG's fc1 implies.
func ConvertKeras(h5, out string, o keras.Options) (keras.Arch, error) {
	f, err := keras.Read(h5)
	if err != nil {
		return keras.Arch{}, err
	}
	m, arch, err := keras.Convert(f, o)
	if err != nil {
		return keras.Arch{}, fmt.Errorf("keras file %s: %w", h5, err)
	}
	f = nil // the weights now live in m
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return keras.Arch{}, err
	}
	if err := onnx.WriteFile(out, m); err != nil {
		return keras.Arch{}, err
	}
	return arch, nil
}

// AddKeras registers a local Keras .h5 weights file as model name (`pipeline
// models add NAME --file X.h5`): it recognises the network (never from
// the file name), writes the converted ONNX graph into the cache and
// registers the entry, with Keras's input convention unless o changes it.
// A file that is not a known Keras model leaves the cache and the registry
// untouched.
//
// pool1Pad is keras.Options.Pool1Pad (the legacy ResNet50's padding before
// the first max pool: "true", "false", or "" to follow the file).
func (c *Catalog) AddKeras(name, file string, o Overrides, pool1Pad string) (ModelEntry, keras.Arch, error) {
	e := ModelEntry{Name: strings.ToLower(strings.TrimSpace(name)), Format: FormatKeras, Local: true, Input: "input_1", KerasPool1Pad: pool1Pad}
	switch pool1Pad {
	case "", "true", "false":
	default:
		return e, keras.Arch{}, fmt.Errorf("model %s: pool1 padding %q: want true or false", e.Name, pool1Pad)
	}
	if !modelName.MatchString(e.Name) {
		return e, keras.Arch{}, (ModelEntry{Name: e.Name}).Validate()
	}
	if _, err := c.Lookup(e.Name); err == nil {
		return e, keras.Arch{}, fmt.Errorf("add model %s: %w: choose another name, or run `pipeline models remove %s` first", e.Name, ErrModelExists, e.Name)
	}
	mf, err := localFile(file)
	if err != nil {
		return e, keras.Arch{}, fmt.Errorf("model %s: %w", e.Name, err)
	}
	e.ModelFile = mf
	size := 0
	if o.Size != "" {
		if w, h, err := ParseSize(o.Size); err != nil || w != h {
			return e, keras.Arch{}, fmt.Errorf("model %s: size %q: a Keras model takes a square input", e.Name, o.Size)
		} else {
			size = w
		}
	}
	// Convert to a temporary name first: the final one needs nothing
	// more, but nothing must be left behind when the file is refused.
	out := c.kerasGraphPath(e.Name, mf.SHA256, pool1Pad)
	arch, err := ConvertKeras(mf.Path, out, keras.Options{InputSize: size, Pool1Pad: pool1Pad})
	if err != nil {
		return e, keras.Arch{}, err
	}
	e.InputDims = [4]int{1, 3, arch.InputSize, arch.InputSize}
	base := Presets["keras"]
	base.Width, base.Height = arch.InputSize, arch.InputSize
	o.Size = ""
	if e.Preprocess, err = o.Apply(base); err != nil {
		os.Remove(out)
		return e, arch, fmt.Errorf("model %s: %w", e.Name, err)
	}
	e.Source = fmt.Sprintf("Keras %s from local file %s, registered %s", arch, mf.Path, time.Now().Format("2006-01-02"))
	if err := c.Add(e); err != nil {
		os.Remove(out)
		return e, arch, err
	}
	return e, arch, nil
}

// kerasHome is where Keras keeps its downloads: $KERAS_HOME/models, else
// ~/.keras/models.
func kerasHome() string {
	if d := os.Getenv("KERAS_HOME"); d != "" {
		return filepath.Join(d, "models")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".keras", "models")
}

// kerasName is the file name Keras's get_file gives the file.
func kerasName(f ModelFile) string {
	if len(f.URLs) > 0 {
		return path.Base(f.URLs[0])
	}
	return f.File
}

func (f ModelFile) id() fetch.ID { return fetch.ID{Size: f.Size, SHA256: f.SHA256, MD5: f.MD5} }

// importKerasHome copies (or hard-links) the file Keras already downloaded
// into the cache when it is not there yet and verifies.
func (c *Catalog) importKerasHome(e ModelEntry, f ModelFile, logf func(string, ...any)) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dst := filepath.Join(c.ModelsDir(), f.File)
	if _, err := fetch.VerifyCachedID(dst, f.id()); err == nil {
		return
	}
	home := kerasHome()
	if home == "" {
		return
	}
	src := filepath.Join(home, kerasName(f))
	if _, err := os.Stat(src); err != nil {
		return
	}
	d, err := fetch.HashFileDigests(src)
	if err != nil {
		logf("%s: %v", src, err)
		return
	}
	if (f.Size != 0 && d.Size != f.Size) || (f.MD5 != "" && d.MD5 != f.MD5) || (f.SHA256 != "" && d.SHA256 != f.SHA256) {
		logf("%s is not the file of %s (%d bytes, md5 %s; want md5 %s): downloading instead", src, e.Name, d.Size, d.MD5, f.MD5)
		return
	}
	if err := os.MkdirAll(c.ModelsDir(), 0o755); err != nil {
		return
	}
	tmp := dst + ".import"
	os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		if err := copyFile(src, tmp); err != nil {
			logf("import %s: %v", src, err)
			os.Remove(tmp)
			return
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return
	}
	logf("%s: using %s (Keras's download, md5 verified)", e.Name, src)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// kerasOfflineHint says where a Keras file can be put by hand.
func (c *Catalog) kerasOfflineHint(f ModelFile) string {
	return fmt.Sprintf("offline? download %s (%d bytes, md5 %s) elsewhere and put it at %s or in %s, then run the pull again",
		f.URLs[0], f.Size, f.MD5, filepath.Join(c.ModelsDir(), f.File), kerasHome())
}

// kerasNotCachedHint is the NotCachedError hint of a Keras entry.
func (c *Catalog) kerasNotCachedHint(e ModelEntry, f ModelFile) string {
	if e.Format != FormatKeras || len(f.URLs) == 0 {
		return ""
	}
	if home := kerasHome(); home != "" {
		if _, err := os.Stat(filepath.Join(home, kerasName(f))); err == nil {
			return fmt.Sprintf("Keras's own download %s is there: `pipeline models pull %s` verifies and uses it", filepath.Join(home, kerasName(f)), e.Name)
		}
	}
	return c.kerasOfflineHint(f)
}
