package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"pipeline/extract"
	"pipeline/pipeline"
)

// netSpec is one network the benchmark measures.
type netSpec struct {
	Key   string // --models name
	Title string
	Arch  string // generated architecture pipeline runs
	Layer string // --layer alias
	// PeerArch is the generated architecture with torchvision's topology,
	// to count the peer's FLOPs (torchvision's ResNet-50 is v1.5: the
	// stride sits on the 3x3 convolution, which costs 6% more than v1).
	PeerArch string
}

var nets = []netSpec{
	{"vgg16", "VGG-16 fc2", "vgg16-arch", "fc2", "vgg16-arch-torch"},
	{"resnet50", "ResNet-50 avg_pool", "resnet50-arch", "avg_pool", "resnet50-arch-torch"},
}

func lookupNet(key string) (netSpec, error) {
	for _, n := range nets {
		if n.Key == key {
			return n, nil
		}
	}
	return netSpec{}, fmt.Errorf("unknown model %q: want vgg16 or resnet50", key)
}

// Report is everything one run measured (bench/out/*.json).
type Report struct {
	Kind     string       `json:"kind"` // "speed" or "memory"
	Started  string       `json:"started"`
	Finished string       `json:"finished"`
	Machine  Machine      `json:"machine"`
	Settings Settings     `json:"settings"`
	GEMM     *GEMMResult  `json:"gemm,omitempty"`
	Nets     []*NetReport `json:"nets,omitempty"`
	Memory   *MemReport   `json:"memory,omitempty"`
	Errors   []string     `json:"errors,omitempty"`
	Notes    []string     `json:"notes,omitempty"`
}

// Machine describes where the numbers come from.
type Machine struct {
	CPU         string `json:"cpu"`
	Cores       int    `json:"cores"`
	SIMD        string `json:"simd"`
	MemTotal    string `json:"mem_total"`
	Kernel      string `json:"kernel"`
	Pipeline    string `json:"pipeline"`
	Commit      string `json:"commit"` // git HEAD of the measured tree, +dirty with local changes
	Go          string `json:"go"`
	OpenCV      string `json:"opencv"`
	Parallel    string `json:"opencv_parallel"`
	Torch       string `json:"torch,omitempty"`
	Torchvision string `json:"torchvision,omitempty"`
	LoadStart   string `json:"loadavg_start"`
	LoadEnd     string `json:"loadavg_end"`
}

// Settings are the options of the run.
type Settings struct {
	Data       string `json:"data"`
	Images     int    `json:"images"`
	Threads    int    `json:"threads"`
	Workers    int    `json:"workers"` // 0 = pipeline's default (cores)
	Batches    []int  `json:"batches"`
	E2EBatches []int  `json:"e2e_batches"`
	Warmup     int    `json:"warmup"`
	Reps       int    `json:"reps"`
	MinImages  int    `json:"min_images"`
	GEMMSize   int    `json:"gemm_size"`
	Command    string `json:"command"`
}

// GEMMResult is the peer's matmul: the machine's FLOP roofline.
type GEMMResult struct {
	Size         int       `json:"size"`
	Threads      int       `json:"threads"`
	GFLOPS       float64   `json:"gflops"` // torch.mm, the roofline used
	TorchSeconds []float64 `json:"torch_seconds"`
	NumpyGFLOPS  float64   `json:"numpy_gflops,omitempty"`
	Torch        string    `json:"torch"`
	Measured
}

// TorchNet is the peer's measurement of one network.
type TorchNet struct {
	Model       string            `json:"model"`
	Layer       string            `json:"layer"`
	Threads     int               `json:"threads"`
	Torch       string            `json:"torch"`
	Torchvision string            `json:"torchvision"`
	Skipped     map[string]string `json:"skipped,omitempty"` // mode -> why it was not measured
	Results     []TorchResult     `json:"results"`
	Measured
}

