package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"pipeline/extract"
	"pipeline/pipeline"
)

// The flags several commands share are declared here, once each, so that
// a flag has one name, one default and one help text in every command.

// addDBFlag is --db for commands that read or write one database: --db,
// else $PIPELINE_DB, else ./features.db.
func addDBFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("PIPELINE_DB")
	if def == "" {
		def = "features.db"
	}
	return fs.String("db", def, "feature database (default $PIPELINE_DB or ./features.db)")
}

// addDBListFlag is --db for commands that read several databases: repeat
// it (--db a.db --db b.db); none given means $PIPELINE_DB or ./features.db.
// The first is the main one (where a fit stores its classifier).
func addDBListFlag(fs *flag.FlagSet) func() []string {
	var dbs []string
	fs.Func("db", "feature database (default $PIPELINE_DB or ./features.db); repeat to read several at once", func(v string) error {
		dbs = append(dbs, v)
		return nil
	})
	return func() []string {
		if len(dbs) > 0 {
			return dbs
		}
		if d := os.Getenv("PIPELINE_DB"); d != "" {
			return []string{d}
		}
		return []string{"features.db"}
	}
}

// addWaitFlag is --wait, for the commands that take the writer lock; when
// says when they take it ("" = always, "with --store").
func addWaitFlag(fs *flag.FlagSet, when string) *time.Duration {
	help := "if another process is writing the database, wait this long for it (e.g. 10m; 0 = fail at once, exit 4)"
	if when != "" {
		help = when + ": " + help
	}
	return fs.Duration("wait", 0, help)
}

// addFeatureSetFlags adds --set, --layer, --model and --pool: the stored
// feature set a command reads (fit, export, similar).
func addFeatureSetFlags(fs *flag.FlagSet, q *pipeline.SetQuery) {
	fs.StringVar(&q.Layer, "layer", "", "feature set: layer alias or OpenCV name as extract stored it (e.g. fc2)")
	fs.StringVar(&q.Model, "model", "", "model name, when several models have that layer (similar also takes the model file's path, as --model-file)")
	fs.StringVar(&q.Pool, "pool", "", "pooling of the feature set, when the layer was stored with several: avg, max or none (layers that are vectors, such as fc2, match any)")
	fs.Int64Var(&q.ID, "set", 0, "feature set id (pipeline sql \"SELECT id, model_name, alias, layer, pooling, dim FROM feature_sets\")")
}

// modelFlags are the flags that choose a model and its preprocessing.
type modelFlags struct {
	model, config string
	pre           extract.Overrides
}

// addModelFlags adds --model, --config and the preprocessing flags
// (extract, sweep, layers).
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

// resolve finds the model the flags name (needPreprocess: the command
// runs it on images); a Keras file's hint names the command that
// registers this very file.
func (m modelFlags) resolve(needPreprocess bool) (extract.Model, error) {
	spec := m.spec()
	spec.NeedPreprocess = needPreprocess
	model, err := extract.ResolveModel(spec)
	if errors.Is(err, extract.ErrKerasFile) {
		return model, withHint(err, fmt.Sprintf("register it once with `pipeline models add NAME --file %s`, then use --model NAME", m.model))
	}
	return model, err
}

// computeFlag picks the compute flags a command has beyond --threads,
// --backend and --max-pixels, which every command that runs a network has.
type computeFlag uint

const (
	withTarget     computeFlag = 1 << iota // --target
	withEngine                             // --engine, --precision
	withBatch                              // --batch, --nets
	withWorkers                            // --workers
	withFastDecode                         // --fast-decode
	withSetEngine                          // --engine, --precision defaulting to a feature set's (predict, similar)
)

// computeFlags say how a network runs (extract, sweep, predict, similar).
type computeFlags struct {
	has                                computeFlag
	backend, target, engine, precision string
	threads, batch, nets, workers      int
	maxPixels                          int64
	fastDecode                         bool
}

