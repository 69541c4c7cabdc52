package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"pipeline/extract/onnx"
	"pipeline/internal/testutil"
)

// badCorpus writes the bad-input corpus and the files that must work, and
// returns the expected failures: file name → stage and message part.
func badCorpus(t *testing.T, dir string) (failures map[string][2]string, good []string) {
	t.Helper()
	jpg := writePicture(t, filepath.Join(dir, "x", "truncated.jpg"), 1, 80, 60)
	testutil.WriteFile(t, filepath.Join(dir, "x", "truncated.jpg"), jpg[:len(jpg)*6/10])
	testutil.WriteFile(t, filepath.Join(dir, "x", "empty.jpg"), nil)
	testutil.WriteFile(t, filepath.Join(dir, "x", "text.jpg"), []byte("this is a text file, not a photo\n"))
	var g bytes.Buffer
	if err := gif.Encode(&g, picture(2, 10, 10), nil); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, filepath.Join(dir, "x", "anim.jpg"), g.Bytes())
	testutil.WriteFile(t, filepath.Join(dir, "x", "huge.png"), hugePNGHeader(100000, 100000))

	// Unusual but valid.
	deep := image.NewNRGBA64(image.Rect(0, 0, 20, 20))
	gray := image.NewGray(image.Rect(0, 0, 20, 20))
	rgba := image.NewNRGBA(image.Rect(0, 0, 20, 20))
	for y := 0; y < 20; y++ {
		for x := 0; x < 20; x++ {
			deep.SetNRGBA64(x, y, color.NRGBA64{R: uint16(x * 3000), G: uint16(y * 3000), B: 40000, A: 65535})
			gray.SetGray(x, y, color.Gray{Y: uint8(x * 12)})
			rgba.SetNRGBA(x, y, color.NRGBA{R: uint8(y * 12), G: 99, B: uint8(x * 12), A: uint8(x * 12)})
		}
	}
	for name, img := range map[string]image.Image{"deep16.png": deep, "gray.png": gray, "rgba.png": rgba} {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		testutil.WriteFile(t, filepath.Join(dir, "y", name), b.Bytes())
	}
	cmyk, err := os.ReadFile("../testdata/images/cmyk.jpg")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, filepath.Join(dir, "y", "cmyk.jpg"), cmyk)
	writePicture(t, filepath.Join(dir, "y", "ünïcødé name, with spaces ✓.jpg"), 3, 30, 30)
	// A directory symlink loop must not hang the walk.
	if err := os.Symlink("..", filepath.Join(dir, "y", "loop")); err != nil {
		t.Fatal(err)
	}
	failures = map[string][2]string{
		"truncated.jpg": {"decode", "truncated JPEG"},
		"empty.jpg":     {"decode", "empty file (0 bytes)"},
		"text.jpg":      {"decode", `not an image: no known image signature (starts with "this is a text f"...)`},
		"anim.jpg":      {"decode", "GIF (OpenCV cannot decode GIF"},
		"huge.png":      {"size", "100000x100000 = 10.0G pixels, over the limit of 100.0M"},
	}
	good = []string{"deep16.png", "gray.png", "rgba.png", "cmyk.jpg", "ünïcødé name, with spaces ✓.jpg"}
	return failures, good
}

// hugePNGHeader is a PNG claiming w x h pixels, with no pixel data to speak of.
func hugePNGHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

func TestExtract_BadInput(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	wantFail, good := badCorpus(t, imgs)
	db := filepath.Join(dir, "f.db")
	model := tinyModel(t, tinyVGG, "caffe")
	ev := &events{}
	sum, err := Extract(context.Background(), ExtractOptions{DB: db, Model: model, Layers: []string{"fc2"}, Batch: 4,
		Images: imgs, MaxPixels: 100_000_000, Events: ev})
	if !errors.Is(err, ErrPartial) || sum.Status != "partial" {
		t.Fatalf("err %v status %s, want ErrPartial / partial", err, sum.Status)
	}
	if sum.Counts.Failed != int64(len(wantFail)) || sum.Counts.Extracted != int64(len(good)) {
		t.Errorf("failed %d extracted %d, want %d and %d", sum.Counts.Failed, sum.Counts.Extracted, len(wantFail), len(good))
	}
	rows := query(t, db, `SELECT path, stage, message FROM failures WHERE run_id = :run ORDER BY path`, map[string]any{"run": sum.RunID})
	got := map[string][2]string{}
	for _, r := range rows {
		got[filepath.Base(r[0].(string))] = [2]string{r[1].(string), r[2].(string)}
	}
	for name, w := range wantFail {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: no failures row", name)
			continue
		}
		if g[0] != w[0] || !strings.Contains(g[1], w[1]) {
			t.Errorf("%s: failure %q %q, want stage %q and a message containing %q", name, g[0], g[1], w[0], w[1])
		}
	}
	if len(ev.failed) != len(wantFail) {
		t.Errorf("%d failures reported to the user, want %d", len(ev.failed), len(wantFail))
	}
	for _, name := range good {
		n := query(t, db, `SELECT count(*) FROM feature_vectors WHERE path LIKE :p`, map[string]any{"p": "%/" + name})
		if asInt(n[0][0]) != 1 {
			t.Errorf("%s: %v vectors, want 1", name, n[0][0])
		}
	}
	if r := query(t, db, `SELECT exit_code, failed FROM runs WHERE id = :run`, map[string]any{"run": sum.RunID}); asInt(r[0][0]) != 3 || asInt(r[0][1]) != 5 {
		t.Errorf("run row exit_code, failed = %v, want 3, 5", r[0])
	}
}

