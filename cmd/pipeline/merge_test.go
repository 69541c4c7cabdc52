package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/store"
)

// TestCLI_Shards: the shard comes from --shard, or with --shards from the
// Kubernetes or Slurm environment; {shard} names the database; the runs
// table records it; merge puts the shards back together.
func TestCLI_Shards(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b", "c"}, 8)
	common := []string{"extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", imgs}
	relpaths := func(db string) string {
		t.Helper()
		r := run(t, nil, "sql", "--db", db, "--csv", "SELECT relpath FROM image_paths ORDER BY relpath")
		r.want(t, 0)
		return r.stdout
	}
	seen := 0
	for i := 0; i < 4; i++ {
		k := run(t, []string{fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i)}, append(common, "--shards", "4", "--db", filepath.Join(dir, "k-{shard}.db"))...)
		k.want(t, 0, fmt.Sprintf("shard %d/4 from JOB_COMPLETION_INDEX=%d", i, i), fmt.Sprintf("shard %d/4: run 1 ok", i))
		// A Slurm array numbered from 1.
		// Half of them with --shards 4, half with no flag at all (the
		// array's SLURM_ARRAY_TASK_COUNT says 4).
		slurmArgs := append(common, "--shards", "4", "--db", filepath.Join(dir, "s-{shard}.db"))
		if i%2 == 1 {
			slurmArgs = append(common, "--db", filepath.Join(dir, "s-{shard}.db"))
		}
		s := run(t, []string{fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d", i+1), "SLURM_ARRAY_TASK_MIN=1", "SLURM_ARRAY_TASK_COUNT=4"}, slurmArgs...)
		s.want(t, 0, fmt.Sprintf("shard %d/4 from SLURM_ARRAY_TASK_ID=%d", i, i+1))
		e := run(t, nil, append(common, "--shard", fmt.Sprintf("%d/4", i), "--db", filepath.Join(dir, "e-{shard}.db"), "--json")...)
		e.want(t, 0)
		var sum struct {
			Shard  string
			Counts struct{ Seen int }
		}
		if err := json.Unmarshal([]byte(e.stdout), &sum); err != nil || sum.Shard != fmt.Sprintf("%d/4", i) {
			t.Errorf("extract --json: %v %+v", err, sum)
		}
		seen += sum.Counts.Seen
		kp, sp, ep := relpaths(filepath.Join(dir, fmt.Sprintf("k-%d.db", i))), relpaths(filepath.Join(dir, fmt.Sprintf("s-%d.db", i))), relpaths(filepath.Join(dir, fmt.Sprintf("e-%d.db", i)))
		if kp != sp || kp != ep {
			t.Errorf("shard %d: the three ways of choosing it took different files:\n%s\n%s\n%s", i, kp, sp, ep)
		}
		run(t, nil, "runs", "--db", filepath.Join(dir, fmt.Sprintf("k-%d.db", i))).want(t, 0, fmt.Sprintf("extract %d/4", i))
	}
	if seen != 24 {
		t.Errorf("the shards saw %d files, want 24", seen)
	}

	t.Run("Errors", func(t *testing.T) {
		db := filepath.Join(dir, "err.db")
		run(t, nil, append(common, "--shards", "4", "--db", db)...).want(t, 2, "neither JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID")
		run(t, nil, append(common, "--db", filepath.Join(dir, "x-{shard}.db"))...).want(t, 2, "{shard}", "--shard")
		run(t, nil, append(common, "--shard", "4/4", "--db", db)...).want(t, 2, "not in 0..3")
		run(t, nil, append(common, "--shard", "1/4", "--shards", "8", "--db", db)...).want(t, 2, "disagree")
		run(t, []string{"SLURM_ARRAY_TASK_ID=1", "SLURM_ARRAY_TASK_COUNT=2"}, append(common, "--shards", "4", "--db", db)...).want(t, 2, "SLURM_ARRAY_TASK_COUNT=2")
		if _, err := os.Stat(db); err == nil {
			t.Errorf("a refused extract created %s", db)
		}
	})

	t.Run("Merge", func(t *testing.T) {
		all := filepath.Join(dir, "all.db")
		one := filepath.Join(dir, "one.db")
		run(t, nil, append(common, "--db", one)...).want(t, 0)
		// The pattern quoted, as a manifest may pass it.
		r := run(t, nil, "merge", "--into", all, filepath.Join(dir, "k-*.db"), "--json")
		r.want(t, 0)
		var sum struct {
			RunID   int64 `json:"run_id"`
			Status  string
			Sources []struct{ Path string }
			Totals  store.MergeStats
		}
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Status != "ok" || len(sum.Sources) != 4 || sum.Totals.NewImages != 24 {
			t.Fatalf("merge --json: %v %+v\n%s", err, sum, r.stdout)
		}
		if relpaths(all) != relpaths(one) {
			t.Errorf("merged paths differ from one run's")
		}
		run(t, nil, "merge", "--into", all, filepath.Join(dir, "k-0.db"), filepath.Join(dir, "k-1.db"), filepath.Join(dir, "k-2.db"), filepath.Join(dir, "k-3.db")).
			want(t, 0, "4 databases", "24 images (0 new)", "0 vectors")
		run(t, nil, "runs", "--db", all).want(t, 0, "merge", "extract 0/4 (merged)", "extract 3/4 (merged)")
		run(t, nil, "check", "--db", all).want(t, 0)
		run(t, nil, "merge", filepath.Join(dir, "k-0.db")).want(t, 2, "--into is required")
		run(t, nil, "merge", "--into", all, filepath.Join(dir, "nope.db")).want(t, 2, "nope.db: no such database")
		run(t, nil, "merge", "--into", all, filepath.Join(dir, "k-0.db"), filepath.Join(dir, "k-0.db")).want(t, 2, "same database")
		run(t, nil, "merge", "-h").want(t, 0, "-into", "-allow-label-conflicts")

		// The shards queried as one, without the merge: the same answer.
		var several []string
		for i := 0; i < 4; i++ {
			several = append(several, "--db", filepath.Join(dir, fmt.Sprintf("k-%d.db", i)))
		}
		q := []string{"similar", "a/00.png", "--layer", "fc2", "--k", "5", "--csv"}
		want := run(t, nil, append(q, "--db", all)...)
		want.want(t, 0)
		got := run(t, nil, append(q, several...)...)
		got.want(t, 0)
		if got.stdout != want.stdout || strings.Count(got.stdout, "\n") != 6 {
			t.Errorf("similar over the 4 shards:\n%s\nover their merge:\n%s", got.stdout, want.stdout)
		}
		run(t, nil, append([]string{"similar", "a/00.png", "--layer", "fc2", "--k", "3"}, several...)...).want(t, 0, "DB", "k-")
		run(t, nil, append([]string{"fit", "--layer", "fc2", "--clf", "logreg", "--name", "lr"}, several...)...).want(t, 0, "classifier lr")
	})

	t.Run("LabelConflict", func(t *testing.T) {
		// The same bytes under a/ in one database and b/ in another.
		src := filepath.Join(imgs, "a")
		ents, _ := os.ReadDir(src)
		b, err := os.ReadFile(filepath.Join(src, ents[0].Name()))
		if err != nil {
			t.Fatal(err)
		}
		other := filepath.Join(dir, "other")
		if err := os.MkdirAll(filepath.Join(other, "b"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(other, "b", "copy.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		odb := filepath.Join(dir, "other.db")
		run(t, nil, "extract", "--model", tiny, "--preprocess", "caffe", "--layer", "fc2", "--images", other, "--db", odb).want(t, 0)
		into := filepath.Join(dir, "conflict.db")
		run(t, nil, "merge", "--into", into, filepath.Join(dir, "one.db"), odb).
			want(t, 5, "1 label conflicts", "SHA256", "KEPT", "copy.png", ents[0].Name(), "label conflicts: 1 image contents")
		run(t, nil, "runs", "--db", into, "--command", "merge").want(t, 0, "ok", " 5 ")
		run(t, nil, "merge", "--into", into, filepath.Join(dir, "one.db"), odb, "--allow-label-conflicts").want(t, 0, "1 label conflicts")
	})
}