// TorchResult is one configuration and batch of the peer.
type TorchResult struct {
	Mode         string    `json:"mode"` // eager, channels_last, torchscript, bf16
	MinCosine    float64   `json:"min_cosine_to_eager,omitempty"`
	Batch        int       `json:"batch"`
	CallsPerRep  int       `json:"calls_per_rep"`
	ImagesPerRep int       `json:"images_per_rep"`
	Seconds      []float64 `json:"seconds"`
	ImagesPerSec float64   `json:"images_per_second"`
	Dim          int       `json:"dim"`
}

// E2E is one `pipeline extract --json` run into a fresh database.
type E2E struct {
	Engine         string                  `json:"engine"`    // --engine given
	Precision      string                  `json:"precision"` // --precision given
	RequestedBatch int                     `json:"requested_batch"`
	Images         int                     `json:"images"`
	Summary        pipeline.ExtractSummary `json:"summary"`
	// ForwardOnly is extracted images / timing.forward: the forward pass's
	// speed inside the real run (compare with the raw forward).
	ForwardOnly float64 `json:"forward_only_images_per_second"`
	Measured
}

// NetReport gathers one network's numbers and their ratios.
type NetReport struct {
	Key      string           `json:"key"`
	Title    string           `json:"title"`
	Arch     string           `json:"arch"`
	Layer    string           `json:"layer"`
	Cost     *Cost            `json:"cost,omitempty"`
	PeerCost *Cost            `json:"peer_cost,omitempty"`
	Forward  []*ForwardRun    `json:"forward,omitempty"`
	Torch    *TorchNet        `json:"torch,omitempty"`
	E2E      []*E2E           `json:"e2e,omitempty"`
	Ratios   map[string]Ratio `json:"ratios,omitempty"`
	Roofline float64          `json:"roofline_images_per_second,omitempty"`
}

// ForwardRun is a raw-forward measurement and its process.
type ForwardRun struct {
	ForwardResult
	Measured
}

// Ratio is a/b with what a and b are.
type Ratio struct {
	Value float64 `json:"value"`
	Of    string  `json:"of"`
}

type runOpts struct {
	data, out, pipelineBin, python string
	models                         []string
	vggArch, resnetArch            string
	batches, e2eBatches            []int
	threads, workers, n            int
	warmup, reps, minImages, gemm  int
	noTorch, noGEMM, noE2E, noFwd  bool
	keep                           bool
	torchModes                     string
	combos                         []combo
}

// combo is one engine and precision pipeline runs with.
type combo struct{ engine, precision string }

func (c combo) String() string { return c.engine + " " + c.precision }

