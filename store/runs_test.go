package store

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDB_Runs(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	release, err := db.Lock(ctx, 0, Holder{Command: "pipeline extract"})
	if err != nil {
		t.Fatal(err)
	}
	defer release()

	t.Run("Lifecycle", func(t *testing.T) {
		start := time.Now().Add(-time.Second)
		id, err := db.StartRun(ctx, "extract", []string{"--images", "/data x"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := db.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		host, _ := os.Hostname()
		if r.Status != RunRunning || r.PID != os.Getpid() || r.Host != host || r.ExitCode != nil ||
			!r.EndedAt.IsZero() || r.StartedAt.Before(start) || !slices.Equal(r.Args, []string{"--images", "/data x"}) {
			t.Errorf("started run = %+v", r)
		}
		if err := db.UpdateRun(ctx, id, Counts{Seen: 5, Extracted: 4}); err != nil {
			t.Fatal(err)
		}
		if r, _ = db.Run(ctx, id); r.Counts != (Counts{Seen: 5, Extracted: 4}) {
			t.Errorf("counts after UpdateRun = %+v", r.Counts)
		}
		final := Counts{Seen: 10, Extracted: 8, Present: 1, Duplicates: 1, Failed: 1}
		if err := db.FinishRun(ctx, id, RunPartial, 0, final, "1 file failed"); err != nil {
			t.Fatal(err)
		}
		r, _ = db.Run(ctx, id)
		if r.Status != RunPartial || r.ExitCode == nil || *r.ExitCode != 0 || r.EndedAt.Before(r.StartedAt) ||
			r.Counts != final || r.Message != "1 file failed" {
			t.Errorf("finished run = %+v", r)
		}
	})

	t.Run("AbandonStaleRuns", func(t *testing.T) {
		mine, err := db.StartRun(ctx, "fit", nil)
		if err != nil {
			t.Fatal(err)
		}
		// A run left 'running' by a process that died.
		mustExec(t, db.rw, `INSERT INTO runs (command, args, started_at, status, pid) VALUES ('extract', '[]', '2026-01-01T00:00:00.000Z', 'running', 1)`)
		n, err := db.AbandonStaleRuns(ctx)
		if err != nil || n != 1 {
			t.Fatalf("AbandonStaleRuns = %d, %v; want 1", n, err)
		}
		runs, err := db.Runs(ctx, 2)
		if err != nil || len(runs) != 2 {
			t.Fatalf("Runs = %v, %v", runs, err)
		}
		// Newest first: the dead one, then mine, which is untouched.
		if runs[0].Status != RunAbandoned || runs[0].EndedAt.IsZero() || runs[0].Message == "" {
			t.Errorf("dead run = %+v", runs[0])
		}
		if runs[1].ID != mine || runs[1].Status != RunRunning {
			t.Errorf("own run = %+v", runs[1])
		}
	})

	t.Run("Errors", func(t *testing.T) {
		if err := db.FinishRun(ctx, 1, "done", 0, Counts{}, ""); err == nil {
			t.Error("FinishRun accepted status done")
		}
		if err := db.UpdateRun(ctx, 999, Counts{}); !errors.Is(err, ErrUnknownRun) {
			t.Errorf("UpdateRun(999): got %v, want ErrUnknownRun", err)
		}
		if _, err := db.Run(ctx, 999); !errors.Is(err, ErrUnknownRun) {
			t.Errorf("Run(999): got %v, want ErrUnknownRun", err)
		}
	})
}

func TestDB_EnsureFeatureSet(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	base := FeatureSet{ModelSHA256: shaOf("vgg16.onnx"), ModelName: "vgg16", Layer: "fc7", Pooling: PoolNone,
		Preprocess: `{"size":224}`, Shape: "4096", Dim: 4096}

	t.Run("GetOrCreate", func(t *testing.T) {
		a, err := db.EnsureFeatureSet(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		if a.ID == 0 || a.Precision != "fp32" || a.Encoding != "float32le" || a.Alias != "" || a.CreatedAt.IsZero() {
			t.Errorf("created %+v", a)
		}
		withAlias := base
		withAlias.Alias = "fc2"
		b, err := db.EnsureFeatureSet(ctx, withAlias)
		if err != nil {
			t.Fatal(err)
		}
		if b.ID != a.ID || b.Alias != "fc2" {
			t.Errorf("second call = %+v, want id %d with alias fc2", b, a.ID)
		}
		fp16 := base
		fp16.Precision = "fp16"
		c, err := db.EnsureFeatureSet(ctx, fp16)
		if err != nil || c.ID == a.ID {
			t.Errorf("fp16 set = %+v, %v; want a new set", c, err)
		}
	})

	t.Run("ErrDimMismatch", func(t *testing.T) {
		wrong := base
		wrong.Dim, wrong.Shape = 1000, "1000"
		_, err := db.EnsureFeatureSet(ctx, wrong)
		if !errors.Is(err, ErrDimMismatch) {
			t.Fatalf("got %v, want ErrDimMismatch", err)
		}
		wantErr(t, err, "vgg16", "fc7", "4096", "1000")
	})

	t.Run("Invalid", func(t *testing.T) {
		bad := base
		bad.Pooling = "sum"
		wantErr(t, func() error { _, err := db.EnsureFeatureSet(ctx, bad); return err }(), "pooling", "sum")
	})

	t.Run("Find", func(t *testing.T) {
		resnet := FeatureSet{ModelSHA256: shaOf("resnet50.onnx"), ModelName: "resnet50", Layer: "pool5", Alias: "avg_pool",
			Pooling: PoolAvg, Preprocess: `{}`, Shape: "2048x1x1", Dim: 2048}
		r, err := db.EnsureFeatureSet(ctx, resnet)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{item("a", []string{"/data/cat/a.jpg"}, r)}}); err != nil {
			t.Fatal(err)
		}
		ids := func(sets []FeatureSet, err error) []int64 {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, s := range sets {
				out = append(out, s.ID)
			}
			return out
		}
		all := ids(db.FeatureSets(ctx))
		if len(all) != 3 {
			t.Fatalf("FeatureSets: %v", all)
		}
		for _, tc := range []struct {
			layer, model string
			want         []int64
		}{
			{"fc2", "", []int64{all[0], all[1]}}, // both precisions: the caller must choose
			{"FC7", "VGG16", []int64{all[0], all[1]}},
			{"avg_pool", "", []int64{r.ID}},
			{"pool5", "resnet50", []int64{r.ID}},
			{"fc2", "resnet50", nil},
			{"", "", []int64{r.ID, all[0], all[1]}}, // sets with vectors first
		} {
			if got := ids(db.FindFeatureSets(ctx, tc.layer, tc.model)); !slices.Equal(got, tc.want) {
				t.Errorf("FindFeatureSets(%q, %q) = %v, want %v", tc.layer, tc.model, got, tc.want)
			}
		}
		sets, _ := db.FindFeatureSets(ctx, "avg_pool", "")
		if sets[0].Vectors != 1 {
			t.Errorf("vector count = %d, want 1", sets[0].Vectors)
		}
		if got, want := sets[0].String(), "resnet50 avg_pool (avg_pool/pool5, avg, fp32, 2048-d)"; !strings.HasSuffix(got, want) {
			t.Errorf("String() = %q, want it to contain %q", got, want)
		}
	})
}
