package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"pipeline/extract"
	"pipeline/pipeline"
)

func init() {
	register(command{"extract", "compute CNN codes of images into the database", cmdExtract})
}

// modelFlags are the flags that choose a model and its preprocessing.
type modelFlags struct {
	model, config string
	pre           extract.Overrides
}

func addModelFlags(fs *flag.FlagSet, m *modelFlags) {
	fs.StringVar(&m.model, "model", "", "catalog name (see: pipeline models) or a model file: .onnx, .caffemodel (with --config .prototxt), .pb")
	fs.StringVar(&m.config, "config", "", "Caffe .prototxt for a .caffemodel (default: same name beside it), or TensorFlow .pbtxt")
	addPreprocessFlags(fs, &m.pre, "the catalog entry's")
}

// addPreprocessFlags adds --preprocess and the per-field overrides;
// presetDefault says what an empty --preprocess means.
func addPreprocessFlags(fs *flag.FlagSet, pre *extract.Overrides, presetDefault string) {
	fs.StringVar(&pre.Preset, "preprocess", "", "preprocessing preset: caffe, torch, tf or keras (default: "+presetDefault+")")
	fs.StringVar(&pre.Size, "size", "", "network input size, N or WxH (default: the model's)")
	fs.StringVar(&pre.Mean, "mean", "", "per-channel mean in the network's channel order, after scaling: a,b,c")
	fs.StringVar(&pre.Std, "std", "", "per-channel std in the network's channel order: a,b,c")
	fs.StringVar(&pre.Scale, "scale", "", "pixel scale applied first, e.g. 1/255")
	fs.StringVar(&pre.SwapRB, "swap-rb", "", "true: the network wants RGB; false: BGR")
	fs.StringVar(&pre.Resize, "resize", "", "stretch (to the input size) or shorter:N (then centre crop)")
	fs.StringVar(&pre.Interp, "interp", "", "bilinear, nearest (PIL's, as Keras), area or bicubic")
}

func (m modelFlags) spec() extract.ModelSpec {
	return extract.ModelSpec{Model: m.model, Config: m.config, Overrides: m.pre}
}

// dbPath is --db, else $PIPELINE_DB, else ./features.db.
func addDBFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("PIPELINE_DB")
	if def == "" {
		def = "features.db"
	}
	return fs.String("db", def, "feature database (default $PIPELINE_DB or ./features.db)")
}

func cmdExtract(e *env, args []string) error {
	fs := newFlags(e, "extract", "extract --model NAME|PATH --layer NAME[,NAME...] (--images DIR | --list FILE|-) [flags]")
	var mf modelFlags
	addModelFlags(fs, &mf)
	db := addDBFlag(fs)
	layers := fs.String("layer", "", "layer(s) to store, comma-separated: aliases (fc2, avg_pool, block4_pool, ...), OpenCV, ONNX or Caffe names")
	pool := fs.String("pool", "avg", "how C x H x W outputs become vectors: avg, max, or none (flattened in C x H x W order)")
	images := fs.String("images", "", "folder of images: DIR/<class>/... (the first-level sub-folder is the label), or DIR/{train,val,validation,test}/<class>/... (the first level is the split)")
	split := fs.String("split", "", "train or test: the split of every labeled image this run adds (a split chosen so is never moved by the automatic split)")
	list := fs.String("list", "", "file listing images, one path per line or CSV path,label; - for stdin")
	batch := fs.Int("batch", 8, "images per forward pass")
	threads := fs.Int("threads", 0, "OpenCV's or oneDNN's threads (0 = all cores, or cores/nets)")
	engine, precision := addEngineFlags(fs)
	nets := fs.Int("nets", 1, "copies of the network working side by side on different batches")
	workers := fs.Int("workers", 0, "decode goroutines (0 = number of cores)")
	backend := fs.String("backend", "cpu", "cpu, opencl or cuda (checked: never a silent fallback)")
	target := fs.String("target", "fp32", "fp32 or fp16 (fp16 needs opencl or cuda)")
	maxPixels := fs.Int64("max-pixels", 100_000_000, "skip images with more pixels than this, read from the header where possible (0 = no limit)")
	fast := fs.Bool("fast-decode", false, "decode large JPEGs at 1/2, 1/4 or 1/8 size (faster; slightly different codes)")
	wait := fs.Duration("wait", 0, "if another process is writing the database, wait this long for it (e.g. 10m)")
	asJSON := fs.Bool("json", false, "print the summary as JSON on stdout")
	shardFlag := fs.String("shard", "", "take only shard I of N of the inputs, I/N 0-based (e.g. 2/8): those whose path relative to --images (or list entry) hashes to I; see docs/SCALE.md")
	shards := fs.Int("shards", 0, "number of shards N; this worker's index comes from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm array)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := checkBounds("extract", positive("batch", int64(*batch)), positive("nets", int64(*nets)),
		zeroOrMore("workers", int64(*workers), "one per core"), zeroOrMore("threads", int64(*threads), "all cores"),
		zeroOrMore("max-pixels", *maxPixels, "no limit")); err != nil {
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
	spec := mf.spec()
	spec.NeedPreprocess = true
	model, err := extract.ResolveModel(spec)
	if err != nil {
		return err
	}
	pr := newProgress(e, "extract")
	opts := pipeline.ExtractOptions{
		DB: *db, Model: model, Layers: commaList(*layers), Pool: *pool,
		Compute: extract.Compute{Backend: *backend, Target: *target, Threads: *threads, Engine: *engine, Arith: *precision},
		Batch:   *batch, Nets: *nets, Workers: *workers, Images: *images, List: *list, ListReader: e.stdin, Split: *split,
		MaxPixels: *maxPixels, Reduce: *fast, Wait: *wait, Args: e.args, Events: pr, Shard: shard,
	}
	sum, err := pipeline.Extract(e.ctx, opts)
	pr.Done()
	if sum.RunID == 0 && err != nil {
		return err // nothing started: no summary to print
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(sum); jerr != nil {
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

// addEngineFlags adds --engine and --precision.
func addEngineFlags(fs *flag.FlagSet) (engine, precision *string) {
	engine = fs.String("engine", "auto", "inference engine: auto (oneDNN for ONNX graphs it supports, else OpenCV, with a note), onednn or opencv")
	precision = fs.String("precision", "fp32", "fp32 or bf16 (oneDNN, on CPUs with avx512_bf16 or AMX; a feature set of its own)")
	return engine, precision
}
