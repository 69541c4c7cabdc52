package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"pipeline/classify"
	"pipeline/extract"
	"pipeline/internal/testutil"
	"pipeline/store"
)

// TestShardOf checks the partition against Python's hashlib (computed once:
// int.from_bytes(sha256(key).digest()[:8], "big") % n), so that a worker
// written in anything else can compute the same shards.
func TestShardOf(t *testing.T) {
	for _, c := range []struct {
		key  string
		n, i int
	}{
		{"cats/cat.1.jpg", 4, 0}, {"cats/cat.1.jpg", 7, 2},
		{"dogs/dog.12.jpg", 4, 3}, {"dogs/dog.12.jpg", 7, 3},
		{"a.png", 4, 0}, {"a.png", 7, 1},
	} {
		if got := ShardOf(c.key, c.n); got != c.i {
			t.Errorf("ShardOf(%q, %d) = %d, want %d", c.key, c.n, got, c.i)
		}
	}
	// Every key in exactly one shard, and the shards are balanced.
	count := make([]int, 4)
	for i := 0; i < 4000; i++ {
		in := Input{RelPath: fmt.Sprintf("class%d/img%05d.jpg", i%3, i)}
		taken := 0
		for s := 0; s < 4; s++ {
			if (Shard{s, 4}).Takes(in) {
				taken++
				count[s]++
			}
		}
		if taken != 1 {
			t.Fatalf("%s taken by %d shards", in.RelPath, taken)
		}
	}
	for s, c := range count {
		if c < 900 || c > 1100 {
			t.Errorf("shard %d has %d of 4000 keys", s, c)
		}
	}
}

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Shard
		err  string
	}{
		{"0/4", Shard{0, 4}, ""}, {"3/4", Shard{3, 4}, ""}, {" 1 / 2 ", Shard{1, 2}, ""},
		{"4/4", Shard{}, "not in 0..3"}, {"-1/4", Shard{}, "not in 0..3"}, {"0/0", Shard{}, "at least 1"},
		{"2", Shard{}, "want I/N"}, {"a/b", Shard{}, "want I/N"},
	} {
		got, err := ParseShard(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrUsage) {
				t.Errorf("ParseShard(%q) = %v, %v; want usage error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestShardFromEnv(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		n    int
		want Shard
		err  string
	}{
		{"Kubernetes", map[string]string{"JOB_COMPLETION_INDEX": "2"}, 4, Shard{2, 4}, ""},
		{"KubernetesOutOfRange", map[string]string{"JOB_COMPLETION_INDEX": "4"}, 4, Shard{}, "not in 0..3"},
		{"Slurm", map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, 4, Shard{3, 4}, ""},
		{"SlurmFromOne", map[string]string{"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"}, 4, Shard{3, 4}, ""},
		{"SlurmStep", map[string]string{"SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "3"}, 3, Shard{2, 3}, ""},
		{"SlurmCountDisagrees", map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "8"}, 4, Shard{}, "SLURM_ARRAY_TASK_COUNT=8"},
		{"SlurmOffStep", map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "4"}, 4, Shard{}, "cannot number shards"},
		{"NotANumber", map[string]string{"JOB_COMPLETION_INDEX": "x"}, 4, Shard{}, "not a number"},
		{"Neither", map[string]string{}, 4, Shard{}, "neither JOB_COMPLETION_INDEX"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, from, err := ShardFromEnv(c.n, func(k string) string { return c.env[k] })
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrUsage) {
					t.Errorf("got %v, %v; want usage error with %q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want || !strings.Contains(from, got.String()) {
				t.Errorf("got %v (%q), %v; want %v", got, from, err, c.want)
			}
		})
	}
}

