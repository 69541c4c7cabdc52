package extract

import (
	"fmt"
	"math"
	"strings"

	"pipeline/errclass"
	"time"
)

// Model is a network file and what is needed to feed it.
type Model struct {
	Name       string     // catalog name, or the file name for a path
	Format     string     // onnx, caffe or tensorflow
	Path       string     // the weights file (.onnx, .caffemodel, .pb)
	Config     string     // Caffe .prototxt, optional TensorFlow .pbtxt
	SHA256     string     // of Path: the model's identity in the feature_sets table
	Input      string     // input blob name; "" when the net has a single input
	Preprocess Preprocess // from the catalog entry, or a preset the user chose
	// HasPreprocess is false for a model file that came without a convention
	// (a bare path): the user must choose one, guessing would give wrong codes.
	HasPreprocess bool
	// InputDims are the input dimensions the file declares (NCHW), 0 where
	// dynamic, nil when unknown.
	InputDims []int
}

// OpenNet reads the model's network and its layer graph for the model's
// input size, with aliases and source names resolved.
func OpenNet(m Model) (*Net, *Graph, error) {
	net, err := ReadNet(m.Format, m.Path, m.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("read model %s: %w", m.Path, err)
	}
	net.SetInputName(m.Input)
	h, w := m.Preprocess.Height, m.Preprocess.Width
	if h <= 0 || w <= 0 {
		net.Close()
		return nil, nil, fmt.Errorf("model %s: input size %dx%d", m.Path, w, h)
	}
	raw, err := net.describe([4]int{1, 3, h, w})
	if err != nil {
		net.Close()
		return nil, nil, fmt.Errorf("model %s: layer graph for a 1x3x%dx%d input: %w", m.Path, h, w, err)
	}
	saveGraph(m, raw)
	g, err := graphOf(m, raw)
	if err != nil {
		net.Close()
		return nil, nil, err
	}
	return net, g, nil
}

// graphOf builds the Graph of a model from OpenCV's description.
func graphOf(m Model, raw []rawLayer) (*Graph, error) {
	g := newGraph(raw)
	if m.Format == "caffe" {
		noteCaffeInPlace(g)
	}
	if m.Format == "onnx" {
		if err := addONNXSources(g, m.Path); err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Path, err)
		}
	}
	return g, nil
}

// noteCaffeInPlace explains Caffe's in-place ReLUs: in Caffe, "fc7" and
// "relu7" share one blob, so pycaffe's net.blobs['fc7'] holds the values
// after the ReLU; OpenCV keeps them apart, and layer fc7 is before it.
func noteCaffeInPlace(g *Graph) {
	for _, l := range g.Layers {
		if l.Type != "InnerProduct" && l.Type != "Convolution" {
			continue
		}
		if r := g.onlyConsumer(l, "ReLU"); r != nil {
			l.Note = fmt.Sprintf("before the ReLU; pycaffe's blobs['%s'] (in-place ReLU) is layer %s", l.Name, r.Name)
		}
	}
}

// Graph describes the network for a batch of one h x w image.
func (n *Net) Graph(h, w int) (*Graph, error) {
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("input size %dx%d", w, h)
	}
	raw, err := n.describe([4]int{1, 3, h, w})
	if err != nil {
		return nil, fmt.Errorf("layer graph for a 1x3x%dx%d input: %w", h, w, err)
	}
	return newGraph(raw), nil
}

// Output is one requested layer as the extractor delivers it.
type Output struct {
	Resolved
	Pool  string // effective pooling: "none" when the output has no spatial extent
	Dim   int    // vector length
	Shape []int  // the layer's output shape per image, before pooling
}

// ExtractorConfig says what to extract.
type ExtractorConfig struct {
	Model   Model
	Layers  []string // --layer names (aliases, OpenCV, ONNX or Caffe names)
	Pool    string   // avg, max or none for C x H x W outputs ("" = avg)
	Compute Compute
	Batch   int // images per forward pass (0 = 1)
	// NoFusion turns off OpenCV's layer fusion (for debugging numbers).
	NoFusion bool
}

