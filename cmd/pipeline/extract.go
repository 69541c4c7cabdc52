package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"pipeline/pipeline"
)

func cmdExtract(e *env, args []string) error {
	fs := newFlags(e, "extract", "extract [flags] --model NAME|PATH --layer NAME[,NAME...] (--images DIR | --list FILE|-)")
	var mf modelFlags
	addModelFlags(fs, &mf)
	db := addDBFlag(fs)
	layers := fs.String("layer", "", "layer(s) to store, comma-separated: aliases (fc2, avg_pool, block4_pool, ...), OpenCV, ONNX or Caffe names")
	pool := addPoolFlag(fs)
	in := addInputFlags(fs)
	cf := addComputeFlags(fs, withTarget|withEngine|withBatch|withWorkers|withFastDecode)
	wait := addWaitFlag(fs, "")
	asJSON := fs.Bool("json", false, "print the summary as JSON on stdout")
	shardFlag := fs.String("shard", "", "take only shard I of N of the inputs, I/N 0-based (e.g. 2/8): those whose path relative to --images (or list entry) hashes to I; see docs/SCALE.md")
	shards := fs.Int("shards", 0, "number of shards N; this worker's index comes from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm array)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := cf.check("extract"); err != nil {
		return err
	}
	shard, err := extractShard(e, *shardFlag, *shards)
	if err != nil {
		return err
	}
	if *db, err = pipeline.ShardPath(*db, shard); err != nil {
		return usageError("extract: %v (give --shard I/N or --shards N)", err)
	}
	if mf.model == "" {
		return usageError("extract: --model is required (a catalog name such as vgg16, or a model file)")
	}
	if *layers == "" {
		return usageError("extract: --layer is required (e.g. --layer fc2; `pipeline layers --model %s` lists them)", mf.model)
	}
	if in.images == "" && in.list == "" {
		return usageError("extract: give --images DIR or --list FILE")
	}
	if in.images != "" && in.list != "" {
		return usageError("extract: give --images or --list, not both")
	}
	model, err := mf.resolve(true)
	if err != nil {
		return err
	}
	pr := newProgress(e, "extract")
	opts := pipeline.ExtractOptions{
		DB: *db, Model: model, Layers: commaList(*layers), Pool: *pool, Compute: cf.compute(),
		Batch: cf.batch, Nets: cf.nets, Workers: cf.workers, Images: in.images, List: in.list, ListReader: e.stdin, Split: in.split,
		MaxPixels: cf.maxPixels, Reduce: cf.fastDecode, Wait: *wait, Args: e.args, Events: pr, Shard: shard,
	}
	sum, err := pipeline.Extract(e.ctx, opts)
	pr.Done()
	if sum.RunID == 0 && err != nil {
		return err // nothing started: no summary to print
	}
	if *asJSON {
		if jerr := writeJSON(e, sum); jerr != nil {
			return jerr
		}
		return err
	}
	printExtractSummary(e, sum)
	return err
}

// extractShard is --shard I/N, or with --shards N the index the scheduler
// gives this worker (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID). Without
// either flag, all inputs: an array job used for something else (one task
// per model) must not silently extract a part of them.
func extractShard(e *env, flagV string, n int) (pipeline.Shard, error) {
	if flagV != "" {
		s, err := pipeline.ParseShard(flagV)
		if err != nil {
			return s, usageError("extract: --shard: %v", err)
		}
		if n != 0 && n != s.Count {
			return s, usageError("extract: --shard %s and --shards %d disagree", flagV, n)
		}
		return s, nil
	}
	if n == 0 {
		// A Slurm job array says how many tasks it has: with no flag, each
		// task takes its shard (as `--shards $SLURM_ARRAY_TASK_COUNT` would),
		// and says so. A Kubernetes Indexed Job does not export its
		// completions count, so it needs --shards N.
		cnt := os.Getenv("SLURM_ARRAY_TASK_COUNT")
		if cnt == "" || os.Getenv("SLURM_ARRAY_TASK_ID") == "" {
			return pipeline.Shard{}, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(cnt))
		if err != nil || n < 1 {
			return pipeline.Shard{}, usageError("extract: SLURM_ARRAY_TASK_COUNT=%q is not a number of tasks (give --shard I/N, or --shard 0/1 for every input)", cnt)
		}
		s, from, err := pipeline.ShardFromEnv(n, os.Getenv)
		if err != nil {
			return s, usageError("extract: %v (give --shard I/N, or --shard 0/1 for every input)", err)
		}
		e.infof("%s: this Slurm array task takes one shard of the inputs (--shard 0/1 takes every input)", from)
		return s, nil
	}
	s, from, err := pipeline.ShardFromEnv(n, os.Getenv)
	if err != nil {
		return s, usageError("extract: --shards %d: %v", n, err)
	}
	e.infof("%s", from)
	return s, nil
}

func printExtractSummary(e *env, s pipeline.ExtractSummary) {
	w := e.stdout
	c := s.Counts
	if s.Shard != "" {
		fmt.Fprintf(w, "shard %s: ", s.Shard)
	}
	fmt.Fprintf(w, "run %d %s: %d files: %d extracted, %d already present, %d duplicates, %d failed",
		s.RunID, s.Status, c.Seen, c.Extracted, c.Present, c.Duplicates, c.Failed)
	if s.Skipped > 0 {
		fmt.Fprintf(w, " (%d non-image files skipped)", s.Skipped)
	}
	if s.Relabeled > 0 {
		fmt.Fprintf(w, "; %d known images relabeled (see the notes)", s.Relabeled)
	}
	fmt.Fprintf(w, "\n%s wall, %.2f images/s (%s %s, batch %d, %d net(s) x %d threads, %d decode workers) into %s\n",
		fmtDuration(time.Duration(s.WallSeconds*float64(time.Second))), s.ImagesPerSec, s.Engine, s.Precision, s.Batch, s.Nets, s.Threads, s.Workers, s.DB)
	for _, fs := range s.FeatureSets {
		fmt.Fprintf(w, "  feature set %s\n", fs)
	}
	if c.Failed > 0 {
		fmt.Fprintf(w, "failures: pipeline sql \"SELECT path, stage, message FROM failures WHERE run_id = %d\"\n", s.RunID)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note: %s\n", strings.TrimSpace(n))
	}
}