func TestShardPath(t *testing.T) {
	for _, c := range []struct {
		path  string
		s     Shard
		want  string
		isErr bool
	}{
		{"/out/f-{shard}.db", Shard{3, 4}, "/out/f-3.db", false},
		{"/out/f-{shard}.db", Shard{3, 16}, "/out/f-03.db", false},
		{"/out/f-{shard}.db", Shard{7, 1000}, "/out/f-007.db", false},
		{"/out/f.db", Shard{3, 4}, "/out/f.db", false},
		{"/out/f-{shard}.db", Shard{}, "", true},
	} {
		got, err := ShardPath(c.path, c.s)
		if (err != nil) != c.isErr || got != c.want {
			t.Errorf("ShardPath(%q, %v) = %q, %v; want %q (error %v)", c.path, c.s, got, err, c.want, c.isErr)
		}
	}
}

// dumpContent is a database's content independent of row ids, times and
// runs: one sorted line per image, path, feature set, vector, failure and
// split row, every value in full (vectors as hex). Two databases with the
// same dump hold the same data.
func dumpContent(t *testing.T, db string) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT 'image', sha256, COALESCE(label, '-'), path, width, height, bytes, format FROM images`,
		`SELECT 'path', p.path, p.relpath, i.sha256, COALESCE(p.label, '-'), p.size, p.mtime_ns FROM image_paths p JOIN images i ON i.id = p.image_id`,
		`SELECT 'set', model_sha256, model_name, layer, COALESCE(alias, '-'), pooling, preprocess, precision, shape, dim, encoding FROM feature_sets`,
		`SELECT 'vector', i.sha256, fs.model_sha256, fs.layer, fs.pooling, fs.preprocess, fs.precision, hex(f.vector)
			FROM features f JOIN images i ON i.id = f.image_id JOIN feature_sets fs ON fs.id = f.feature_set_id`,
		`SELECT 'failure', path, stage, message FROM failures`,
		`SELECT 'split', i.sha256, s.part FROM splits s JOIN images i ON i.id = s.image_id`,
	} {
		for _, r := range query(t, db, q, nil) {
			parts := make([]string, len(r))
			for i, v := range r {
				parts[i] = fmt.Sprint(v)
			}
			out = append(out, strings.Join(parts, "|"))
		}
	}
	sort.Strings(out)
	return out
}

// dumpRuns adds the copied runs (by origin) and which run wrote each row.
func dumpRuns(t *testing.T, db string) []string {
	t.Helper()
	var out []string
	origin := `COALESCE((SELECT r.source_db || '#' || r.source_run_id FROM runs r WHERE r.id = %s), 'here')`
	for _, q := range []string{
		`SELECT 'run', source_db, source_run_id, command, args, started_at, status, seen, extracted, present, duplicates, failed, COALESCE(shard, '-') FROM runs WHERE source_db IS NOT NULL`,
		`SELECT 'path-run', p.path, ` + fmt.Sprintf(origin, "p.run_id") + ` FROM image_paths p`,
		`SELECT 'vector-run', i.sha256, f.feature_set_id, ` + fmt.Sprintf(origin, "f.run_id") + ` FROM features f JOIN images i ON i.id = f.image_id`,
		`SELECT 'failure-run', path, at, ` + fmt.Sprintf(origin, "run_id") + ` FROM failures`,
		`SELECT 'first-seen', sha256, first_seen FROM images`,
	} {
		for _, r := range query(t, db, q, nil) {
			parts := make([]string, len(r))
			for i, v := range r {
				parts[i] = fmt.Sprint(v)
			}
			out = append(out, strings.Join(parts, "|"))
		}
	}
	sort.Strings(out)
	return append(dumpContent(t, db), out...)
}

// sameDump reports the first differences between two dumps.
func sameDump(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := map[string]bool{}, map[string]bool{}
	for _, l := range got {
		g[l] = true
	}
	for _, l := range want {
		w[l] = true
	}
	n := 0
	for _, l := range want {
		if !g[l] && n < 5 {
			t.Errorf("%s: missing %.200s", what, l)
			n++
		}
	}
	for _, l := range got {
		if !w[l] && n < 10 {
			t.Errorf("%s: extra %.200s", what, l)
			n++
		}
	}
	if len(got) != len(want) && n == 0 {
		t.Errorf("%s: %d lines, want %d (duplicates?)", what, len(got), len(want))
	}
}

// writeList writes a path,label CSV of absolute paths.
func writeList(t *testing.T, file string, paths []string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("path,label\n")
	for _, p := range paths {
		fmt.Fprintf(&b, "%s,%s\n", p, filepath.Base(filepath.Dir(p)))
	}
	testutil.WriteFile(t, file, []byte(b.String()))
}

func mustMerge(t *testing.T, into string, sources ...string) MergeSummary {
	t.Helper()
	sum, err := Merge(context.Background(), MergeOptions{Into: into, Sources: sources})
	if err != nil {
		t.Fatalf("merge %v into %s: %v", sources, into, err)
	}
	return sum
}

// TestMerge_Inputs: shards over overlapping and over disjoint lists of the
// same files (with the same content at two paths across shards) merge into
// what one extraction over all of them stores; merging again changes
// nothing; a shard that grew adds only what is new.
func TestMerge_Inputs(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := 0; i < 30; i++ {
		p := filepath.Join(dir, "img", fmt.Sprintf("c%d", i%3), fmt.Sprintf("%02d.png", i))
		writePicture(t, p, uint64(i), 24+i%7, 24+i%5)
		paths = append(paths, p)
	}
	// Same content at another path, in another class folder's walk
	// position: 29's bytes also at c0/00dup.png.
	b, _ := os.ReadFile(paths[28])
	dup := filepath.Join(dir, "img", "c1", "00dup.png")
	testutil.WriteFile(t, dup, b)
	paths = append(paths, dup)
	sort.Slice(paths, func(i, j int) bool { return store.WalkLess(paths[i], paths[j]) })
	m := tinyModel(t, tinyVGG, "caffe")
	extractList := func(db string, ps []string) {
		t.Helper()
		list := filepath.Join(dir, filepath.Base(db)+".csv")
		writeList(t, list, ps)
		if _, err := Extract(context.Background(), ExtractOptions{DB: db, Model: m, Layers: []string{"fc2"}, Batch: 4, List: list}); err != nil {
			t.Fatal(err)
		}
	}
	all := filepath.Join(dir, "all.db")
	extractList(all, paths)
	want := dumpContent(t, all)

	t.Run("Overlapping", func(t *testing.T) {
		a, b := filepath.Join(dir, "ov-a.db"), filepath.Join(dir, "ov-b.db")
		extractList(a, paths[:20])
		extractList(b, paths[10:])
		into := filepath.Join(dir, "ov.db")
		mustMerge(t, into, b, a) // the order does not matter
		sameDump(t, "overlapping merge vs one run", dumpContent(t, into), want)
		before := dumpRuns(t, into)
		sum := mustMerge(t, into, a, b)
		if sum.Totals.NewImages != 0 || sum.Totals.Vectors != 0 || sum.Totals.Paths != 0 || sum.Totals.Runs != 0 || sum.Totals.Failures != 0 {
			t.Errorf("second merge copied %+v, want nothing", sum.Totals)
		}
		sameDump(t, "merged twice", dumpRuns(t, into), before)
		integrityOK(t, into)
	})
	t.Run("Disjoint", func(t *testing.T) {
		var dbs []string
		for s := 0; s < 3; s++ {
			var part []string
			for _, p := range paths {
				rel, _ := filepath.Rel(dir, p)
				if ShardOf(rel, 3) == s {
					part = append(part, p)
				}
			}
			db := filepath.Join(dir, fmt.Sprintf("dj-%d.db", s))
			extractList(db, part)
			dbs = append(dbs, db)
		}
		into := filepath.Join(dir, "dj.db")
		sum := mustMerge(t, into, dbs...)
		sameDump(t, "disjoint merge vs one run", dumpContent(t, into), want)
		if sum.Totals.Images != 30 || sum.Totals.NewImages != 30 || sum.Totals.Vectors != 30 {
			t.Errorf("totals %+v, want 30 images, 30 new, 30 vectors", sum.Totals)
		}
		if got := query(t, into, `SELECT count(*) FROM runs WHERE command = 'extract' AND source_db IS NOT NULL`, nil); asInt(got[0][0]) != 3 {
			t.Errorf("%v extract runs copied, want 3", got[0][0])
		}
	})
	t.Run("Incremental", func(t *testing.T) {
		a := filepath.Join(dir, "inc-a.db")
		extractList(a, paths[:10])
		into := filepath.Join(dir, "inc.db")
		mustMerge(t, into, a)
		extractList(a, paths) // the shard grows
		sum := mustMerge(t, into, a)
		if sum.Totals.NewImages != 20 || sum.Totals.Vectors != 20 || sum.Totals.Runs != 1 {
			t.Errorf("second merge %+v, want 20 new images, 20 vectors, 1 run", sum.Totals)
		}
		sameDump(t, "incremental merge vs one run", dumpContent(t, into), want)
	})
}

// TestMerge_Refused: a shard of another model, or of the same model with
// other preprocessing, is refused with the reason, and nothing is written.
func TestMerge_Refused(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "img")
	for i := 0; i < 6; i++ {
		writePicture(t, filepath.Join(imgs, "a", fmt.Sprintf("%d.png", i)), uint64(i), 30, 30)
	}
	ctx := context.Background()
	extractTo := func(t *testing.T, db string, m string, preset string) {
		t.Helper()
		model, err := extract.ResolveModel(extract.ModelSpec{Model: m, Overrides: extract.Overrides{Preset: preset, Size: "32"}, NeedPreprocess: true, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Extract(ctx, ExtractOptions{DB: db, Model: model, Layers: []string{"fc2"}, Images: imgs}); err != nil {
			t.Fatal(err)
		}
	}
	a := filepath.Join(dir, "a.db")
	extractTo(t, a, tinyVGG, "caffe")
	into := filepath.Join(dir, "all.db")
	mustMerge(t, into, a)
	before := dumpRuns(t, into)
	for _, c := range []struct {
		name, model, preset string
		want                []string
	}{
		{"OtherModel", "../testdata/models/vgg-torch-tiny.onnx", "torch", []string{"model_sha256", "another model file", "fc2"}},
		{"OtherPreprocessing", tinyVGG, "torch", []string{"preprocess", "other preprocessing"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := filepath.Join(dir, c.name+".db")
			extractTo(t, b, c.model, c.preset)
			// Into the merged database, and beside a good shard.
			for _, srcs := range [][]string{{b}, {a, b}} {
				_, err := Merge(ctx, MergeOptions{Into: into, Sources: srcs})
				if !errors.Is(err, store.ErrIncomparable) {
					t.Fatalf("merge %v: %v, want ErrIncomparable", srcs, err)
				}
				for _, w := range append(c.want, b) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
			}
			sameDump(t, "after a refused merge", dumpRuns(t, into), before)
			r := query(t, into, `SELECT status, exit_code FROM runs WHERE command = 'merge' ORDER BY id DESC LIMIT 1`, nil)
			if r[0][0] != "failed" || asInt(r[0][1]) != 5 {
				t.Errorf("refused merge's run: %v, want failed, 5", r[0])
			}
		})
	}
	t.Run("Itself", func(t *testing.T) {
		_, err := Merge(ctx, MergeOptions{Into: into, Sources: []string{a, a}})
		if !errors.Is(err, store.ErrSameDatabase) {
			t.Errorf("a given twice: %v, want ErrSameDatabase", err)
		}
		_, err = Merge(ctx, MergeOptions{Into: into, Sources: []string{into}})
		if !errors.Is(err, ErrUsage) {
			t.Errorf("target as source: %v, want ErrUsage", err)
		}
		cp := filepath.Join(dir, "copy.db")
		for _, sfx := range []string{"", "-wal"} { // a copy of the file as it is, WAL included
			if b, err := os.ReadFile(a + sfx); err == nil {
				testutil.WriteFile(t, cp+sfx, b)
			}
		}
		_, err = Merge(ctx, MergeOptions{Into: into, Sources: []string{a, cp}})
		if !errors.Is(err, store.ErrSameDatabase) || !strings.Contains(err.Error(), "copy") {
			t.Errorf("a copy of a: %v, want ErrSameDatabase naming the copy", err)
		}
	})
}

// TestMerge_LabelConflict: the same bytes labeled cats in one shard and
// dogs in another are listed, and fail the merge unless allowed; the data
// is merged either way.
func TestMerge_LabelConflict(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	m := tinyModel(t, tinyVGG, "caffe")
	pic := writePicture(t, filepath.Join(dir, "s1", "cats", "x.png"), 42, 30, 30)
	testutil.WriteFile(t, filepath.Join(dir, "s2", "dogs", "y.png"), pic)
	writePicture(t, filepath.Join(dir, "s2", "dogs", "z.png"), 43, 30, 30)
	var dbs []string
	for _, s := range []string{"s1", "s2"} {
		db := filepath.Join(dir, s+".db")
		if _, err := Extract(ctx, ExtractOptions{DB: db, Model: m, Layers: []string{"fc2"}, Images: filepath.Join(dir, s)}); err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, db)
	}
	into := filepath.Join(dir, "all.db")
	sum, err := Merge(ctx, MergeOptions{Into: into, Sources: dbs})
	if !errors.Is(err, ErrLabelConflicts) {
		t.Fatalf("merge: %v, want ErrLabelConflicts", err)
	}
	if len(sum.LabelConflicts) != 1 {
		t.Fatalf("conflicts %+v, want 1", sum.LabelConflicts)
	}
	c := sum.LabelConflicts[0]
	labels := map[string]string{}
	for _, p := range c.Paths {
		labels[filepath.Base(p.Path)] = p.Label
	}
	// The canonical path is the first in walk order: s1/cats/x.png.
	if labels["x.png"] != "cats" || labels["y.png"] != "dogs" || c.Label != "cats" || filepath.Base(c.Path) != "x.png" {
		t.Errorf("conflict %+v, want x.png cats (kept) and y.png dogs", c)
	}
	if got := query(t, into, `SELECT count(*) FROM images`, nil); asInt(got[0][0]) != 2 {
		t.Errorf("%v images, want 2: the data is merged despite the conflict", got[0][0])
	}
	r := query(t, into, `SELECT status, exit_code FROM runs WHERE command = 'merge'`, nil)
	if r[0][0] != "ok" || asInt(r[0][1]) != 5 {
		t.Errorf("merge run %v, want ok with exit code 5", r[0])
	}
	if _, err := Merge(ctx, MergeOptions{Into: into, Sources: dbs, AllowLabelConflicts: true}); err != nil {
		t.Errorf("allowed: %v", err)
	}
}

// TestMerge_Seed4Shards: four `extract --shard i/4` processes at once over
// seed4 (a generated ResNet, avg_pool), then merge: the same content as one
// extraction over all of seed4, every vector and path.
func TestMerge_Seed4Shards(t *testing.T) {
	imgs := seed4Dir(t)
	dir := t.TempDir()
	model, _ := filepath.Abs("../testdata/models/resnet-v1-zoo-tiny.onnx")
	spec := childSpec{Images: imgs, Model: model, Preset: "caffe", Layers: []string{"avg_pool"}, Batch: 8}

	one := spec
	one.DB = filepath.Join(dir, "one.db")
	t0 := time.Now()
	if out, err := childCmd(t, one).CombinedOutput(); err != nil {
		t.Fatalf("one run: %v\n%s", err, out)
	}
	tOne := time.Since(t0)

	t0 = time.Now()
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	var shards []string
	for i := 0; i < 4; i++ {
		s := spec
		s.Shard = fmt.Sprintf("%d/4", i)
		s.DB = filepath.Join(dir, fmt.Sprintf("shard-%d.db", i))
		shards = append(shards, s.DB)
		cmd := childCmd(t, s)
		var b strings.Builder
		cmd.Stdout, cmd.Stderr = &b, &b
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &b)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, outs[i])
		}
	}
	tShards := time.Since(t0)
	t0 = time.Now()
	sum, err := Merge(context.Background(), MergeOptions{Into: filepath.Join(dir, "merged.db"), Sources: shards, AllowLabelConflicts: true})
	if err != nil {
		t.Fatal(err)
	}
	tMerge := time.Since(t0)
	t.Logf("seed4, resnet-v1-zoo-tiny avg_pool: one process %.1fs; 4 shard processes at once %.1fs, merge %.2fs (%+v)",
		tOne.Seconds(), tShards.Seconds(), tMerge.Seconds(), sum.Totals)

	// Each shard took its part and says so; together they saw every file once.
	seen := int64(0)
	for i, db := range shards {
		r := query(t, db, `SELECT shard, seen FROM runs`, nil)
		if len(r) != 1 || r[0][0] != fmt.Sprintf("%d/4", i) {
			t.Errorf("shard %d runs: %v", i, r)
			continue
		}
		seen += asInt(r[0][1])
	}
	if seen != 808 {
		t.Errorf("the shards saw %d files, want 808", seen)
	}
	want := dumpContent(t, one.DB)
	if len(want) < 808+770+770 {
		t.Fatalf("one run's dump has %d lines", len(want))
	}
	sameDump(t, "4 shards merged vs one run", dumpContent(t, filepath.Join(dir, "merged.db")), want)
	if r := query(t, filepath.Join(dir, "merged.db"), `SELECT group_concat(shard, ' ') FROM (SELECT shard FROM runs WHERE command = 'extract' ORDER BY shard)`, nil); r[0][0] != "0/4 1/4 2/4 3/4" {
		t.Errorf("copied runs' shards %v", r[0][0])
	}
}

// TestMerge_CrashResume kills merge children with SIGKILL at random
// moments; rerunning the merge gives the rows an uninterrupted merge gives,
// row ids included.
func TestMerge_CrashResume(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "img")
	const n = 240
	for i := 0; i < n; i++ {
		writePicture(t, filepath.Join(imgs, fmt.Sprintf("c%d", i%3), fmt.Sprintf("%03d.png", i)), uint64(i%200), 24, 24) // 40 duplicates
	}
	model, _ := filepath.Abs(tinyVGG)
	var shards []string
	for i := 0; i < 3; i++ {
		s := childSpec{Images: imgs, Model: model, Preset: "caffe", Layers: []string{"fc2", "block2_pool"}, Batch: 8,
			Shard: fmt.Sprintf("%d/3", i), DB: filepath.Join(dir, fmt.Sprintf("shard-%d.db", i))}
		if out, err := childCmd(t, s).CombinedOutput(); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, out)
		}
		shards = append(shards, s.DB)
	}
	merge := childSpec{Sources: shards, Chunk: 4, PauseMS: 4}
	clean := merge
	clean.Into = filepath.Join(dir, "clean.db")
	if out, err := childCmd(t, clean).CombinedOutput(); err != nil {
		t.Fatalf("clean merge: %v\n%s", err, out)
	}
	ids := func(db string) []string {
		var out []string
		for _, r := range query(t, db, `SELECT 'id', i.id, i.sha256, f.feature_set_id, hex(f.vector) FROM images i JOIN features f ON f.image_id = i.id ORDER BY 2, 4`, nil) {
			out = append(out, fmt.Sprint(r...))
		}
		return out
	}
	want := append(dumpRuns(t, clean.Into), ids(clean.Into)...)
	if got := query(t, clean.Into, `SELECT count(*) FROM images`, nil); asInt(got[0][0]) != 200 {
		t.Fatalf("clean merge has %v images, want 200", got[0][0])
	}

	crash := merge
	crash.Into = filepath.Join(dir, "crash.db")
	r := rand.New(rand.NewPCG(3, 4))
	kills, stored := 0, int64(0)
	for attempt := 0; attempt < 30 && kills < 6 && stored < 190; attempt++ {
		target := stored + 10 + int64(r.IntN(30)) // a few chunks further
		killed := runUntil(t, crash, crash.Into, `SELECT count(*) FROM images`, target, 200*time.Microsecond, 2*time.Millisecond, r)
		t.Logf("attempt %d: target %d images, killed %v", attempt, target, killed)
		if !killed {
			break // finished before the target
		}
		kills++
		integrityOK(t, crash.Into)
		stored = asInt(query(t, crash.Into, `SELECT count(*) FROM images`, nil)[0][0])
		// Whole chunks: every image has both vectors and a path.
		if g := query(t, crash.Into, `SELECT count(*) FROM images i WHERE (SELECT count(*) FROM features f WHERE f.image_id = i.id) != 2
			OR NOT EXISTS (SELECT 1 FROM image_paths p WHERE p.image_id = i.id)`, nil); asInt(g[0][0]) != 0 {
			t.Errorf("after kill %d: %v images without both vectors or a path", kills, g[0][0])
		}
	}
	if out, err := childCmd(t, crash).CombinedOutput(); err != nil {
		t.Fatalf("final merge: %v\n%s", err, out)
	}
	integrityOK(t, crash.Into)
	sameDump(t, "merge after kills vs uninterrupted", append(dumpRuns(t, crash.Into), ids(crash.Into)...), want)
	runs := query(t, crash.Into, `SELECT status, count(*) FROM runs WHERE command = 'merge' GROUP BY status ORDER BY status`, nil)
	t.Logf("%d kills; merge runs by status: %v", kills, runs)
	if len(runs) == 0 || runs[0][0] != "abandoned" || asInt(runs[0][1]) < 3 {
		t.Errorf("%d kills, merge runs %v: fewer than 3 kills landed during a merge, the test did not test much", kills, runs)
	}
}

// TestSimilar_SeveralDBs: searching two shard databases at once gives the
// neighbours one database of everything gives, wherever the query is stored.
func TestSimilar_SeveralDBs(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "img")
	for i := 0; i < 24; i++ {
		writePicture(t, filepath.Join(imgs, fmt.Sprintf("c%d", i%3), fmt.Sprintf("%02d.png", i)), uint64(i), 28, 28)
	}
	ctx := context.Background()
	m := tinyModel(t, tinyVGG, "caffe")
	all := filepath.Join(dir, "all.db")
	var shards []string
	for _, s := range []Shard{{}, {0, 2}, {1, 2}} {
		db := all
		if !s.All() {
			db = filepath.Join(dir, fmt.Sprintf("s%d.db", s.Index))
			shards = append(shards, db)
		}
		if _, err := Extract(ctx, ExtractOptions{DB: db, Model: m, Layers: []string{"fc2"}, Images: imgs, Shard: s}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"c0/00.png", "c1/01.png", "c2/05.png", "c1/22.png"} {
		want, err := Similar(ctx, SimilarOptions{DB: all, Query: q, Set: SetQuery{Layer: "fc2"}, K: 5})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Similar(ctx, SimilarOptions{DB: shards[0], More: shards[1:], Query: q, Set: SetQuery{Layer: "fc2"}, K: 5})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if len(got.Neighbors) != 5 || got.Query.SHA256 != want.Query.SHA256 {
			t.Fatalf("%s: %d neighbours, query %+v", q, len(got.Neighbors), got.Query)
		}
		for i, n := range got.Neighbors {
			w := want.Neighbors[i]
			if n.Path != w.Path || n.Distance != w.Distance || n.Rank != w.Rank {
				t.Errorf("%s: neighbour %d = %s %.9f, want %s %.9f", q, i, n.Path, n.Distance, w.Path, w.Distance)
			}
		}
		if got.FeatureSet.Vectors != 24 {
			t.Errorf("%s: %d vectors searched, want 24", q, got.FeatureSet.Vectors)
		}
	}
	// A database whose set is another model's cannot be searched with them.
	other := filepath.Join(dir, "other.db")
	if _, err := Extract(ctx, ExtractOptions{DB: other, Model: tinyModel(t, tinyVGG, "torch"), Layers: []string{"fc2"}, Images: imgs}); err != nil {
		t.Fatal(err)
	}
	_, err := Similar(ctx, SimilarOptions{DB: shards[0], More: []string{other}, Query: "c0/00.png", Set: SetQuery{Layer: "fc2"}, K: 5})
	if !errors.Is(err, store.ErrUnknownFeatureSet) || !strings.Contains(err.Error(), "other.db") {
		t.Errorf("other model: %v, want ErrUnknownFeatureSet naming other.db", err)
	}
}

// TestFit_SeveralDBs: fit over two shard databases read as one trains on
// what fit over their merge trains on: the same contents, split the same
// way (the first database's split rule extended to the contents it lacks).
func TestFit_SeveralDBs(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "img")
	for i := 0; i < 45; i++ {
		writePicture(t, filepath.Join(imgs, fmt.Sprintf("c%d", i%3), fmt.Sprintf("%02d.png", i)), uint64(i), 28, 28)
	}
	// The same content in both shards, under one label.
	b, _ := os.ReadFile(filepath.Join(imgs, "c0", "00.png"))
	testutil.WriteFile(t, filepath.Join(imgs, "c0", "zz-copy.png"), b)
	ctx := context.Background()
	m := tinyModel(t, tinyVGG, "caffe")
	var shards []string
	for s := 0; s < 2; s++ {
		db := filepath.Join(dir, fmt.Sprintf("s%d.db", s))
		if _, err := Extract(ctx, ExtractOptions{DB: db, Model: m, Layers: []string{"fc2"}, Images: imgs, Shard: Shard{s, 2}}); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, db)
	}
	p := classify.DefaultParams("logreg")
	several, err := Fit(ctx, FitOptions{DB: shards[0], More: shards[1:], Set: SetQuery{Layer: "fc2"}, Name: "lr", Params: p, TestFrac: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(dir, "merged.db")
	mustMerge(t, merged, shards...)
	one, err := Fit(ctx, FitOptions{DB: merged, Set: SetQuery{Layer: "fc2"}, Name: "lr", Params: p, TestFrac: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("several: %d train %v, %d test; merged: %d train %v, %d test", several.Train, several.TrainCounts, several.Test, one.Train, one.TrainCounts, one.Test)
	if several.Train+several.Test != 45 || several.Train != one.Train || several.Test != one.Test ||
		!slices.Equal(several.TrainCounts, one.TrainCounts) || !slices.Equal(several.Classes, one.Classes) {
		t.Errorf("fit over two databases: %d train %v %v, %d test; over their merge: %d train %v %v, %d test",
			several.Train, several.Classes, several.TrainCounts, several.Test, one.Train, one.Classes, one.TrainCounts, one.Test)
	}
	// Part by part: the merge's split (assigned by its fit) is what
	// PlanSplit said for the contents the first shard lacks.
	first, err := store.Open(shards[0], store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	inFirst := map[string]bool{}
	for _, r := range query(t, shards[0], `SELECT sha256 FROM images`, nil) {
		inFirst[r[0].(string)] = true
	}
	var cands []store.SplitCandidate
	for _, r := range query(t, shards[1], `SELECT sha256, label FROM images`, nil) {
		if !inFirst[r[0].(string)] {
			cands = append(cands, store.SplitCandidate{SHA256: r[0].(string), Label: r[1].(string)})
		}
	}
	plan, err := first.PlanSplit(ctx, cands)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, r := range query(t, merged, `SELECT i.sha256, s.part FROM splits s JOIN images i ON i.id = s.image_id`, nil) {
		want[r[0].(string)] = r[1].(string)
	}
	for _, r := range query(t, shards[0], `SELECT i.sha256, s.part FROM splits s JOIN images i ON i.id = s.image_id`, nil) {
		if want[r[0].(string)] != r[1].(string) {
			t.Errorf("%s: %s in the first shard, %s in the merge", r[0], r[1], want[r[0].(string)])
		}
	}
	diff := 0
	for sha, part := range plan {
		if want[sha] != part {
			diff++
		}
	}
	if len(plan) == 0 || diff != 0 {
		t.Errorf("PlanSplit gave %d parts, %d differ from the merge's split", len(plan), diff)
	}
}