// Extractor turns preprocessed image blobs into CNN codes of the requested
// layers, all from one forward pass. It is not safe for concurrent use.
type Extractor struct {
	cfg     ExtractorConfig
	net     *Net
	graph   *Graph
	outs    []Output
	names   []string // OpenCV layers to fetch: the outputs, then hidden ones
	sizes   []int    // raw floats per image, per name
	batch   int
	inLen   int
	Notes   []string // things the user should know (batch fallback, OpenCL setup)
	scratch []float32
	engine  string   // EngineOpenCV or EngineOneDNN
	dnnl    *dnnlNet // the oneDNN engine's net, when it runs
	// LoadTime is how long the oneDNN engine took to read and reorder the weights.
	LoadTime time.Duration
}

// NewExtractor loads the model and resolves the layers. Close it when done.
func NewExtractor(cfg ExtractorConfig) (*Extractor, error) {
	pool, err := checkExtractorConfig(cfg)
	if err != nil {
		return nil, err
	}
	e := &Extractor{cfg: cfg, batch: max(cfg.Batch, 1), engine: EngineOpenCV}
	want, err := wantEngine(cfg)
	if err != nil {
		return nil, err
	}
	backend, target, err := e.setupCompute()
	if err != nil {
		return nil, err
	}
	// The oneDNN engine needs only OpenCV's description of the graph: from
	// the graph cache when OpenCV described this file before.
	var g *Graph
	if want != EngineOpenCV {
		g = cachedGraph(cfg.Model)
	}
	if g == nil {
		net, g2, err := OpenNet(cfg.Model)
		if err != nil {
			return nil, err
		}
		e.net, g = net, g2
	}
	e.graph = g
	e.Notes = append(e.Notes, g.Warnings...)
	seen, err := e.resolveOutputs(pool)
	if err != nil {
		e.Close()
		return nil, err
	}
	p := cfg.Model.Preprocess
	e.inLen = 3 * p.Width * p.Height
	if want != EngineOpenCV {
		ok, err := e.startOneDNN(want)
		if err != nil {
			e.Close()
			return nil, err
		}
		if ok {
			return e, nil
		}
	}
	if err := e.startOpenCV(backend, target, seen); err != nil {
		return nil, err
	}
	return e, nil
}

// checkExtractorConfig checks what can be checked before anything is
// loaded, and returns the effective pooling.
func checkExtractorConfig(cfg ExtractorConfig) (string, error) {
	pool := cfg.Pool
	if pool == "" {
		pool = "avg"
	}
	if pool != "avg" && pool != "max" && pool != "none" {
		return "", errclass.Errorf(errclass.Usage, "pool %q: want avg, max or none", cfg.Pool)
	}
	if len(cfg.Layers) == 0 {
		return "", errclass.Errorf(errclass.Usage, "no layer requested")
	}
	if err := cfg.Model.Preprocess.Validate(); err != nil {
		return "", err
	}
	return pool, nil
}

// setupCompute prepares OpenCL when asked, checks the backend and target,
// and sets the thread count.
func (e *Extractor) setupCompute() (backend, target int, err error) {
	c := e.cfg.Compute
	if strings.EqualFold(c.Backend, "opencl") {
		note, err := ConfigureOpenCL()
		if err != nil {
			return 0, 0, err
		}
		if note != "" {
			e.Notes = append(e.Notes, note)
		}
	}
	backend, target, err = resolveCompute(c)
	if err != nil {
		return 0, 0, err
	}
	if c.Threads > 0 {
		SetNumThreads(c.Threads)
	}
	return backend, target, nil
}

