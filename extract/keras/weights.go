package keras

import (
	"pipeline/errclass"

	"errors"
	"fmt"
	"os"
	"strings"
)

// Layouts of a Keras 2 HDF5 file.
const (
	// LayoutWeights is model.save_weights(): the root group has the
	// attributes layer_names, backend and keras_version, and one group per
	// layer with the attribute weight_names.
	LayoutWeights = "weights"
	// LayoutModel is model.save(): the same groups under /model_weights,
	// the architecture as JSON in the root attribute model_config.
	LayoutModel = "model"
)

// ErrNotKeras is matched (errors.Is) by every error saying that a file is
// not a Keras model of an architecture this package knows: not HDF5, HDF5
// without Keras's layout, another network, a layer missing, a weight of the
// wrong shape. Damage to an HDF5 file (truncation) is another error.
var ErrNotKeras = errclass.New(errclass.Usage, "not a Keras model of a known architecture")

// Weight is one weight array of a layer, as stored (Keras's own layout:
// HWIO convolution kernels, [in, out] dense kernels).
type Weight struct {
	Name  string // as in weight_names, e.g. "block1_conv1_W_1:0" or "block1_conv1/kernel:0"
	Shape []int
	Data  []float32
}

// Layer is a layer of the file, in layer_names order; layers without
// weights (activations, pooling, padding, the input) have none.
type Layer struct {
	Name    string
	Weights []Weight
}

// File is the content of a Keras weights file.
type File struct {
	Path         string
	Layout       string // LayoutWeights or LayoutModel
	Backend      string // e.g. "tensorflow"
	KerasVersion string // e.g. "2.2.4"
	Layers       []Layer
}

// Layer returns the layer of that name, or nil.
func (f *File) Layer(name string) *Layer {
	for i := range f.Layers {
		if f.Layers[i].Name == name {
			return &f.Layers[i]
		}
	}
	return nil
}

// maxValues bounds one weight array (VGG-16's fc1 has 103M values).
const maxValues = 1 << 30

// Read reads a Keras 2 HDF5 weights file (either layout), every weight in
// weight_names order as Keras's load_weights reads them. Errors name the
// file; the "not a Keras file" ones match ErrNotKeras.
func Read(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("keras file %s: not a regular file", path)
	}
	h, err := openHDF5(path)
	if errors.Is(err, ErrNotHDF5) {
		return nil, fmt.Errorf("keras file %s: %w: %w (no HDF5 signature)", path, ErrNotKeras, ErrNotHDF5)
	}
	if err != nil {
		return nil, fmt.Errorf("keras file %s: %w (a truncated or damaged file? compare its size and checksum with the original)", path, err)
	}
	defer h.Close()
	f, err := readFile(h)
	if err != nil {
		return nil, fmt.Errorf("keras file %s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

func readFile(h *h5File) (*File, error) {
	root, err := h.group("/")
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f := &File{Layout: LayoutWeights}
	top := root
	if root.exists("model_weights") {
		f.Layout = LayoutModel
		if top, err = h.group("model_weights"); err != nil {
			return nil, err
		}
		defer top.Close()
	}
	if !top.hasAttr("layer_names") {
		if root.exists("layers") || root.exists("_layer_checkpoint_dependencies") {
			return nil, fmt.Errorf("%w: this looks like a Keras 3 .weights.h5 file (groups layers/...), which stores no layer names; save the model with Keras 2 (tf.keras) or use the Keras application's own download", ErrNotKeras)
		}
		return nil, fmt.Errorf("%w: HDF5 without the attribute layer_names (neither model.save_weights nor model.save of Keras 2)", ErrNotKeras)
	}
	names, err := top.strings("layer_names")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotKeras, err)
	}
	if v, err := firstString("backend", top, root); err == nil {
		f.Backend = v
	}
	if v, err := firstString("keras_version", top, root); err == nil {
		f.KerasVersion = v
	}
	for _, name := range names {
		l, err := readLayer(h, top, name)
		if err != nil {
			return nil, err
		}
		f.Layers = append(f.Layers, l)
	}
	return f, nil
}

