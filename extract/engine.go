package extract

import (
	"pipeline/errclass"

	"fmt"
	"strings"
	"time"

	"pipeline/extract/onnx"
)

// Engines NewExtractor can run a network on.
const (
	EngineAuto   = "auto"
	EngineOneDNN = "onednn"
	EngineOpenCV = "opencv"
)

// ErrEngine is returned (wrapped) when the requested engine or precision
// cannot run this model here: an unsupported operator (ErrUnsupportedOp), a
// Caffe or TensorFlow model on oneDNN, bf16 on OpenCV or on a CPU without
// bf16 (ErrNoBF16). These are usage errors: never a silent fallback.
var ErrEngine = errclass.New(errclass.Usage, "engine not available")

// wantEngine checks --engine and --precision against the model and the
// compute settings before anything is loaded, and returns the engine to try:
// EngineOpenCV, EngineOneDNN, or EngineAuto (oneDNN if the graph allows).
func wantEngine(cfg ExtractorConfig) (string, error) {
	c := cfg.Compute
	eng := strings.ToLower(c.Engine)
	if eng == "" {
		eng = EngineAuto
	}
	if eng != EngineAuto && eng != EngineOneDNN && eng != EngineOpenCV {
		return "", fmt.Errorf("engine %q: want auto, onednn or opencv: %w", c.Engine, ErrEngine)
	}
	bf16 := false
	switch strings.ToLower(c.Arith) {
	case "", "fp32":
	case "bf16":
		bf16 = true
	default:
		return "", fmt.Errorf("precision %q: want fp32 or bf16: %w", c.Arith, ErrEngine)
	}
	gpu := c.Backend != "" && !strings.EqualFold(c.Backend, "cpu") || c.Target == "fp16"
	switch {
	case bf16 && eng == EngineOpenCV:
		return "", fmt.Errorf("precision bf16 runs on the oneDNN engine only, not on the opencv engine: %w", ErrEngine)
	case bf16 && gpu:
		return "", fmt.Errorf("precision bf16 runs on the oneDNN engine (CPU) only, not with backend %s, target %s: %w", c.Backend, c.Target, ErrEngine)
	case eng == EngineOneDNN && cfg.Model.Format != "onnx":
		return "", fmt.Errorf("engine onednn runs ONNX models only; %s is a %s model: %w", cfg.Model.Name, cfg.Model.Format, ErrEngine)
	case bf16 && cfg.Model.Format != "onnx":
		return "", fmt.Errorf("precision bf16 runs on the oneDNN engine, which runs ONNX models only; %s is a %s model: %w", cfg.Model.Name, cfg.Model.Format, ErrEngine)
	case eng == EngineOneDNN && gpu:
		return "", fmt.Errorf("engine onednn runs on the CPU only, not with backend %s, target %s: %w", c.Backend, c.Target, ErrEngine)
	}
	if bf16 {
		if ok, why := bf16Support(); !ok {
			return "", fmt.Errorf("precision bf16: %s: %w", why, ErrNoBF16)
		}
		return EngineOneDNN, nil
	}
	if eng == EngineAuto && (cfg.Model.Format != "onnx" || gpu) {
		return EngineOpenCV, nil
	}
	return eng, nil
}

// startOneDNN moves the extractor onto oneDNN once the layers are resolved
// on OpenCV's graph (one resolver for both engines). It reports false when
// auto falls back to OpenCV (with a note naming the unsupported operator).
func (e *Extractor) startOneDNN(want string) (bool, error) {
	m := e.cfg.Model
	fail := func(err error) (bool, error) {
		if want == EngineOneDNN || e.cfg.Compute.Arith == "bf16" {
			return false, fmt.Errorf("model %s: %w", m.Name, err)
		}
		e.Notes = append(e.Notes, fmt.Sprintf("engine opencv: %v", err))
		return false, nil
	}
	// The file is mapped, not read: the plan needs only its structure, and
	// the build reads each op's weights from the mapping when it reaches
	// the op (extract/DESIGN.md, "Who owns which buffer").
	start := time.Now()
	mp, err := onnx.Map(m.Path)
	if err != nil {
		return false, fmt.Errorf("model %s: %w", m.Path, err)
	}
	defer mp.Close()
	og := mp.Model
	input := m.Input
	if input == "" {
		ins := og.Graph.DataInputs()
		if len(ins) != 1 {
			return fail(fmt.Errorf("%d graph inputs: %w", len(ins), ErrUnsupportedOp))
		}
		input = ins[0].Name
	}
	var tensors []string
	for _, o := range e.outs {
		t, err := layerTensor(og, o.Layer)
		if err != nil {
			return fail(err)
		}
		tensors = append(tensors, t)
	}
	plan, err := planDNNL(og, input, tensors)
	if err != nil {
		return fail(err)
	}
	// Free OpenCV's copy of the weights before oneDNN makes its own.
	e.net.Close()
	e.net = nil
	p := m.Preprocess
	d, err := buildDNNL(og.Graph, newDNNLWeights(og.Graph, mp), plan, 3, p.Height, p.Width, e.batch, e.cfg.Compute.Threads, e.cfg.Compute.Arith == "bf16")
	if err != nil {
		return false, fmt.Errorf("model %s: oneDNN engine: %w", m.Name, err)
	}
	e.dnnl = d
	e.engine = EngineOneDNN
	e.LoadTime = time.Since(start)
	e.names = nil
	e.sizes = nil
	for j, o := range e.outs {
		if d.sizes[j] != prod(o.Shape) {
			return false, fmt.Errorf("model %s: layer %s: oneDNN computes %d values per image, OpenCV's graph says %v", m.Name, o.Layer.Name, d.sizes[j], o.Shape)
		}
		e.sizes = append(e.sizes, d.sizes[j])
	}
	return true, nil
}

// layerTensor is the ONNX tensor that holds an OpenCV layer's output:
// OpenCV names a node's layer "onnx_node!<node name>" (or its first output
// for a node without a name); other layers are found by the names
// addONNXSources recorded.
func layerTensor(m *onnx.Model, l *Layer) (string, error) {
	name := strings.TrimPrefix(l.Name, "onnx_node!")
	if n := m.Graph.Node(name); n != nil && name != "" && len(n.Outputs) > 0 {
		return n.Outputs[0], nil
	}
	if m.Graph.Producer(name) != nil {
		return name, nil
	}
	for _, s := range l.Source {
		if m.Graph.Producer(s) != nil {
			return s, nil
		}
	}
	return "", fmt.Errorf("layer %s (%s) has no ONNX tensor of its own: %w", l.Name, l.Type, ErrUnsupportedOp)
}

// Engine is the engine the network runs on: EngineOneDNN or EngineOpenCV.
func (e *Extractor) Engine() string { return e.engine }

// Primitives lists the oneDNN primitives of the engine's plan ("op" or
// "reorder", a tab, oneDNN's implementation name), nil on OpenCV.
func (e *Extractor) Primitives() []string {
	if e.dnnl == nil {
		return nil
	}
	return e.dnnl.prims
}

// Threads is the number of threads the engine's forward pass uses.
func (e *Extractor) Threads() int {
	if e.dnnl != nil {
		return e.dnnl.threads()
	}
	return NumThreads()
}