// resolveOutputs resolves the requested layers on the graph into e.outs
// (each layer once), and returns the set of resolved layer names.
func (e *Extractor) resolveOutputs(pool string) (map[string]bool, error) {
	seen := map[string]bool{}
	for _, name := range e.cfg.Layers {
		r, err := e.graph.Resolve(name)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", e.cfg.Model.Name, err)
		}
		if seen[r.Layer.Name] {
			continue
		}
		seen[r.Layer.Name] = true
		o := Output{Resolved: r, Shape: r.Layer.Shape, Pool: pool}
		// A Permute's output (TensorFlow's NHWC views) is not C x H x W:
		// pooling would average the wrong axes, so it is flattened as is.
		if !r.Layer.Spatial() || r.Layer.Type == "Permute" {
			o.Pool = "none"
		}
		o.Dim = r.Layer.Dim(o.Pool)
		if o.Dim <= 0 {
			return nil, fmt.Errorf("model %s: layer %s has no output shape", e.cfg.Model.Name, r.Layer.Name)
		}
		e.outs = append(e.outs, o)
		e.names = append(e.names, r.Layer.Name)
		e.sizes = append(e.sizes, prod(r.Layer.Shape))
	}
	return seen, nil
}

// startOpenCV runs the network on OpenCV: it opens the net if the graph
// came from the cache, sets the backend, and checks the batch size.
func (e *Extractor) startOpenCV(backend, target int, seen map[string]bool) error {
	if e.net == nil { // auto fell back to OpenCV on a cached graph
		net, _, err := OpenNet(e.cfg.Model)
		if err != nil {
			return err
		}
		e.net = net
	}
	if err := e.net.setBackend(backend, target); err != nil {
		e.Close()
		return fmt.Errorf("set backend: %w", err)
	}
	if e.cfg.NoFusion {
		e.net.EnableFusion(false)
	}
	e.pinFusedInputs(seen)
	if e.batch > 1 {
		if err := e.checkBatch(); err != nil {
			e.Notes = append(e.Notes, err.Error())
			e.batch = 1
		}
	}
	return nil
}

// pinFusedInputs works around an OpenCV 4.6 fusion bug: a requested
// BatchNorm or Scale layer between a Convolution and a ReLU is folded into
// the convolution together with the ReLU, and OpenCV then returns a buffer
// nothing wrote (or fails an assertion), in ONNX, Caffe and TensorFlow
// graphs alike. Fusion keeps the outputs that are requested, so the chain's
// convolution and every BatchNorm/Scale in between are fetched too, as
// hidden outputs that Forward drops.
func (e *Extractor) pinFusedInputs(seen map[string]bool) {
	isNorm := func(l *Layer) bool { return l.Type == "BatchNorm" || l.Type == "Scale" }
	for _, o := range e.outs {
		if !isNorm(o.Layer) {
			continue
		}
		l := o.Layer
		for len(l.Inputs) == 1 {
			up := e.graph.byID[l.Inputs[0]]
			if up == nil {
				break
			}
			if !seen[up.Name] {
				seen[up.Name] = true
				e.names = append(e.names, up.Name)
				e.sizes = append(e.sizes, prod(up.Shape))
			}
			if !isNorm(up) {
				break
			}
			l = up
		}
	}
}

// checkBatch verifies that the net really takes batches: a file that fixes
// the batch dimension to 1 in a reshape would give wrong shapes.
func (e *Extractor) checkBatch() error {
	p := e.cfg.Model.Preprocess
	raw, err := e.net.describe([4]int{e.batch, 3, p.Height, p.Width})
	if err != nil {
		return fmt.Errorf("batch %d not supported by this model (%v): using batch 1", e.batch, err)
	}
	want := map[string][]int{}
	for i, name := range e.names {
		if l := e.graph.Layer(name); l != nil {
			want[name] = l.Shape
		} else if i < len(e.outs) {
			want[name] = e.outs[i].Shape
		}
	}
	for _, r := range raw {
		s, ok := want[r.Name]
		if !ok {
			continue
		}
		if len(r.Shapes) == 0 || r.Shapes[0][0] != e.batch || !equalInts(r.Shapes[0][1:], s) {
			return fmt.Errorf("model fixes the batch size at layer %s: using batch 1 instead of %d", r.Name, e.batch)
		}
	}
	return nil
}

