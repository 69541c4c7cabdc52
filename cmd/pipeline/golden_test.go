package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"pipeline/internal/testutil"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden/*.json from the commands' --json output")

// The --json output of every command is a contract (docs/JSON.md). The
// golden files pin its shape: every key, at every depth, with the JSON type
// of its value ("<string>", "<number>", "<bool>", null, an object, or an
// array of the union of its elements' shapes), and the exit code. Values
// are left out: they depend on the machine, the time and the floats; the
// command tests check them.

// shapeOf turns a decoded JSON value into its shape.
func shapeOf(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = shapeOf(e)
		}
		return out
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		var u any
		for i, e := range x {
			if i == 0 {
				u = shapeOf(e)
			} else {
				u = unionShape(u, shapeOf(e))
			}
		}
		return []any{u}
	case string:
		return "<string>"
	case float64:
		return "<number>"
	case bool:
		return "<bool>"
	}
	return nil
}

// unionShape merges two shapes: the keys of both objects; a key null in
// one and typed in the other keeps the type (a nullable value is written
// "<type>|null").
func unionShape(a, b any) any {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		out := map[string]any{}
		for k, v := range am {
			out[k] = v
		}
		for k, v := range bm {
			if o, ok := out[k]; ok {
				out[k] = unionShape(o, v)
			} else {
				out[k] = v
			}
		}
		return out
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		switch {
		case len(as) == 0:
			return bs
		case len(bs) == 0:
			return as
		}
		return []any{unionShape(as[0], bs[0])}
	}
	if a == nil && b == nil {
		return nil
	}
	if a == nil || b == nil {
		s, _ := a.(string)
		if s == "" {
			s, _ = b.(string)
		}
		if s == "" {
			return b // an object or array that may be null
		}
		return strings.TrimSuffix(s, "|null") + "|null"
	}
	if fmt.Sprint(a) == fmt.Sprint(b) {
		return a
	}
	return fmt.Sprintf("%v|%v", a, b)
}

// jsonShape reads one JSON document, or one per line (NDJSON: predict,
// sql), and returns its shape; NDJSON is the union of its lines.
func jsonShape(t *testing.T, r result, ndjson bool) any {
	t.Helper()
	out := r.stdout
	if !ndjson {
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("not one JSON document: %v\nstdout: %s\nstderr: %s", err, out, r.stderr)
		}
		return shapeOf(v)
	}
	var lines []any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q is not JSON: %v\nstderr: %s", l, err, r.stderr)
		}
		lines = append(lines, v)
	}
	return map[string]any{"lines": shapeOf(lines)}
}

// golden compares a command's exit code and output shape with
// testdata/golden/NAME.json (rewritten with -update). The shapes of the
// top-level keys named in machineDependent are "<machine>": present, with a
// shape that depends on the machine (OpenCL devices, say).
func golden(t *testing.T, name string, r result, ndjson bool, machineDependent ...string) {
	t.Helper()
	goldenStream(t, name, "stdout", r, ndjson, machineDependent...)
}

// goldenStream is golden for stdout or stderr (the JSON log lines).
func goldenStream(t *testing.T, name, stream string, r result, ndjson bool, machineDependent ...string) {
	t.Helper()
	if stream == "stderr" {
		r.stdout = r.stderr
	}
	shape := jsonShape(t, r, ndjson)
	for _, k := range machineDependent {
		if m, ok := shape.(map[string]any); ok {
			m[k] = "<machine>"
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"exit_code": r.code, stream: shape}); err != nil {
		t.Fatal(err)
	}
	got := b.Bytes()
	path := filepath.Join("testdata", "golden", name+".json")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/pipeline -run TestJSON_Golden -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s --json changed shape (docs/JSON.md is the contract: update it, then go test -run TestJSON_Golden -update)\ngot:\n%s\nwant:\n%s\nstderr: %s", name, got, want, r.stderr)
	}
}

// noiseImages writes n pictures per class whose content does not depend
// on the class: a classifier is at chance on them, so eval --errors has
// mistakes to list.
func noiseImages(t *testing.T, dir string, classes []string, n int) {
	t.Helper()
	for c, name := range classes {
		for i := range n {
			r := rand.New(rand.NewPCG(uint64(c*1000+i), 99))
			img := image.NewNRGBA(image.Rect(0, 0, 24, 24))
			for p := range img.Pix {
				img.Pix[p] = uint8(r.IntN(256))
				if p%4 == 3 {
					img.Pix[p] = 255 // opaque
				}
			}
			testutil.WritePicture(t, filepath.Join(dir, name, fmt.Sprintf("%02d.png", i)), img)
		}
	}
}

// TestJSON_Golden runs every command that has --json on a small generated
// fixture and pins the shape of what it prints.
func TestJSON_Golden(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	noiseImages(t, imgs, []string{"a", "b", "c"}, 10)
	db := filepath.Join(dir, "f.db")
	env := []string{"PIPELINE_DB=" + db}
	one := filepath.Join(imgs, "a", "00.png")
	bad := filepath.Join(dir, "bad.png")
	if err := os.WriteFile(bad, []byte("not a picture"), 0o644); err != nil {
		t.Fatal(err)
	}

	golden(t, "extract", run(t, env, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2,block3_pool", "--images", imgs, "--json"), false)
	golden(t, "fit", run(t, env, "fit", "--layer", "fc2", "--clf", "svm", "--name", "s", "--grid-c", "-1:1:2", "--grid-gamma", "-3:-5:-2", "--cv", "2", "--json"), false)
	golden(t, "fit-final", run(t, env, "fit", "--layer", "block3_pool", "--clf", "logreg", "--name", "f", "--cv", "2", "--final", "--json"), false)
	golden(t, "eval", run(t, env, "eval", "s", "--errors", "--json"), false)
	golden(t, "predict", run(t, env, "predict", "s", one, bad, "--model", tiny, "--top", "2", "--json"), true)
	golden(t, "similar", run(t, env, "similar", one, "--layer", "fc2", "--k", "3", "--json"), false)
	golden(t, "classifiers", run(t, env, "classifiers", "--json"), false)
	golden(t, "runs", run(t, env, "runs", "--json"), false)
	golden(t, "check", run(t, env, "check", "--json"), false)
	golden(t, "sql", run(t, env, "sql", "--json", "SELECT name, kind, dim, metrics IS NULL AS no_metrics, NULL AS nil_value, x'00ff' AS bytes FROM classifiers"), true)
	golden(t, "layers", run(t, env, "layers", "--model", tiny, "--json"), false)
	golden(t, "models", run(t, env, "models", "list", "--json"), false)
	golden(t, "version", run(t, nil, "version", "--json"), false, "opencl_devices", "opencl_note")
	// An error under --json: nothing on stdout; with --log-format json, one
	// line on stderr.
	r := run(t, env, "eval", "nope", "--json", "--log-format", "json")
	if r.stdout != "" {
		t.Errorf("eval nope --json printed %q on stdout, want nothing", r.stdout)
	}
	goldenStream(t, "errors", "stderr", r, true)

	other := filepath.Join(dir, "g.db")
	run(t, nil, "extract", "--db", other, "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs).want(t, 0)
	golden(t, "merge", run(t, nil, "merge", "--into", filepath.Join(dir, "all.db"), db, other, "--json"), false)
	golden(t, "sweep", run(t, nil, "sweep", "--db", filepath.Join(dir, "sweep.db"), "--model", tiny, "--preprocess", "caffe", "--images", imgs,
		"--layers", "fc2,block3_pool", "--clf", "logreg,knn", "--cv", "2", "--json"), false)
}

var sectionLink = regexp.MustCompile(`\(#pipeline-([a-z]+)\)`)

// TestJSON_Documented: docs/JSON.md names every key the golden files hold,
// in the section of its command or among the shared objects.
func TestJSON_Documented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/JSON.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	heading := regexp.MustCompile("(?m)^## `pipeline ([a-z -]+)`|^## (Shared objects|Errors)")
	idx := heading.FindAllSubmatchIndex(doc, -1)
	for i, m := range idx {
		end := len(doc)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		var name string
		if m[2] >= 0 {
			name = string(doc[m[2]:m[3]])
		} else {
			name = string(doc[m[4]:m[5]])
		}
		sections[name] = string(doc[m[0]:end])
	}
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files (%v)", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		cmd := strings.TrimSuffix(name, "-final")
		if cmd == "errors" {
			cmd = "Errors"
		}
		sec, ok := sections[cmd]
		if !ok {
			t.Errorf("docs/JSON.md has no section \"## `pipeline %s`\"", cmd)
			continue
		}
		keys := goldenKeys(t, f)
		if cmd == "predict" || cmd == "sql" || cmd == "Errors" {
			delete(keys, "lines") // the NDJSON wrapper of the golden file
		}
		if cmd == "sql" {
			continue // the keys are the query's column names
		}
		// The command's section, the sections it links to (sweep prints
		// extract's summary) and the shared objects.
		text := sec + sections["Shared objects"]
		for _, l := range sectionLink.FindAllStringSubmatch(sec, -1) {
			text += sections[l[1]]
		}
		var missing []string
		for k := range keys {
			if !strings.Contains(text, "`"+k+"`") {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("docs/JSON.md, `pipeline %s`: keys not documented: %s", cmd, strings.Join(missing, ", "))
		}
	}
}

// TestJSON_SnakeCase: every key every command prints is snake_case.
func TestJSON_SnakeCase(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	for _, f := range files {
		for k := range goldenKeys(t, f) {
			if !snake.MatchString(k) {
				t.Errorf("%s: key %q is not snake_case", f, k)
			}
		}
	}
}

// goldenKeys lists the keys, at every depth, of a golden file's stdout.
func goldenKeys(t *testing.T, file string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var g struct{ Stdout, Stderr any }
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	collectKeys(g.Stdout, keys)
	collectKeys(g.Stderr, keys)
	return keys
}

func collectKeys(v any, keys map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			keys[k] = true
			collectKeys(e, keys)
		}
	case []any:
		for _, e := range x {
			collectKeys(e, keys)
		}
	}
}