// TestExtract_Unreadable: a file without read permission is a failure with
// the reason. As root every file is readable, so the run happens in a child
// process as nobody.
func TestExtract_Unreadable(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	imgs := filepath.Join(dir, "images")
	writePicture(t, filepath.Join(imgs, "a", "ok.jpg"), 1, 30, 30)
	writePicture(t, filepath.Join(imgs, "a", "secret.jpg"), 2, 30, 30)
	if err := os.Chmod(filepath.Join(imgs, "a", "secret.jpg"), 0); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "f.db")
	extractUnprivileged(t, dir, imgs, db, "some files failed: 1 of 2 files")
	r := query(t, db, `SELECT path, stage, message FROM failures`, nil)
	if len(r) != 1 || !strings.HasSuffix(r[0][0].(string), "secret.jpg") || r[0][1] != "read" || r[0][2] != "permission denied" {
		t.Errorf("failures %v, want secret.jpg read permission denied", r)
	}
}

// extractUnprivileged extracts fc2 of the tiny model from imgs into db as a
// user whom file permissions apply to: this process when it is not root,
// else a child process as nobody (dir and its parents must be reachable).
// The run must end with ErrPartial, whose message contains want.
func extractUnprivileged(t *testing.T, dir, imgs, db, want string) {
	t.Helper()
	if os.Geteuid() != 0 {
		_, err := Extract(context.Background(), ExtractOptions{DB: db, Model: tinyModel(t, tinyVGG, "caffe"), Layers: []string{"fc2"}, Images: imgs})
		if !errors.Is(err, ErrPartial) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err %v, want ErrPartial with %q", err, want)
		}
		return
	}
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, fi.Mode().Perm()|0o005)
		}
	}
	os.Chmod(dir, 0o777)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "test.bin")
	testutil.CopyFile(t, exe, bin)
	model, _ := filepath.Abs(tinyVGG)
	spec, _ := json.Marshal(childSpec{DB: db, Images: imgs, Model: model, Preset: "caffe", Layers: []string{"fc2"}, Batch: 1})
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec), "HOME="+dir, "PIPELINE_CACHE="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("child as nobody: err %v, output %s", err, out)
	}
}

// TestExtract_NonFiniteVector: a vector with NaN or Inf is a failure, not a row.
func TestExtract_NonFiniteVector(t *testing.T) {
	dir := t.TempDir()
	b := onnx.NewBuilder("nan")
	x := b.Input("data", onnx.Dim{Param: "N"}, onnx.Dim{Value: 3}, onnx.Dim{Value: 8}, onnx.Dim{Value: 8})
	w := make([]float32, 2*3*3*3)
	for i := range w {
		w[i] = 0.1
	}
	w[5] = float32(math.Inf(1)) // channel 0 is +Inf or NaN everywhere
	x = b.Conv("conv", x, "conv_out", onnx.NewFloat32("w", []int{2, 3, 3, 3}, w), onnx.NewFloat32("b", []int{2}, []float32{0.1, -0.1}), onnx.ConvAttrs{Pads: []int{1, 1, 1, 1}})
	x = b.GlobalAveragePool("gap", x, "gap_out")
	b.Output(x)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nan.onnx")
	if err := onnx.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	imgs := filepath.Join(dir, "images")
	writePicture(t, filepath.Join(imgs, "a.png"), 1, 8, 8)
	db := filepath.Join(dir, "f.db")
	sum, err := Extract(context.Background(), ExtractOptions{DB: db, Model: tinyModel(t, path, "caffe"), Layers: []string{"gap"}, Images: imgs})
	if !errors.Is(err, ErrPartial) || sum.Counts.Failed != 1 || sum.Counts.Extracted != 0 {
		t.Fatalf("err %v counts %+v", err, sum.Counts)
	}
	r := query(t, db, `SELECT stage, message, (SELECT count(*) FROM features), (SELECT count(*) FROM images) FROM failures`, nil)
	if len(r) != 1 || r[0][0] != "vector" || !strings.Contains(r[0][1].(string), "value 0 of 2 is") || asInt(r[0][2]) != 0 || asInt(r[0][3]) != 0 {
		t.Errorf("failures / counts = %v, want one vector failure and no rows", r)
	}
}
