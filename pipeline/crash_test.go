package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pipeline/store"
)

// childCmd starts this test binary as an extract child.
func childCmd(t *testing.T, s childSpec) *exec.Cmd {
	t.Helper()
	spec, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	return cmd
}

// snapshot is what a database holds, independent of row ids and times:
// "sha256 layer" → vector bytes, and path → sha256.
type snapshot struct {
	vectors map[string]string
	paths   map[string]string
}

func takeSnapshot(t *testing.T, db string) snapshot {
	t.Helper()
	s := snapshot{vectors: map[string]string{}, paths: map[string]string{}}
	for _, r := range query(t, db, `SELECT sha256, layer, vector FROM feature_vectors`, nil) {
		k := r[0].(string) + " " + r[1].(string)
		if _, dup := s.vectors[k]; dup {
			t.Errorf("duplicate vector for %s", k)
		}
		s.vectors[k] = string(r[2].([]byte))
	}
	for _, r := range query(t, db, `SELECT p.relpath, i.sha256 FROM image_paths p JOIN images i ON i.id = p.image_id`, nil) {
		s.paths[r[0].(string)] = r[1].(string)
	}
	return s
}

func integrityOK(t *testing.T, db string) {
	t.Helper()
	if r := query(t, db, `PRAGMA integrity_check`, nil); len(r) != 1 || r[0][0] != "ok" {
		t.Errorf("integrity_check: %v", r)
	}
}

// TestExtract_CrashResume kills extraction children with SIGKILL at random
// moments; reruns must finish the job with no duplicate, no gap, and vectors
// byte-identical to an uninterrupted run, on each engine.
func TestExtract_CrashResume(t *testing.T) {
	for _, engine := range []string{"onednn", "opencv"} {
		t.Run(engine, func(t *testing.T) { crashResume(t, engine) })
	}
}

func crashResume(t *testing.T, engine string) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	const n = 400
	for i := 0; i < n; i++ {
		writePicture(t, filepath.Join(imgs, fmt.Sprintf("c%d", i%3), fmt.Sprintf("%03d.png", i)), uint64(i), 24+i%17, 24+i%13)
	}
	model, _ := filepath.Abs(tinyVGG)
	// Two networks side by side: batches finish out of order, the hardest
	// case for "no gap, no duplicate".
	spec := childSpec{Images: imgs, Model: model, Preset: "caffe", Layers: []string{"fc2", "block2_pool"}, Batch: 3, Nets: 2, Engine: engine}

	// The uninterrupted run, for comparison.
	clean := spec
	clean.DB = filepath.Join(dir, "clean.db")
	if out, err := childCmd(t, clean).CombinedOutput(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	want := takeSnapshot(t, clean.DB)
	if len(want.vectors) != 2*n || len(want.paths) != n {
		t.Fatalf("clean run stored %d vectors and %d paths, want %d and %d", len(want.vectors), len(want.paths), 2*n, n)
	}

	crash := spec
	crash.DB = filepath.Join(dir, "crash.db")
	r := rand.New(rand.NewPCG(1, 2))
	kills, stored := 0, int64(0)
	// Kill when the child has stored a random number more vectors (plus a
	// random few milliseconds): mid-run whatever the machine's speed.
	for attempt := 0; attempt < 20 && stored < 2*n*3/4; attempt++ {
		target := stored + int64(2*n/20+r.IntN(2*n/6))
		killed := runUntil(t, crash, crash.DB, `SELECT count(*) FROM features`, target, time.Millisecond, 3*time.Millisecond, r)
		if !killed {
			break // finished before the target
		}
		kills++
		integrityOK(t, crash.DB)
		stored = asInt(query(t, crash.DB, `SELECT count(*) FROM features`, nil)[0][0])
		// No gap: every stored image has both of its vectors.
		if g := query(t, crash.DB, `SELECT count(*) FROM images i WHERE (SELECT count(*) FROM features f WHERE f.image_id = i.id) != 2`, nil); asInt(g[0][0]) != 0 {
			t.Errorf("after kill %d: %v images without both vectors", kills, g[0][0])
		}
	}
	// Finish the job (in case the last child was killed).
	if out, err := childCmd(t, crash).CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	integrityOK(t, crash.DB)
	got := takeSnapshot(t, crash.DB)
	if len(got.vectors) != len(want.vectors) || len(got.paths) != len(want.paths) {
		t.Errorf("after %d kills: %d vectors, %d paths; uninterrupted: %d, %d", kills, len(got.vectors), len(got.paths), len(want.vectors), len(want.paths))
	}
	for k, v := range want.vectors {
		if got.vectors[k] != v {
			t.Errorf("vector %s differs from the uninterrupted run", k)
			break
		}
	}
	for p, sha := range want.paths {
		if got.paths[p] != sha {
			t.Errorf("path %s: %q, want %q", p, got.paths[p], sha)
		}
	}
	if r := query(t, crash.DB, `SELECT DISTINCT engine FROM feature_sets UNION ALL SELECT DISTINCT engine FROM runs WHERE status = 'ok'`, nil); len(r) != 2 || r[0][0] != engine || r[1][0] != engine {
		t.Errorf("engines recorded (feature_sets, finished runs) = %v, want %s", r, engine)
	}
	runs := query(t, crash.DB, `SELECT status, count(*) FROM runs GROUP BY status ORDER BY status`, nil)
	t.Logf("%d kills; runs by status: %v", kills, runs)
	abandoned := 0
	for _, r := range runs {
		switch r[0] {
		case "running":
			t.Errorf("%v runs still 'running' after a later run took the lock", r[1])
		case "abandoned":
			abandoned = int(asInt(r[1]))
		}
	}
	if abandoned < 3 {
		t.Errorf("only %d kills landed during a run: the test did not test much", abandoned)
	}
}