// parseCombos: every engine in fp32, and oneDNN in each other precision
// (bf16 only where the CPU has it: said in the report otherwise).
func parseCombos(engines, precisions string) ([]combo, []string, error) {
	es, ps := splitList(engines), splitList(precisions)
	if len(es) == 0 || len(ps) == 0 {
		return nil, nil, fmt.Errorf("--engines and --precisions want at least one value")
	}
	var out []combo
	var notes []string
	for _, e := range es {
		if e != "onednn" && e != "opencv" {
			return nil, nil, fmt.Errorf("--engines %q: want onednn and/or opencv", e)
		}
		for _, p := range ps {
			switch {
			case p != "fp32" && p != "bf16":
				return nil, nil, fmt.Errorf("--precisions %q: want fp32 and/or bf16", p)
			case p == "bf16" && e == "opencv":
				continue
			case p == "bf16":
				if ok, why := extract.BF16Available(); !ok {
					notes = append(notes, "bf16 not measured: "+why)
					continue
				}
			}
			out = append(out, combo{e, p})
		}
	}
	return out, notes, nil
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	o, comboNotes, err := parseRunFlags(args, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(o.out, o.data, o.pipelineBin, o.python, stderr)
	if err != nil {
		return err
	}
	rep := &Report{Kind: "speed", Started: time.Now().Format(time.RFC3339)}
	rep.Settings = Settings{Data: b.data, Threads: o.threads, Workers: o.workers, Batches: o.batches, E2EBatches: o.e2eBatches,
		Warmup: o.warmup, Reps: o.reps, MinImages: o.minImages, GEMMSize: o.gemm, Command: shellJoin(append([]string{"pipebench", "run"}, args...))}
	if !o.noTorch || !o.noGEMM {
		if err := b.checkPython(o.noTorch); err != nil {
			return err
		}
	}
	rep.Machine = b.machine()
	rep.Notes = append(rep.Notes, comboNotes...)
	all, err := listImages(b.data)
	if err != nil {
		return err
	}
	r := &speedRun{b: b, o: o, rep: rep, stderr: stderr, ins: subset(all, o.n)}
	rep.Settings.Images = len(r.ins)
	// All images: --images, as a user runs it; a subset: a --list file.
	r.images = []string{"--images", b.data}
	if len(r.ins) < len(all) {
		list := filepath.Join(b.r.logDir, fmt.Sprintf("subset-%d.csv", len(r.ins)))
		if err := writeList(list, r.ins); err != nil {
			return err
		}
		r.images = []string{"--list", list}
	}
	if !o.noGEMM {
		if g, err := b.gemm(o.threads, o.gemm, o.reps); err != nil {
			r.fail("gemm", err)
		} else {
			rep.GEMM = g
			rep.Machine.Torch = g.Torch
		}
	}
	for _, key := range o.models {
		r.measureNet(key)
	}
	rep.Finished = time.Now().Format(time.RFC3339)
	rep.Machine.LoadEnd = loadAvg()
	return b.finish(rep, stdout)
}

// parseRunFlags reads `pipebench run`'s flags into runOpts; the notes say
// which engine/precision combinations this machine cannot measure.
func parseRunFlags(args []string, stderr io.Writer) (runOpts, []string, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o runOpts
	var models, batches, e2eBatches string
	fs.StringVar(&o.data, "data", "", "folder of labelled images (default ../shared/datasets/seed4, then /work/shared/datasets/seed4)")
	fs.StringVar(&o.out, "out", "bench/out", "where results, logs, binaries and temporary databases go (git-ignored)")
	fs.StringVar(&models, "models", "vgg16,resnet50", "networks to measure: vgg16 (fc2), resnet50 (avg_pool)")
	fs.StringVar(&o.vggArch, "vgg-arch", "vgg16-arch", "generated VGG-16 to run (vgg16-arch: model zoo naming; vgg16-arch-torch: torchvision export naming)")
	fs.StringVar(&o.resnetArch, "resnet-arch", "resnet50-arch", "generated ResNet-50 to run (resnet50-arch: v1, model zoo; resnet50-arch-torch: v1.5, torchvision)")
	fs.StringVar(&batches, "batches", "1,8,32", "batch sizes of the raw forward and the PyTorch peer")
	fs.StringVar(&e2eBatches, "e2e-batches", "1,8,32", "batch sizes of the end-to-end runs (pipeline extract --batch; 8 is its default)")
	fs.IntVar(&o.threads, "threads", runtime.NumCPU(), "OpenCV and PyTorch threads")
	fs.IntVar(&o.workers, "workers", 0, "pipeline extract --workers (decode goroutines; 0 = its default, the number of cores)")
	fs.IntVar(&o.n, "n", 0, "use n images spread over the dataset (0 = all)")
	fs.IntVar(&o.warmup, "warmup", 1, "untimed repetitions before the timed ones (raw forward, PyTorch)")
	fs.IntVar(&o.reps, "reps", 5, "timed repetitions (raw forward, PyTorch); the median is reported")
	fs.IntVar(&o.minImages, "min-images", 8, "images per repetition, at least (batch 1 repeats the pass)")
	fs.IntVar(&o.gemm, "gemm-size", 4096, "GEMM size n (n x n times n x n, float32)")
	fs.BoolVar(&o.noTorch, "no-torch", false, "skip the PyTorch networks")
	fs.BoolVar(&o.noGEMM, "no-gemm", false, "skip the GEMM roofline")
	fs.BoolVar(&o.noE2E, "no-e2e", false, "skip the end-to-end pipeline extract runs")
	fs.BoolVar(&o.noFwd, "no-forward", false, "skip the raw forward runs")
	fs.BoolVar(&o.keep, "keep", false, "keep the databases of the end-to-end runs")
	fs.StringVar(&o.pipelineBin, "pipeline", "", "pipeline binary to measure (default: go build -o OUT/bin/pipeline ./cmd/pipeline)")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "Python with torch and torchvision (Debian's python3-torch)")
	engines := fs.String("engines", "onednn,opencv", "pipeline engines to measure (raw forward and end-to-end)")
	precisions := fs.String("precisions", "fp32,bf16", "precisions to measure on oneDNN (bf16 where the CPU has it)")
	modes := fs.String("torch-modes", "eager,channels_last,torchscript,bf16", "PyTorch configurations (peer_torch.py --modes)")
	if err := fs.Parse(args); err != nil {
		return o, nil, err
	}
	if fs.NArg() > 0 {
		return o, nil, fmt.Errorf("run: unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.models, err = parseNames(models); err != nil {
		return o, nil, err
	}
	if o.batches, err = parseInts("--batches", batches); err != nil {
		return o, nil, err
	}
	if o.e2eBatches, err = parseInts("--e2e-batches", e2eBatches); err != nil {
		return o, nil, err
	}
	var comboNotes []string
	if o.combos, comboNotes, err = parseCombos(*engines, *precisions); err != nil {
		return o, nil, err
	}
	o.torchModes = *modes
	if o.reps < 1 || o.warmup < 0 || o.minImages < 1 || o.threads < 1 {
		return o, nil, fmt.Errorf("run: --reps, --min-images and --threads must be at least 1, --warmup at least 0")
	}
	return o, comboNotes, nil
}

// speedRun is one `pipebench run`: its options, the images it feeds the
// end-to-end runs, and the report it fills.
type speedRun struct {
	b      *bench
	o      runOpts
	rep    *Report
	stderr io.Writer
	images []string         // pipeline extract's input flags
	ins    []pipeline.Input // the images those flags name
}

// fail records a measurement that failed; the run goes on without it.
func (r *speedRun) fail(what string, err error) {
	r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("%s: %v", what, err))
	fmt.Fprintf(r.stderr, "pipebench: %s: %v\n", what, err)
}

