package extract

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// randomFile writes n random bytes to dir/name and returns the path and
// the hex SHA-256 computed here with crypto/sha256.
func randomFile(t *testing.T, dir, name string, n int) (string, []byte, string) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return path, b, hex.EncodeToString(sum[:])
}

func TestCacheDir(t *testing.T) {
	t.Run("PIPELINE_CACHE", func(t *testing.T) {
		t.Setenv("PIPELINE_CACHE", "/srv/pipeline-cache")
		t.Setenv("XDG_CACHE_HOME", "/xdg")
		got, err := CacheDir()
		if err != nil || got != "/srv/pipeline-cache" {
			t.Fatalf("CacheDir() = %q, %v; want /srv/pipeline-cache", got, err)
		}
	})
	if runtime.GOOS != "linux" {
		t.Skip("XDG rules apply to Linux")
	}
	t.Run("XDG_CACHE_HOME", func(t *testing.T) {
		t.Setenv("PIPELINE_CACHE", "")
		t.Setenv("XDG_CACHE_HOME", "/xdg")
		got, err := CacheDir()
		if err != nil || got != "/xdg/pipeline" {
			t.Fatalf("CacheDir() = %q, %v; want /xdg/pipeline", got, err)
		}
	})
	t.Run("HOME", func(t *testing.T) {
		t.Setenv("PIPELINE_CACHE", "")
		t.Setenv("XDG_CACHE_HOME", "")
		t.Setenv("HOME", "/home/someone")
		got, err := CacheDir()
		if err != nil || got != "/home/someone/.cache/pipeline" {
			t.Fatalf("CacheDir() = %q, %v; want /home/someone/.cache/pipeline", got, err)
		}
	})
}

func TestBuiltinModels(t *testing.T) {
	// The identities given by the ONNX Model Zoo (sizes and digests as
	// published, see docs/MODELS.md).
	want := map[string]struct {
		file   string
		size   int64
		sha256 string
		fixed  bool
	}{
		"vgg16":       {"vgg16-7.onnx", 553437328, "f20805a3ecccaa88647bbab4ad011ff2412a9838485ea844de0fcbce349820b9", true},
		"resnet50":    {"resnet50-v1-7.onnx", 102583340, "af16a04a6ec48ac494065d4439fe9dea590d337b9ca6dc328160ccf04a217b9c", false},
		"resnet50-v2": {"resnet50-v2-7.onnx", 102442452, "79102261eb6e5fd7af5d27f41316293e388c5cb691e5d25bfb035c4f64fefe31", false},
	}
	var got []ModelEntry
	for _, e := range BuiltinModels() {
		if e.Format != FormatKeras { // TestBuiltinModels_Keras
			got = append(got, e)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d built-in models, want %d", len(got), len(want))
	}
	for _, e := range got {
		w, ok := want[e.Name]
		if !ok {
			t.Errorf("unexpected built-in %s", e.Name)
			continue
		}
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", e.Name, err)
		}
		if e.File != w.file || e.Size != w.size || e.SHA256 != w.sha256 || e.FixedBatch != w.fixed {
			t.Errorf("%s = %s %d %s fixed=%v; want %s %d %s fixed=%v", e.Name, e.File, e.Size, e.SHA256, e.FixedBatch, w.file, w.size, w.sha256, w.fixed)
		}
		if e.Input != "data" || e.InputDims != [4]int{1, 3, 224, 224} {
			t.Errorf("%s: input %s %v, want data [1 3 224 224]", e.Name, e.Input, e.InputDims)
		}
		// Zoo models: RGB in [0,1], ImageNet mean/std, shorter side 256 then a 224 crop.
		p := e.Preprocess
		if !p.SwapRB || p.Scale != 1.0/255 || p.Mean != [3]float64{0.485, 0.456, 0.406} ||
			p.Std != [3]float64{0.229, 0.224, 0.225} || p.Resize.Shorter != 256 || p.Width != 224 || p.Height != 224 {
			t.Errorf("%s: preprocess %v, want the torch convention", e.Name, p)
		}
		if !strings.HasPrefix(e.URLs[0], "https://huggingface.co/onnxmodelzoo/") || !strings.HasSuffix(e.URLs[0], "/"+w.file) {
			t.Errorf("%s: first mirror %s, want the onnxmodelzoo Hugging Face file", e.Name, e.URLs[0])
		}
		if last := e.URLs[len(e.URLs)-1]; !strings.HasPrefix(last, "https://github.com/onnx/models/") {
			t.Errorf("%s: last mirror %s, want github.com/onnx/models", e.Name, last)
		}
		for _, u := range e.URLs {
			if !strings.HasPrefix(u, "https://") || !strings.HasSuffix(u, "/"+w.file) {
				t.Errorf("%s: mirror %s is not an https URL of %s", e.Name, u, w.file)
			}
		}
	}
}

