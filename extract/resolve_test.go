package extract

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormatOf(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"m.onnx", FormatONNX}, {"M.ONNX", FormatONNX}, {"w.caffemodel", FormatCaffe},
		{"deploy.prototxt", FormatCaffe}, {"frozen.pb", FormatTensorFlow},
	} {
		if got, err := FormatOf(c.path); err != nil || got != c.want {
			t.Errorf("FormatOf(%s) = %q, %v; want %q", c.path, got, err, c.want)
		}
	}
	if _, err := FormatOf("weights.h5x"); !errors.Is(err, ErrModelSpec) {
		t.Errorf("FormatOf(weights.h5x): err = %v, want ErrModelSpec", err)
	}
	for s, want := range map[string]bool{"vgg16": false, "vgg16-arch": false, "m.onnx": true, "./vgg16": true, "w.caffemodel": true, "x.pb": true} {
		if got := LooksLikePath(s); got != want {
			t.Errorf("LooksLikePath(%q) = %v, want %v", s, got, want)
		}
	}
}

// --model PATH and `models add --file PATH` report an extension they do
// not know with FormatOf's one message, naming the file as given and the
// extension as written.
func TestFormatOf_OneMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "net.BIN")
	if err := os.WriteFile(path, []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, want := FormatOf(path)
	if want == nil || !strings.Contains(want.Error(), path) || !strings.Contains(want.Error(), `".BIN"`) {
		t.Fatalf("FormatOf(%s): %v; want the file and \".BIN\" named", path, want)
	}
	_, err := ResolveModel(ModelSpec{Model: path, CacheDir: t.TempDir()})
	if !errors.Is(err, ErrModelSpec) || err.Error() != want.Error() {
		t.Errorf("ResolveModel: %v; want %v", err, want)
	}
	_, err = NewLocalModel("mine", path, "", Overrides{})
	if !errors.Is(err, ErrModelSpec) || err.Error() != want.Error() {
		t.Errorf("NewLocalModel: %v; want %v", err, want)
	}
}

// --model PATH and `models add --file PATH` follow one rule for a Caffe
// model: the definition beside the weights is found, a .prototxt given as
// the model finds its weights, and neither beside is an ErrModelSpec.
func TestResolveModel_CaffeFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	w := write("net.caffemodel", "weights")
	d := write("net.prototxt", "name: 'net'")
	lone := write("lone.caffemodel", "weights")
	for _, c := range []struct{ name, model string }{{"Weights", w}, {"Definition", d}} {
		t.Run(c.name, func(t *testing.T) {
			m, err := ResolveModel(ModelSpec{Model: c.model, Overrides: Overrides{Preset: "caffe"}, NeedPreprocess: true, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if m.Format != FormatCaffe || m.Path != w || m.Config != d {
				t.Errorf("ResolveModel: format %s, path %s, config %s; want caffe, %s, %s", m.Format, m.Path, m.Config, w, d)
			}
			e, err := NewLocalModel("mine", c.model, "", Overrides{})
			if err != nil {
				t.Fatal(err)
			}
			if e.Format != FormatCaffe || e.Path != w || e.Config == nil || e.Config.Path != d {
				t.Errorf("NewLocalModel: %+v; want the same files as --model", e)
			}
			if e.SHA256 == "" || m.SHA256 != CombineHashes(e.SHA256, e.Config.SHA256) {
				t.Errorf("identity: --model %s, models add %s+%v", m.SHA256, e.SHA256, e.Config)
			}
		})
	}
	t.Run("ErrNoDefinition", func(t *testing.T) {
		_, err := ResolveModel(ModelSpec{Model: lone, Overrides: Overrides{Preset: "caffe"}, CacheDir: t.TempDir()})
		if !errors.Is(err, ErrModelSpec) {
			t.Errorf("ResolveModel: err = %v, want ErrModelSpec", err)
		}
		if _, err := NewLocalModel("mine", lone, "", Overrides{}); !errors.Is(err, ErrModelSpec) {
			t.Errorf("NewLocalModel: err = %v, want ErrModelSpec", err)
		}
	})
	t.Run("ErrNoPreprocess", func(t *testing.T) {
		_, err := ResolveModel(ModelSpec{Model: w, NeedPreprocess: true, CacheDir: t.TempDir()})
		if !errors.Is(err, ErrModelSpec) {
			t.Errorf("err = %v, want ErrModelSpec", err)
		}
	})
}