// measureNet measures one network (--models name) every way the options
// ask for and appends its NetReport.
func (r *speedRun) measureNet(key string) {
	b, o := r.b, r.o
	spec, _ := lookupNet(key)
	switch key {
	case "vgg16":
		spec.Arch = o.vggArch
	case "resnet50":
		spec.Arch = o.resnetArch
	}
	nr := &NetReport{Key: spec.Key, Title: spec.Title, Arch: spec.Arch, Layer: spec.Layer}
	r.rep.Nets = append(r.rep.Nets, nr)
	for _, arch := range []string{spec.Arch, spec.PeerArch} {
		if err := b.ensureModel(arch); err != nil {
			r.fail("model "+arch, err)
		}
	}
	if c, err := b.cost(spec.Arch, spec.Layer); err != nil {
		r.fail("flops "+spec.Arch, err)
	} else {
		nr.Cost = c
	}
	if spec.PeerArch == spec.Arch {
		nr.PeerCost = nr.Cost
	} else if c, err := b.cost(spec.PeerArch, spec.Layer); err != nil {
		r.fail("flops "+spec.PeerArch, err)
	} else {
		nr.PeerCost = c
	}
	if !o.noFwd {
		for _, c := range o.combos {
			for _, bs := range unionInts(o.batches, o.e2eBatches) {
				fr, err := b.forward(spec, bs, c, o)
				if err != nil {
					r.fail(fmt.Sprintf("forward %s %s batch %d", spec.Arch, c, bs), err)
					continue
				}
				nr.Forward = append(nr.Forward, fr)
			}
		}
	}
	if !o.noTorch {
		if tn, err := b.torch(spec.Key, o); err != nil {
			r.fail("torch "+spec.Key, err)
		} else {
			nr.Torch = tn
			r.rep.Machine.Torchvision = tn.Torchvision
		}
	}
	if !o.noE2E {
		for _, c := range o.combos {
			for _, bs := range o.e2eBatches {
				e, err := b.e2e(spec, bs, c, o.threads, o.workers, r.images, r.ins, o.keep)
				if e != nil {
					nr.E2E = append(nr.E2E, e)
				}
				if err != nil {
					r.fail(fmt.Sprintf("extract %s %s batch %d", spec.Arch, c, bs), err)
				}
			}
		}
	}
	nr.computeRatios(r.rep.GEMM)
}