func TestCatalog_Lookup(t *testing.T) {
	c, err := LoadCatalog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		for _, name := range []string{"vgg16", "VGG16", " resnet50-v2 "} {
			e, err := c.Lookup(name)
			if err != nil {
				t.Fatalf("Lookup(%q): %v", name, err)
			}
			if want := strings.ToLower(strings.TrimSpace(name)); e.Name != want || !e.Builtin {
				t.Errorf("Lookup(%q) = %s builtin=%v, want %s built in", name, e.Name, e.Builtin, want)
			}
		}
	})
	t.Run("ErrUnknownModel", func(t *testing.T) {
		_, err := c.Lookup("vgg19")
		if !errors.Is(err, ErrUnknownModel) {
			t.Fatalf("err = %v, want ErrUnknownModel", err)
		}
		for _, want := range []string{`"vgg19"`, "vgg16, resnet50, resnet50-v2", "usable offline: resnet50-arch, resnet50-arch-torch, resnet50-v2-arch, vgg16-arch, vgg16-arch-torch", "pipeline models list"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	})
}

func TestCatalog_Add(t *testing.T) {
	cache := t.TempDir()
	files := t.TempDir()
	onnx, _, sum := randomFile(t, files, "mine.onnx", 4096)

	c, err := LoadCatalog(cache)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewLocalModel("Mine", onnx, "", Overrides{Preset: "caffe", Size: "299"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Add(e); err != nil {
		t.Fatal(err)
	}

	t.Run("Persisted", func(t *testing.T) {
		c2, err := LoadCatalog(cache)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c2.Lookup("mine")
		if err != nil {
			t.Fatal(err)
		}
		if !got.Local || got.Builtin || got.Path != onnx || got.SHA256 != sum || got.Size != 4096 || got.Format != FormatONNX {
			t.Errorf("reloaded entry = %+v; want local %s, %d bytes, sha256 %s, onnx", got, onnx, 4096, sum)
		}
		p := got.Preprocess
		if p.Width != 299 || p.Height != 299 || p.SwapRB || p.Mean != Presets["caffe"].Mean || p.Scale != 1 {
			t.Errorf("preprocess = %v, want caffe at 299x299", p)
		}
		names := c2.Names()
		if len(names) != len(BuiltinModels())+1 || names[len(names)-1] != "mine" || names[0] != "vgg16" {
			t.Errorf("Names() = %v, want the built-ins first, then mine", names)
		}
		paths, err := c2.Locate(got)
		if err != nil || paths.Model != onnx || paths.Config != "" {
			t.Errorf("Locate = %+v, %v; want %s", paths, err, onnx)
		}
		if path, cached := c2.Path(got); path != onnx || !cached {
			t.Errorf("Path = %s, %v; want %s, true", path, cached, onnx)
		}
	})

	t.Run("ErrModelExists", func(t *testing.T) {
		for _, name := range []string{"vgg16", "mine"} {
			dup := e
			dup.Name = name
			err := c.Add(dup)
			if !errors.Is(err, ErrModelExists) {
				t.Fatalf("Add(%s): err = %v, want ErrModelExists", name, err)
			}
			if want := map[string]string{"vgg16": "built-in", "mine": "pipeline models remove mine"}[name]; !strings.Contains(err.Error(), want) {
				t.Errorf("Add(%s): error %q does not contain %q", name, err, want)
			}
		}
	})

	t.Run("Remove", func(t *testing.T) {
		if err := c.Remove("vgg16"); err == nil || !strings.Contains(err.Error(), "built in") {
			t.Errorf("Remove(vgg16): err = %v, want a refusal", err)
		}
		if err := c.Remove("nope"); !errors.Is(err, ErrUnknownModel) {
			t.Errorf("Remove(nope): err = %v, want ErrUnknownModel", err)
		}
		if err := c.Remove("mine"); err != nil {
			t.Fatal(err)
		}
		c3, err := LoadCatalog(cache)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c3.Lookup("mine"); !errors.Is(err, ErrUnknownModel) {
			t.Errorf("after Remove and reload: err = %v, want ErrUnknownModel", err)
		}
		if _, err := os.Stat(onnx); err != nil {
			t.Errorf("Remove touched the user's file: %v", err)
		}
	})
}

func TestCatalog_Locate(t *testing.T) {
	cache := t.TempDir()
	files := t.TempDir()
	model, data, sum := randomFile(t, files, "net.caffemodel", 8192)
	proto, _, _ := randomFile(t, files, "net.prototxt", 300)
	c, err := LoadCatalog(cache)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewLocalModel("net", model, proto, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Format != FormatCaffe || e.Preprocess.Preset != "caffe" || e.Config == nil || e.Config.Path != proto {
		t.Fatalf("entry = %+v; want caffe with config %s and the caffe preset", e, proto)
	}
	if err := c.Add(e); err != nil {
		t.Fatal(err)
	}
	lookup := func() ModelEntry {
		t.Helper()
		e, err := c.Lookup("net")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	t.Run("OK", func(t *testing.T) {
		p, err := c.Locate(lookup())
		if err != nil || p.Model != model || p.Config != proto {
			t.Fatalf("Locate = %+v, %v; want %s + %s", p, err, model, proto)
		}
	})

	t.Run("TouchedButSame", func(t *testing.T) {
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(model, later, later); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Locate(lookup()); err != nil {
			t.Fatal(err)
		}
		// The new mtime is remembered, on disk, for the fast path.
		c2, err := LoadCatalog(cache)
		if err != nil {
			t.Fatal(err)
		}
		e2, _ := c2.Lookup("net")
		if e2.ModTime != later.UnixNano() {
			t.Errorf("stored mtime = %d, want %d", e2.ModTime, later.UnixNano())
		}
	})

	t.Run("ErrModelChanged", func(t *testing.T) {
		changed := append([]byte(nil), data...)
		changed[100] ^= 0xff
		if err := os.WriteFile(model, changed, 0o644); err != nil {
			t.Fatal(err)
		}
		newSum := sha256.Sum256(changed)
		later := time.Now().Add(2 * time.Hour)
		os.Chtimes(model, later, later)
		_, err := c.Locate(lookup())
		if !errors.Is(err, ErrModelChanged) {
			t.Fatalf("err = %v, want ErrModelChanged", err)
		}
		for _, want := range []string{model, sum, hex.EncodeToString(newSum[:]), "pipeline models remove net"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if _, cached := c.Path(lookup()); cached {
			t.Error("Path says cached for a changed file")
		}
	})

	t.Run("Vanished", func(t *testing.T) {
		if err := os.Remove(proto); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(model, data, 0o644); err != nil { // the weights are fine again
			t.Fatal(err)
		}
		_, err := c.Locate(lookup())
		if !errors.Is(err, ErrModelChanged) || !strings.Contains(err.Error(), proto+" is missing") {
			t.Fatalf("err = %v, want ErrModelChanged saying %s is missing", err, proto)
		}
	})
}

func TestCatalog_Pull(t *testing.T) {
	data := make([]byte, 2<<20+5)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	var served, missed atomic.Int32
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		http.ServeContent(w, r, "tiny.onnx", time.Time{}, strings.NewReader(string(data)))
	}))
	defer good.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		missed.Add(1)
		http.NotFound(w, r)
	}))
	defer bad.Close()

	tiny := ModelEntry{
		Name: "tiny", Format: FormatONNX,
		ModelFile: ModelFile{File: "tiny-1.onnx", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
			URLs: []string{bad.URL + "/tiny-1.onnx"}},
		Preprocess: Presets["torch"],
	}
	cache := t.TempDir()
	c, err := NewCatalog(cache, []ModelEntry{tiny})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Lookup("tiny")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(cache, "models", "tiny-1.onnx")

	t.Run("ErrNotCached", func(t *testing.T) {
		if path, cached := c.Path(e); path != want || cached {
			t.Fatalf("Path = %s, %v; want %s, false", path, cached, want)
		}
		_, err := c.Locate(e)
		if !errors.Is(err, ErrNotCached) {
			t.Fatalf("err = %v, want ErrNotCached", err)
		}
		msg := "model tiny is not in the cache (" + want + "): run `pipeline models pull tiny`, or use a local file"
		if err.Error() != msg {
			t.Errorf("error = %q\nwant    %q", err, msg)
		}
	})

	t.Run("AllMirrorsFail", func(t *testing.T) {
		_, err := c.Pull(context.Background(), "tiny", PullOptions{})
		if err == nil || !strings.Contains(err.Error(), bad.URL+"/tiny-1.onnx: HTTP 404") {
			t.Fatalf("err = %v, want the 404 of %s", err, bad.URL)
		}
	})

	t.Run("URLOverride", func(t *testing.T) {
		missed.Store(0)
		p, err := c.Pull(context.Background(), "tiny", PullOptions{URL: good.URL + "/tiny-1.onnx"})
		if err != nil {
			t.Fatal(err)
		}
		if p.Model != want {
			t.Errorf("Pull = %s, want %s", p.Model, want)
		}
		got, err := os.ReadFile(want)
		if err != nil || string(got) != string(data) {
			t.Fatalf("pulled file differs from the served one (%v)", err)
		}
		if missed.Load() != 0 || served.Load() != 1 {
			t.Errorf("requests: %d to the override, %d to the entry's mirror; want 1 and 0", served.Load(), missed.Load())
		}
		if path, cached := c.Path(e); path != want || !cached {
			t.Errorf("Path after Pull = %s, %v; want %s, true", path, cached, want)
		}
	})

	t.Run("AlreadyCached", func(t *testing.T) {
		if _, err := c.Pull(context.Background(), "tiny", PullOptions{URL: good.URL}); err != nil {
			t.Fatal(err)
		}
		if served.Load() != 1 {
			t.Errorf("%d requests, want no new one for a cached model", served.Load())
		}
	})

	t.Run("Corrupt", func(t *testing.T) {
		if err := os.WriteFile(want, []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := c.Locate(e)
		if !errors.Is(err, ErrModelChanged) || !strings.Contains(err.Error(), "pipeline models pull tiny") {
			t.Fatalf("err = %v, want ErrModelChanged with the pull hint", err)
		}
	})
}

