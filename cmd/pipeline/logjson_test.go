package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"pipeline/internal/testutil"
)

// TestCLI_LogFormatJSON: with --log-format json every stderr line is one
// JSON object: failures with path, stage and message, progress, the final
// error at level ERROR; the lying JPEG is a decode failure with libjpeg's
// warning and no raw libjpeg line (issues 11.6, 11.8). docs/OPERATIONS.md's
// jq recipes run on the log.
func TestCLI_LogFormatJSON(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b"}, 3)
	if err := os.WriteFile(filepath.Join(imgs, "a", "lying.jpg"), testutil.LyingJPEG(t, 9000, 9000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(imgs, "b", "bad.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A PNG with a bad CRC on an ancillary chunk: libpng (inside OpenCV)
	// would print "libpng warning: tEXt: CRC error" on fd 2; it is a
	// decode failure with that message instead.
	crcPNG := testutil.WithChunk(testutil.PNGChunks(t, 40, 40), 1, testutil.Chunk{Name: "tEXt", Data: []byte("Comment\x00hello"), BadCRC: true})
	if err := os.WriteFile(filepath.Join(imgs, "b", "crc.png"), testutil.EncodeChunks(crcPNG), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PIPELINE_DB=" + filepath.Join(dir, "f.db")}
	r := run(t, env, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs, "--json", "--log-format", "json")
	r.want(t, 3)
	var sum map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
		var o map[string]any
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		objs = append(objs, o)
	}
	if strings.Contains(r.stderr, "\nCorrupt JPEG data") || strings.HasPrefix(r.stderr, "Corrupt JPEG data") {
		t.Errorf("libjpeg's raw line reached stderr")
	}
	var lying, errLine, native, crc bool
	for _, o := range objs {
		if o["source"] == "native stderr" && strings.Contains(o["msg"].(string), "libpng") {
			native = true
		}
		if o["msg"] == "file failed" && strings.HasSuffix(o["path"].(string), "crc.png") {
			crc = o["stage"] == "decode" && strings.Contains(o["message"].(string), "libpng: tEXt: CRC error")
		}
		if o["msg"] == "file failed" && strings.HasSuffix(o["path"].(string), "lying.jpg") {
			lying = o["stage"] == "decode" && strings.Contains(o["message"].(string), "Corrupt JPEG data: premature end of data segment")
		}
		if o["level"] == "ERROR" {
			errLine = o["exit_code"] == float64(3) && o["class"] == "partial"
		}
	}
	if !lying || !errLine {
		t.Errorf("want a decode failure of lying.jpg with libjpeg's warning (%v) and the final error at level ERROR with exit_code 3 (%v):\n%s", lying, errLine, r.stderr)
	}

	if native || !crc {
		t.Errorf("want a decode failure of crc.png with libpng's warning (%v) and no libpng line from native stderr (%v):\n%s", crc, native, r.stderr)
	}

	// A usage error in JSON: one object, no flag dump.
	u := run(t, env, "extract", "--bogus", "--log-format", "json")
	u.want(t, 2)
	if lines := strings.Split(strings.TrimSpace(u.stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], `"level":"ERROR"`) {
		t.Errorf("usage error with --log-format json:\n%s", u.stderr)
	}

	// The jq recipes of docs/OPERATIONS.md.
	jq, err := exec.LookPath("jq")
	if err != nil {
		t.Fatalf("jq is needed (scripts/deps.sh --test installs it): %v", err)
	}
	_ = jq
	log := filepath.Join(dir, "pipeline.log")
	if err := os.WriteFile(log, []byte(r.stderr+u.stderr), 0o644); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)<!-- jq-recipes -->(.*?)<!-- /jq-recipes -->").FindSubmatch(doc)
	if block == nil {
		t.Fatal("docs/OPERATIONS.md has no jq-recipes block")
	}
	n := 0
	for _, line := range strings.Split(string(block[1]), "\n") {
		if !strings.HasPrefix(line, "jq ") {
			continue
		}
		n++
		cmdline := strings.ReplaceAll(strings.SplitN(line, "pipeline.log", 2)[0]+"pipeline.log", "pipeline.log", log)
		out, err := exec.Command("sh", "-c", cmdline).CombinedOutput()
		// Native output may or may not occur in this run: that recipe
		// only has to run.
		if err != nil || (len(bytes.TrimSpace(out)) == 0 && !strings.Contains(line, ".source")) {
			t.Errorf("%s: %v, output %q", line, err, out)
		}
	}
	if n < 3 {
		t.Errorf("%d jq recipes run", n)
	}
}