// bench holds what every measurement of a run shares.
type bench struct {
	root, out, tmp, data string
	pipelineBin, selfBin string
	python               string
	stamp                string
	r                    *runner
	stderr               io.Writer
	versionJSON          map[string]any
}

func newBench(out, data, pipelineBin, python string, stderr io.Writer) (*bench, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	d, err := findData(data, []string{filepath.Join(root, "..", "shared", "datasets", "seed4"), "/work/shared/datasets/seed4"})
	if err != nil {
		return nil, err
	}
	b := &bench{root: root, out: out, data: d, python: python, stderr: stderr, stamp: time.Now().Format("20060102-150405")}
	logDir := filepath.Join(out, "logs", b.stamp)
	b.tmp = filepath.Join(out, "tmp", b.stamp)
	for _, dir := range []string{logDir, b.tmp, filepath.Join(out, "bin")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	b.r = &runner{root: root, logDir: logDir, stderr: stderr}
	if b.selfBin, err = os.Executable(); err != nil {
		return nil, err
	}
	b.pipelineBin = pipelineBin
	if b.pipelineBin == "" {
		b.pipelineBin = filepath.Join(out, "bin", "pipeline")
		fmt.Fprintf(stderr, "building %s\n", relTo(root, b.pipelineBin))
		cmd := exec.Command("go", "build", "-o", b.pipelineBin, "./cmd/pipeline")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, stderr, stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/pipeline: %w", err)
		}
	}
	if out, _, err := b.r.run("version", b.pipelineBin, "version", "--json"); err == nil {
		json.Unmarshal(out, &b.versionJSON)
	}
	return b, nil
}

// repoRoot is the folder of the go.mod of module pipeline, from the
// working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(b), "module pipeline\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("run pipebench inside the pipeline repository (no go.mod of module pipeline above %s)", dir)
		}
	}
}

func (b *bench) checkPython(noTorch bool) error {
	probe := "import torch, torchvision"
	if noTorch {
		probe = "import torch"
	}
	cmd := exec.Command(b.python, "-c", probe)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s cannot %q: %v: %s\nhint: bench/run.sh installs Debian's python3-torch and python3-torchvision (apt-get); or pass --no-torch --no-gemm",
			b.python, probe, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (b *bench) machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
	if ci, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(ci), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				if m.CPU == "" {
					m.CPU = strings.TrimSpace(v)
				}
			case "flags":
				if m.SIMD == "" {
					var simd []string
					for _, f := range strings.Fields(v) {
						switch f {
						case "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile":
							simd = append(simd, f)
						}
					}
					m.SIMD = strings.Join(simd, " ")
				}
			}
		}
	}
	if mi, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(mi), "\n")
		if f := strings.Fields(strings.TrimPrefix(line, "MemTotal:")); len(f) > 0 {
			if kib, err := strconv.ParseFloat(f[0], 64); err == nil {
				m.MemTotal = fmt.Sprintf("%.1f GiB RAM", kib/(1<<20))
			}
		}
	}
	if out, err := exec.Command("git", "-C", b.root, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", b.root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			m.Commit += "+dirty"
		}
	}
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(k))
	}
	str := func(k string) string { s, _ := b.versionJSON[k].(string); return s }
	m.Pipeline, m.OpenCV, m.Parallel = str("pipeline"), str("opencv"), str("parallel_framework")
	if m.OpenCV == "" {
		m.OpenCV = extract.OpenCVVersion()
	}
	return m
}