func TestNewLocalModel(t *testing.T) {
	dir := t.TempDir()
	caffemodel, _, _ := randomFile(t, dir, "a.caffemodel", 100)
	pb, _, _ := randomFile(t, dir, "g.pb", 100)
	other, _, _ := randomFile(t, dir, "w.tflite", 100)
	keras, _, _ := randomFile(t, dir, "k.h5", 100)

	t.Run("TensorFlow", func(t *testing.T) {
		e, err := NewLocalModel("g", pb, "", Overrides{})
		if err != nil {
			t.Fatal(err)
		}
		if e.Format != FormatTensorFlow || e.Preprocess.Preset != "tf" || e.Config != nil {
			t.Errorf("entry = %+v, want tensorflow with the tf preset and no config", e)
		}
	})
	for name, c := range map[string]struct{ file, config, name, want string }{
		"CaffeWithoutConfig": {caffemodel, "", "a", "needs its network definition"},
		"UnknownExtension":   {other, "", "w", `".tflite"`},
		"Missing":            {filepath.Join(dir, "nope.onnx"), "", "n", "no such file"},
		"BadName":            {pb, "", "a/b", "model name"},
		"KerasFile":          {keras, "", "k", "converted when registered"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewLocalModel(c.name, c.file, c.config, Overrides{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestLoadCatalog(t *testing.T) {
	t.Run("Corrupt", func(t *testing.T) {
		cache := t.TempDir()
		reg := filepath.Join(cache, "models.json")
		if err := os.WriteFile(reg, []byte("{not json"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCatalog(cache)
		if err == nil || !strings.Contains(err.Error(), reg) {
			t.Fatalf("err = %v, want it to name %s", err, reg)
		}
	})
	t.Run("ShadowedByNewBuiltin", func(t *testing.T) {
		// A name registered before a built-in of that name appeared.
		cache := t.TempDir()
		files := t.TempDir()
		onnx, _, _ := randomFile(t, files, "x.onnx", 64)
		e, err := NewLocalModel("resnet50", onnx, "", Overrides{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewCatalog(cache, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Add(e); err != nil {
			t.Fatal(err)
		}
		c2, err := LoadCatalog(cache)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := c2.Lookup("resnet50")
		if !got.Builtin {
			t.Errorf("Lookup(resnet50) found the registered entry, want the built-in")
		}
		if w := c2.Warnings(); len(w) != 1 || !strings.Contains(w[0], "resnet50") {
			t.Errorf("Warnings() = %q, want one about resnet50", w)
		}
	})
}
