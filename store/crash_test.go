package store

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestDB_WriteBatchCrash kills extracting child processes (childExtract) at
// random moments, then checks what the crash-safety argument in DESIGN.md
// promises: the database is intact, every committed batch is complete (no
// image without the vectors of its batch, run counters matching what was
// committed), and a rerun completes the work without duplicates.
func TestDB_WriteBatchCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := context.Background()
	db := newDB(t)
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	const kills = 10
	var counts []int64
	var wantStatus []string // per run, in order
	for k := range kills {
		c := startChild(t, "extract", "STORE_TEST_DB="+db.Path(), "STORE_TEST_PAUSE=1ms")
		c.expect(t, "started")
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		if c.kill(t) {
			wantStatus = append(wantStatus, RunAbandoned)
		} else {
			wantStatus = append(wantStatus, RunOK)
		}
		n := queryInt(t, db, `SELECT count(*) FROM images`)
		counts = append(counts, n)
		checkCrashState(t, db)
		if t.Failed() {
			t.Fatalf("after kill %d (%d images)", k+1, n)
		}
	}
	t.Logf("images after each kill: %v of %d", counts, crashImages)
	if !slices.ContainsFunc(counts, func(n int64) bool { return n > 0 && n < crashImages }) {
		t.Errorf("no kill landed mid-extraction (images after each: %v); the test proved nothing", counts)
	}

	// A rerun finishes the job.
	c := startChild(t, "extract", "STORE_TEST_DB="+db.Path())
	c.expect(t, "started")
	if err := c.wait(t); err != nil {
		t.Fatalf("final run: %v; stderr: %s", err, c.errb.String())
	}
	checkCrashState(t, db)
	if n := queryInt(t, db, `SELECT count(*) FROM images`); n != crashImages {
		t.Errorf("%d images after the final run, want %d", n, crashImages)
	}
	if n, want := queryInt(t, db, `SELECT count(*) FROM features`), int64(crashImages*len(crashDims)); n != want {
		t.Errorf("%d vectors, want %d", n, want)
	}
	// Every vector written exactly once over all runs: the counters
	// committed with the batches add up to the vectors stored.
	if n, want := queryInt(t, db, `SELECT sum(extracted) FROM runs`), int64(crashImages*len(crashDims)); n != want {
		t.Errorf("sum of runs.extracted = %d, want %d", n, want)
	}
	runs, err := db.Runs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus = append(wantStatus, RunOK)
	slices.Reverse(runs)
	if len(runs) != len(wantStatus) {
		t.Fatalf("%d runs, want %d", len(runs), len(wantStatus))
	}
	for i, r := range runs {
		if r.Status != wantStatus[i] {
			t.Errorf("run %d: status %s, want %s", r.ID, r.Status, wantStatus[i])
		}
	}
	// The values are the ones the dataset defines.
	sets, err := crashSets(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, fs := range sets {
		n := 0
		if err := db.Vectors(ctx, fs.ID, func(VectorRow) error { n++; return nil }); err != nil || n != crashImages {
			t.Errorf("set %d: Vectors gave %d rows, %v; want %d", fs.ID, n, err, crashImages)
		}
	}
	for _, i := range []int{0, 1, crashImages / 2, crashImages - 1} {
		im := mustImage(t, db, crashContent(i))
		got, err := db.MissingSets(ctx, im.ID, []int64{sets[0].ID, sets[1].ID})
		if err != nil || len(got) != 0 {
			t.Errorf("image %d missing sets %v, %v", i, got, err)
		}
		var blob []byte
		if err := db.reader().QueryRow(`SELECT vector FROM features WHERE image_id = ? AND feature_set_id = ?`,
			im.ID, sets[1].ID).Scan(&blob); err != nil {
			t.Fatal(err)
		}
		v, _ := DecodeVector(blob)
		if !slices.Equal(v, vecOf(seedOf(crashContent(i)), sets[1].ID, sets[1].Dim)) {
			t.Errorf("image %d: stored vector differs from the dataset's", i)
		}
	}
}

// checkCrashState checks the invariants that must hold after any kill.
func checkCrashState(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	rep, err := db.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Healthy() {
		t.Errorf("Check: %v", rep.Problems)
	}
	// Each image has its vectors and all its paths: they were in one batch.
	if n := queryInt(t, db, `SELECT count(*) FROM images i
		WHERE (SELECT count(*) FROM features f WHERE f.image_id = i.id) != ?`, len(crashDims)); n != 0 {
		t.Errorf("%d images without all their vectors", n)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM images i
		WHERE (SELECT count(*) FROM image_paths p WHERE p.image_id = i.id) != 1 + (i.path LIKE '%0.jpg')`); n != 0 {
		t.Errorf("%d images without all their paths", n)
	}
	// Per run: the counters, updated in each batch's transaction, match
	// the rows exactly, whatever moment the process died.
	rows, err := db.reader().Query(`SELECT p.run_id, count(DISTINCT p.image_id), r.extracted, r.duplicates, r.failed,
		(SELECT count(*) FROM failures f WHERE f.run_id = r.id)
		FROM image_paths p JOIN runs r ON r.id = p.run_id GROUP BY p.run_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var run, images, extracted, dups, failed, failures int64
		if err := rows.Scan(&run, &images, &extracted, &dups, &failed, &failures); err != nil {
			t.Fatal(err)
		}
		if extracted != images*int64(len(crashDims)) {
			t.Errorf("run %d: extracted = %d, but %d images with %d sets each were stored", run, extracted, images, len(crashDims))
		}
		if failed != failures {
			t.Errorf("run %d: failed = %d, but %d failure rows", run, failed, failures)
		}
		if n := queryInt(t, db, `SELECT count(*) FROM image_paths WHERE run_id = ?`, run); dups != n-images {
			t.Errorf("run %d: duplicates = %d, but %d paths for %d images", run, dups, n, images)
		}
	}
	// Each run stores whole batches of new images, except for the last
	// batch of a run that completes.
	if n := queryInt(t, db, `SELECT count(*) FROM images`); n%crashBatch != 0 && n != crashImages {
		t.Errorf("%d images is not a whole number of %d-image batches", n, crashBatch)
	}
}