func (b *bench) ensureModel(name string) error {
	g, ok := extract.LookupGenerated(name)
	if !ok {
		return nil // a catalog model or a file: pipeline resolves it
	}
	cache, err := extract.CacheDir()
	if err != nil {
		return err
	}
	if _, err := os.Stat(extract.GeneratedPath(cache, name)); err != nil {
		fmt.Fprintf(b.stderr, "generating %s into %s (once)\n", name, cache)
	}
	_, _, err = g.Ensure(cache)
	return err
}

// cost counts the model's MACs up to the layer. Loading VGG-16 into
// OpenCV to resolve the layer takes seconds, so the count is kept in
// OUT/cache under the model file's SHA-256.
func (b *bench) cost(model, layer string) (*Cost, error) {
	var cached string
	if m, err := resolveModel(model); err == nil && m.SHA256 != "" {
		cached = filepath.Join(b.out, "cache", fmt.Sprintf("cost-%s-%s.json", m.SHA256[:16], url.PathEscape(layer)))
		if data, err := os.ReadFile(cached); err == nil {
			var c Cost
			if json.Unmarshal(data, &c) == nil && c.MACs > 0 && c.Model == model {
				return &c, nil
			}
		}
	}
	out, _, err := b.r.run("flops-"+model, b.selfBin, "flops", "--model", model, "--layer", layer)
	if err != nil {
		return nil, err
	}
	var c Cost
	if err := json.Unmarshal(out, &c); err != nil {
		return nil, fmt.Errorf("flops output: %w", err)
	}
	if cached != "" && os.MkdirAll(filepath.Dir(cached), 0o755) == nil {
		os.WriteFile(cached, out, 0o644)
	}
	return &c, nil
}

func (b *bench) gemm(threads, size, reps int) (*GEMMResult, error) {
	out, m, err := b.r.run("gemm", b.python, filepath.Join("bench", "peer_torch.py"), "gemm",
		"--threads", strconv.Itoa(threads), "--size", strconv.Itoa(size), "--reps", strconv.Itoa(reps))
	if err != nil {
		return nil, err
	}
	g := &GEMMResult{Measured: m}
	if err := json.Unmarshal(out, g); err != nil {
		return nil, fmt.Errorf("gemm output: %w", err)
	}
	return g, nil
}

func (b *bench) forward(spec netSpec, batch int, c combo, o runOpts) (*ForwardRun, error) {
	out, m, err := b.r.run(fmt.Sprintf("forward-%s-%s-%s-b%d", spec.Arch, c.engine, c.precision, batch), b.selfBin, "forward",
		"--model", spec.Arch, "--layer", spec.Layer, "--batch", strconv.Itoa(batch), "--threads", strconv.Itoa(o.threads),
		"--engine", c.engine, "--precision", c.precision,
		"--warmup", strconv.Itoa(o.warmup), "--reps", strconv.Itoa(o.reps), "--min-images", strconv.Itoa(o.minImages))
	if err != nil {
		return nil, err
	}
	fr := &ForwardRun{Measured: m}
	if err := json.Unmarshal(out, &fr.ForwardResult); err != nil {
		return nil, fmt.Errorf("forward output: %w", err)
	}
	return fr, nil
}

