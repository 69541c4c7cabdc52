package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/internal/testutil"
)

// damagedPNGs writes PNGs that libpng warns about or fails on, and one
// with a harmless metadata warning, into dir; it returns the message
// libpng gives for each damaged file ("" for the harmless one).
func damagedPNGs(t *testing.T, dir string) map[string]string {
	t.Helper()
	good := testutil.PNGChunks(t, 41, 29)
	files := map[string][]testutil.Chunk{}
	files["crc.png"] = testutil.WithChunk(testutil.CloneChunks(good), 1, testutil.Chunk{Name: "tEXt", Data: []byte("Comment\x00x"), BadCRC: true})
	z := testutil.IDAT(good)
	adler := append([]byte(nil), z...)
	adler[len(adler)-1] ^= 0xff
	files["adler.png"] = testutil.WithIDAT(testutil.CloneChunks(good), adler)
	files["extra.png"] = testutil.WithIDAT(testutil.CloneChunks(good), append(append([]byte(nil), z...), 0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01))
	files["short.png"] = testutil.WithIDAT(testutil.CloneChunks(good), z[:len(z)/2])
	files["gama.png"] = testutil.WithChunk(testutil.CloneChunks(good), 1, testutil.Chunk{Name: "gAMA", Data: []byte{1, 2, 3}})
	for name, c := range files {
		if err := os.WriteFile(filepath.Join(dir, name), testutil.EncodeChunks(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]string{
		"crc.png":   "libpng: tEXt: CRC error",
		"adler.png": "libpng: IDAT: incorrect data check",
		"extra.png": "libpng: IDAT: Extra compressed data",
		"short.png": "libpng: Not enough image data",
		"gama.png":  "",
	}
}

// TestCLI_PNGWarnings: libpng's warnings and errors make that file a
// decode failure with libpng's message, in both log formats, and no raw
// "libpng warning"/"libpng error" line reaches stderr (issue 11.6). A PNG
// whose only fault is a malformed gAMA chunk (colour metadata OpenCV does
// not use) is extracted, silently.
func TestCLI_PNGWarnings(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			imgs := filepath.Join(dir, "images")
			images(t, imgs, []string{"a", "b"}, 2)
			want := damagedPNGs(t, filepath.Join(imgs, "a"))
			env := []string{"PIPELINE_DB=" + filepath.Join(dir, "f.db")}
			r := run(t, env, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs, "--log-format", format)
			r.want(t, 3)
			if strings.Contains(r.stderr, "libpng warning") || strings.Contains(r.stderr, "libpng error") {
				t.Errorf("a raw libpng line reached stderr:\n%s", r.stderr)
			}
			got := map[string]string{} // base name → stage: message on stderr
			for _, line := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
				if format == "json" {
					var o map[string]any
					if err := json.Unmarshal([]byte(line), &o); err != nil {
						t.Errorf("stderr line is not JSON: %q", line)
						continue
					}
					if o["msg"] == "file failed" {
						got[filepath.Base(o["path"].(string))] = o["stage"].(string) + ": " + o["message"].(string)
					}
					continue
				}
				if p, rest, ok := strings.Cut(line, ": "); ok && strings.HasSuffix(p, ".png") {
					got[filepath.Base(p)] = rest
				}
			}
			// The failures table holds the same.
			q := run(t, env, "sql", "--json", "SELECT path, stage, message FROM failures")
			q.want(t, 0)
			stored := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(q.stdout), "\n") {
				var row struct{ Path, Stage, Message string }
				if err := json.Unmarshal([]byte(line), &row); err != nil {
					t.Fatalf("%v\n%s", err, q.stdout)
				}
				stored[filepath.Base(row.Path)] = row.Stage + ": " + row.Message
			}
			for name, msg := range want {
				for where, m := range map[string]map[string]string{"stderr": got, "failures table": stored} {
					if msg == "" {
						if s, ok := m[name]; ok {
							t.Errorf("%s: %s failed (%s), want it extracted", where, name, s)
						}
						continue
					}
					if s := m[name]; !strings.HasPrefix(s, "decode: ") || !strings.Contains(s, msg) {
						t.Errorf("%s: %s: %q, want a decode failure with %q", where, name, s, msg)
					}
				}
			}
		})
	}
}