// firstString reads a scalar string attribute from the first group that
// has it.
func firstString(name string, groups ...*h5Group) (string, error) {
	for _, g := range groups {
		if g.hasAttr(name) {
			v, err := g.strings(name)
			if err != nil || len(v) == 0 {
				return "", err
			}
			return v[0], nil
		}
	}
	return "", fmt.Errorf("no attribute %s", name)
}

func readLayer(h *h5File, top *h5Group, name string) (Layer, error) {
	l := Layer{Name: name}
	if !top.exists(name) {
		return l, fmt.Errorf("layer_names lists %q but the file has no group of that name", name)
	}
	prefix := ""
	if top.name != "/" {
		prefix = top.name + "/"
	}
	g, err := h.group(prefix + name)
	if err != nil {
		return l, err
	}
	defer g.Close()
	if !g.hasAttr("weight_names") {
		return l, nil // Keras 1 files may omit it on layers without weights
	}
	wn, err := g.strings("weight_names")
	if err != nil {
		return l, fmt.Errorf("layer %s: %w", name, err)
	}
	for _, w := range wn {
		if !g.exists(w) {
			return l, fmt.Errorf("layer %s: weight_names lists %q but there is no such dataset", name, w)
		}
		data, shape, err := g.dataset(w, maxValues)
		if err != nil {
			return l, fmt.Errorf("layer %s: %w", name, err)
		}
		l.Weights = append(l.Weights, Weight{Name: w, Shape: shape, Data: data})
	}
	return l, nil
}

// WriteOptions shape a written file.
type WriteOptions struct {
	Layout       string // LayoutWeights (default) or LayoutModel
	Backend      string // default "tensorflow"
	KerasVersion string // default "2.2.4"
	// ModelConfig is the JSON written as model_config in LayoutModel.
	ModelConfig string
}

// Write writes f as Keras 2 writes it: layer_names, backend and
// keras_version on the weights group, a group per layer with weight_names,
// a dataset per weight at its name (a nested name such as
// "block1_conv1/kernel:0" makes the intermediate group). The project writes
// random-weight test files with it; it is also an exporter of sorts.
func Write(path string, f *File, o WriteOptions) (err error) {
	if o.Layout == "" {
		o.Layout = LayoutWeights
	}
	if o.Backend == "" {
		o.Backend = "tensorflow"
	}
	if o.KerasVersion == "" {
		o.KerasVersion = "2.2.4"
	}
	h, err := createHDF5(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := h.Close(); err == nil {
			err = cerr
		}
	}()
	root, err := h.group("/")
	if err != nil {
		return err
	}
	defer root.Close()
	top := root
	if o.Layout == LayoutModel {
		for _, a := range [][2]string{{"keras_version", o.KerasVersion}, {"backend", o.Backend}, {"model_config", o.ModelConfig}} {
			if err := root.writeStrings(a[0], []string{a[1]}, true); err != nil {
				return err
			}
		}
		if top, err = h.createGroup("model_weights"); err != nil {
			return err
		}
		defer top.Close()
	}
	var names []string
	for _, l := range f.Layers {
		names = append(names, l.Name)
	}
	if err := top.writeStrings("layer_names", names, false); err != nil {
		return err
	}
	if err := top.writeStrings("backend", []string{o.Backend}, true); err != nil {
		return err
	}
	if err := top.writeStrings("keras_version", []string{o.KerasVersion}, true); err != nil {
		return err
	}
	prefix := ""
	if top != root {
		prefix = "model_weights/"
	}
	for _, l := range f.Layers {
		g, err := h.createGroup(prefix + l.Name)
		if err != nil {
			return err
		}
		var wn []string
		for _, w := range l.Weights {
			wn = append(wn, w.Name)
		}
		if err := g.writeStrings("weight_names", wn, false); err != nil {
			g.Close()
			return err
		}
		for _, w := range l.Weights {
			if strings.HasPrefix(w.Name, "/") {
				g.Close()
				return fmt.Errorf("weight name %q must be relative", w.Name)
			}
			if err := g.writeDataset(w.Name, w.Shape, w.Data); err != nil {
				g.Close()
				return err
			}
		}
		g.Close()
	}
	return nil
}