// Close frees the network.
func (e *Extractor) Close() error {
	if e.net != nil {
		e.net.Close()
		e.net = nil
	}
	if e.dnnl != nil {
		e.dnnl.Close()
		e.dnnl = nil
	}
	return nil
}

// Graph is the model's layer graph.
func (e *Extractor) Graph() *Graph { return e.graph }

// Outputs describes the vectors Forward returns, in order.
func (e *Extractor) Outputs() []Output { return e.outs }

// BatchSize is the number of images per forward pass.
func (e *Extractor) BatchSize() int { return e.batch }

// InputLen is the number of floats of one preprocessed image.
func (e *Extractor) InputLen() int { return e.inLen }

// Preprocess is the preprocessing the model needs.
func (e *Extractor) Preprocess() Preprocess { return e.cfg.Model.Preprocess }

// Forward runs n preprocessed images (n*InputLen floats, NCHW) and returns,
// for each image, one vector per output. Batches larger than BatchSize are
// split. Vectors are returned as computed: check them with BadValue.
func (e *Extractor) Forward(in []float32, n int) ([][][]float32, error) {
	if len(in) != n*e.inLen {
		return nil, fmt.Errorf("forward: %d floats for %d images, want %d", len(in), n, n*e.inLen)
	}
	res := make([][][]float32, 0, n)
	for start := 0; start < n; start += e.batch {
		k := min(e.batch, n-start)
		out, err := e.forward(in[start*e.inLen:(start+k)*e.inLen], k)
		if err != nil {
			return nil, err
		}
		res = append(res, out...)
	}
	return res, nil
}

func (e *Extractor) forward(in []float32, k int) ([][][]float32, error) {
	p := e.cfg.Model.Preprocess
	total := 0
	sizes := make([]int, len(e.sizes))
	for i, s := range e.sizes {
		sizes[i] = s * k
		total += sizes[i]
	}
	if cap(e.scratch) < total {
		e.scratch = make([]float32, total)
	}
	buf := e.scratch[:total]
	if e.dnnl != nil {
		if err := e.dnnl.forward(in, k, buf); err != nil {
			return nil, fmt.Errorf("forward: %w", err)
		}
	} else if _, err := e.net.Forward(in, [4]int{k, 3, p.Height, p.Width}, e.names, sizes, buf); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	res := make([][][]float32, k)
	for i := range res {
		res[i] = make([][]float32, len(e.outs))
	}
	off := 0
	for j, o := range e.outs { // the hidden outputs after them are dropped
		per := e.sizes[j]
		for i := 0; i < k; i++ {
			res[i][j] = poolVector(buf[off+i*per:off+(i+1)*per], o.Shape, o.Pool)
		}
		off += sizes[j]
	}
	return res, nil
}

// poolVector turns one image's raw layer output into its vector: a copy for
// "none" (C x H x W order), else the mean (accumulated in float64) or max over
// each channel's H x W values.
func poolVector(raw []float32, shape []int, pool string) []float32 {
	if pool == "none" || len(shape) < 3 {
		return append([]float32(nil), raw...)
	}
	c := shape[0]
	hw := len(raw) / c
	out := make([]float32, c)
	for ch := 0; ch < c; ch++ {
		v := raw[ch*hw : (ch+1)*hw]
		if pool == "max" {
			m := float32(math.Inf(-1))
			for _, x := range v {
				if x > m || x != x {
					m = x
				}
			}
			out[ch] = m
			continue
		}
		var s float64
		for _, x := range v {
			s += float64(x)
		}
		out[ch] = float32(s / float64(hw))
	}
	return out
}

// BadValue reports the index of the first NaN or Inf in v, or -1.
func BadValue(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}