// TestExtract_Lock: two extracts on one database. The second either exits
// at once naming the run that holds the database, or waits for it; the
// result is complete either way.
func TestExtract_Lock(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	for i := 0; i < 400; i++ {
		writePicture(t, filepath.Join(imgs, "a", fmt.Sprintf("%03d.png", i)), uint64(i), 32, 32)
	}
	model, _ := filepath.Abs(tinyVGG)
	db := filepath.Join(dir, "f.db")
	first := childCmd(t, childSpec{DB: db, Images: imgs, Model: model, Preset: "caffe", Layers: []string{"fc2"}, Batch: 1})
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	// Wait until the child holds the lock and has started its run.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n, ok := tryCount(db, `SELECT count(*) FROM runs WHERE status = 'running'`); ok && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first extract never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := tinyModel(t, tinyVGG, "caffe")
	opts := ExtractOptions{DB: db, Model: m, Layers: []string{"fc2"}, Batch: 8, Images: imgs}
	_, err := Extract(context.Background(), opts)
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second extract: %v, want ErrLocked", err)
	}
	for _, want := range []string{"run 1", "extract", fmt.Sprint("pid ", first.Process.Pid)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lock message %q does not name %q", err, want)
		}
	}
	opts.Wait = time.Minute
	sum, err := Extract(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("first extract: %v", err)
	}
	if sum.Counts.Present != 400 || sum.Counts.Extracted != 0 {
		t.Errorf("waiting extract: %+v, want everything present (the first one finished before it ran)", sum.Counts)
	}
	integrityOK(t, db)
	if r := query(t, db, `SELECT count(*), (SELECT group_concat(status) FROM runs) FROM features`, nil); asInt(r[0][0]) != 400 || r[0][1] != "ok,ok" {
		t.Errorf("features, run statuses = %v, want 400, ok,ok", r[0])
	}
}

// tryCount runs a count query, or says the database is not ready yet.
// runUntil starts the child of spec s and SIGKILLs it once countQuery on
// db reaches target, after a random delay below jitter (mid-write whatever
// the machine's speed), polling every poll. It says whether the child was
// killed (false: it finished first).
func runUntil(t *testing.T, s childSpec, db, countQuery string, target int64, poll, jitter time.Duration, r *rand.Rand) bool {
	t.Helper()
	cmd := childCmd(t, s)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v ended with %v", cmd.Args[1:], err)
			}
			return false
		case <-time.After(poll):
		}
		if c, ok := tryCount(db, countQuery); ok && c >= target {
			time.Sleep(time.Duration(r.Int64N(int64(jitter))))
			cmd.Process.Kill() // SIGKILL
			<-done
			return true
		}
	}
}

func tryCount(path, q string) (int64, bool) {
	if _, err := os.Stat(path); err != nil {
		return 0, false
	}
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return 0, false
	}
	defer db.Close()
	_, rows, err := db.Query(context.Background(), q, nil, false)
	if err != nil {
		return 0, false
	}
	return asInt(rows[0][0]), true
}