// addComputeFlags adds --threads, --backend, --max-pixels and the flags
// of has.
func addComputeFlags(fs *flag.FlagSet, has computeFlag) *computeFlags {
	c := &computeFlags{has: has}
	fs.IntVar(&c.threads, "threads", 0, "OpenCV's or oneDNN's threads (0 = all cores, or cores/nets)")
	fs.StringVar(&c.backend, "backend", "cpu", "cpu, opencl or cuda (checked: never a silent fallback)")
	fs.Int64Var(&c.maxPixels, "max-pixels", 100_000_000, "refuse images with more pixels than this, read from the header where possible (0 = no limit)")
	if has&withTarget != 0 {
		fs.StringVar(&c.target, "target", "fp32", "fp32 or fp16 (fp16 needs opencl or cuda)")
	}
	if has&withEngine != 0 {
		fs.StringVar(&c.engine, "engine", "auto", "inference engine: auto (oneDNN for ONNX graphs it supports, else OpenCV, with a note), onednn or opencv")
		fs.StringVar(&c.precision, "precision", "fp32", "fp32 or bf16 (oneDNN, on CPUs with avx512_bf16 or AMX; a feature set of its own)")
	}
	if has&withSetEngine != 0 {
		fs.StringVar(&c.engine, "engine", "", "inference engine for new images: auto (oneDNN for ONNX graphs it supports, else OpenCV, with a note), onednn or opencv (default: the feature set's engine; the engines agree within 1e-5 in fp32)")
		fs.StringVar(&c.precision, "precision", "", "fp32 or bf16 for new images (default: the feature set's precision; another one is refused, its codes would not be comparable)")
	}
	if has&withBatch != 0 {
		fs.IntVar(&c.batch, "batch", 8, "images per forward pass")
		fs.IntVar(&c.nets, "nets", 1, "copies of the network working side by side on different batches")
	}
	if has&withWorkers != 0 {
		fs.IntVar(&c.workers, "workers", 0, "decode goroutines (0 = number of cores)")
	}
	if has&withFastDecode != 0 {
		fs.BoolVar(&c.fastDecode, "fast-decode", false, "decode large JPEGs at 1/2, 1/4 or 1/8 size (faster; slightly different codes)")
	}
	return c
}

// check refuses values below a flag's minimum (a --batch 0 is not
// silently a batch of 1).
func (c *computeFlags) check(cmd string) error {
	b := []bound{zeroOrMore("threads", int64(c.threads), "all cores"), zeroOrMore("max-pixels", c.maxPixels, "no limit")}
	if c.has&withBatch != 0 {
		b = append(b, positive("batch", int64(c.batch)), positive("nets", int64(c.nets)))
	}
	if c.has&withWorkers != 0 {
		b = append(b, zeroOrMore("workers", int64(c.workers), "one per core"))
	}
	return checkBounds(cmd, b...)
}

// compute is the extract.Compute the flags say.
func (c *computeFlags) compute() extract.Compute {
	return extract.Compute{Backend: c.backend, Target: c.target, Threads: c.threads, Engine: c.engine, Arith: c.precision}
}

// inputFlags name the images a command reads (extract, sweep).
type inputFlags struct {
	images, list, split string
}

func addInputFlags(fs *flag.FlagSet) *inputFlags {
	in := &inputFlags{}
	fs.StringVar(&in.images, "images", "", "folder of images: DIR/<class>/... (the first-level sub-folder is the label), or DIR/{train,val,validation,test}/<class>/... (the first level is the split)")
	addListFlag(fs, &in.list)
	fs.StringVar(&in.split, "split", "", "train or test: the split of every labeled image this run adds (a split chosen so is never moved by the automatic split)")
	return in
}

// addListFlag is --list, the images named in a file (extract, sweep,
// predict).
func addListFlag(fs *flag.FlagSet, list *string) {
	fs.StringVar(list, "list", "", "file listing images, one path per line or CSV path,label; - for stdin")
}

// addPoolFlag is --pool of the commands that compute vectors (extract,
// sweep); a feature-set query's --pool is addFeatureSetFlags'.
func addPoolFlag(fs *flag.FlagSet) *string {
	return fs.String("pool", "avg", "how C x H x W outputs become vectors: avg, max, or none (flattened in C x H x W order)")
}