func (b *bench) torch(key string, o runOpts) (*TorchNet, error) {
	out, m, err := b.r.run("torch-"+key, b.python, filepath.Join("bench", "peer_torch.py"), "net", "--model", key,
		"--threads", strconv.Itoa(o.threads), "--batches", joinInts(o.batches), "--modes", o.torchModes,
		"--warmup", strconv.Itoa(o.warmup), "--reps", strconv.Itoa(o.reps), "--min-images", strconv.Itoa(o.minImages))
	if err != nil {
		return nil, err
	}
	t := &TorchNet{Measured: m}
	if err := json.Unmarshal(out, t); err != nil {
		return nil, fmt.Errorf("torch output: %w", err)
	}
	return t, nil
}

// e2e runs `pipeline extract --json` into a fresh database and reads its
// summary. Every image must be extracted: a failure makes the rate
// meaningless.
func (b *bench) e2e(spec netSpec, batch int, c combo, threads, workers int, images []string, inputs []pipeline.Input, keep bool) (*E2E, error) {
	n := len(inputs)
	dir, err := os.MkdirTemp(b.tmp, fmt.Sprintf("e2e-%s-%s-%s-b%d-", spec.Arch, c.engine, c.precision, batch))
	if err != nil {
		return nil, err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	warmPageCache(inputs)
	args := []string{"extract", "--model", spec.Arch, "--layer", spec.Layer, "--db", filepath.Join(dir, "features.db"),
		"--batch", strconv.Itoa(batch), "--threads", strconv.Itoa(threads), "--engine", c.engine, "--precision", c.precision}
	if workers > 0 {
		args = append(args, "--workers", strconv.Itoa(workers))
	}
	args = append(append(args, images...), "--json")
	out, m, runErr := b.r.run(fmt.Sprintf("extract-%s-%s-%s-b%d", spec.Arch, c.engine, c.precision, batch), b.pipelineBin, args...)
	e := &E2E{Engine: c.engine, Precision: c.precision, RequestedBatch: batch, Images: n, Measured: m}
	if err := json.Unmarshal(out, &e.Summary); err != nil {
		if runErr != nil {
			return nil, runErr
		}
		return nil, fmt.Errorf("extract --json output: %w", err)
	}
	if e.Summary.Timing.Forward > 0 {
		e.ForwardOnly = float64(e.Summary.Counts.Extracted) / e.Summary.Timing.Forward
	}
	if runErr != nil {
		return e, runErr
	}
	// Every file must be accounted for: extracted, or a duplicate of one that
	// was (seed4 has 38 files whose bytes another file already has).
	if c := e.Summary.Counts; c.Seen != int64(n) || c.Extracted+c.Duplicates != c.Seen {
		err := fmt.Errorf("%d of %d files seen, %d extracted, %d duplicates (status %s, %d failed): the rate is not comparable",
			c.Seen, n, c.Extracted, c.Duplicates, e.Summary.Status, c.Failed)
		e.Error = err.Error()
		return e, err
	}
	return e, nil
}

// warmPageCache reads the files once, so that no run pays for a cold disk
// (the model file is warm already: the raw forward and flops read it).
func warmPageCache(ins []pipeline.Input) {
	for _, in := range ins {
		os.ReadFile(in.Path)
	}
}

// computeRatios fills the ratios the issue asks for, per engine and
// precision: end-to-end against raw forward and against PyTorch's best
// configuration of the same arithmetic (fp32: eager, channels_last,
// TorchScript; bf16: autocast).
func (nr *NetReport) computeRatios(g *GEMMResult) {
	nr.Ratios = map[string]Ratio{}
	type key struct {
		c     combo
		batch int
	}
	fwd := map[key]*ForwardRun{}
	best := map[combo]*ForwardRun{}
	for _, f := range nr.Forward {
		c := combo{f.Engine, f.Precision}
		fwd[key{c, f.RequestedBatch}] = f
		if best[c] == nil || f.ImagesPerSec > best[c].ImagesPerSec {
			best[c] = f
		}
	}
	type peer struct {
		rate  float64
		mode  string
		batch int
	}
	torch := map[string]peer{} // by precision
	if nr.Torch != nil {
		for _, r := range nr.Torch.Results {
			prec := "fp32"
			if r.Mode == "bf16" {
				prec = "bf16"
			}
			if r.ImagesPerSec > torch[prec].rate {
				torch[prec] = peer{r.ImagesPerSec, r.Mode, r.Batch}
			}
		}
	}
	for _, e := range nr.E2E {
		if e.Error != "" || e.Summary.ImagesPerSec <= 0 {
			continue
		}
		c := combo{e.Engine, e.Precision}
		tag := fmt.Sprintf("%s_%s@b%d", e.Engine, e.Precision, e.RequestedBatch)
		if f := fwd[key{c, e.RequestedBatch}]; f != nil {
			nr.Ratios["e2e/raw_forward "+tag] = Ratio{e.Summary.ImagesPerSec / f.ImagesPerSec,
				fmt.Sprintf("end-to-end %.2f / raw forward %.2f img/s (%s, batch %d)", e.Summary.ImagesPerSec, f.ImagesPerSec, c, e.RequestedBatch)}
		}
		if p := torch[e.Precision]; p.rate > 0 {
			nr.Ratios["e2e/torch_best "+tag] = Ratio{e.Summary.ImagesPerSec / p.rate,
				fmt.Sprintf("end-to-end %.2f (%s, batch %d) / PyTorch %s %.2f img/s (its best %s configuration, batch %d)",
					e.Summary.ImagesPerSec, c, e.RequestedBatch, p.mode, p.rate, e.Precision, p.batch)}
		}
	}
	for c, f := range best {
		if p := torch[c.precision]; p.rate > 0 {
			nr.Ratios[fmt.Sprintf("raw_forward_best/torch_best %s_%s", c.engine, c.precision)] = Ratio{f.ImagesPerSec / p.rate,
				fmt.Sprintf("raw forward %.2f (%s, batch %d) / PyTorch %s %.2f img/s (batch %d)", f.ImagesPerSec, c, f.RequestedBatch, p.mode, p.rate, p.batch)}
		}
	}
	if g == nil || g.GFLOPS <= 0 || nr.Cost == nil {
		return
	}
	nr.Roofline = g.GFLOPS / nr.Cost.GFLOP
	for c, f := range best {
		if c.precision != "fp32" {
			continue
		}
		nr.Ratios[fmt.Sprintf("raw_forward_best/roofline %s_fp32", c.engine)] = Ratio{f.ImagesPerSec / nr.Roofline,
			fmt.Sprintf("raw forward %.2f img/s (%s, batch %d) / %.2f img/s = GEMM %.0f GFLOP/s / %.2f GFLOP per image",
				f.ImagesPerSec, c, f.RequestedBatch, nr.Roofline, g.GFLOPS, nr.Cost.GFLOP)}
	}
	if p := torch["fp32"]; p.rate > 0 && nr.PeerCost != nil {
		peerRoof := g.GFLOPS / nr.PeerCost.GFLOP
		nr.Ratios["torch_best/roofline"] = Ratio{p.rate / peerRoof,
			fmt.Sprintf("PyTorch %s %.2f img/s (batch %d) / %.2f img/s = GEMM %.0f GFLOP/s / %.2f GFLOP per image (torchvision topology)",
				p.mode, p.rate, p.batch, peerRoof, g.GFLOPS, nr.PeerCost.GFLOP)}
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseNames(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if _, err := lookupNet(f); err != nil {
			return nil, fmt.Errorf("--models: %w", err)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--models: none given (vgg16, resnet50)")
	}
	return out, nil
}

func parseInts(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", flagName, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no value", flagName)
	}
	return out, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// unionInts is a followed by the values of b it lacks.
func unionInts(a, b []int) []int {
	out := append([]int(nil), a...)
	for _, x := range b {
		found := false
		for _, y := range out {
			found = found || x == y
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

var errFailed = errors.New("some measurements failed")
