package extract

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "cvdnn.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// cerr turns an error string set by the C helper into a Go error.
func cerr(p *C.char) error {
	if p == nil {
		return errors.New("OpenCV failed without a message")
	}
	defer C.cvx_free(unsafe.Pointer(p))
	return errors.New(strings.TrimSpace(C.GoString(p)))
}

func gostr(p *C.char) string {
	if p == nil {
		return ""
	}
	defer C.cvx_free(unsafe.Pointer(p))
	return C.GoString(p)
}

// OpenCVVersion is the version of the OpenCV library linked in.
func OpenCVVersion() string { return gostr(C.cvx_version()) }

// BuildInformation is cv::getBuildInformation().
func BuildInformation() string { return gostr(C.cvx_build_information()) }

// SetNumThreads sets OpenCV's thread count (cv::setNumThreads); 0 means
// OpenCV's default (all cores).
func SetNumThreads(n int) {
	if n <= 0 {
		n = -1
	}
	C.cvx_set_num_threads(C.int(n))
}

// NumThreads is cv::getNumThreads().
func NumThreads() int { return int(C.cvx_get_num_threads()) }

// LogLevel values for SetLogLevel.
const (
	LogSilent = 0
	LogError  = 2
	LogWarn   = 3
	LogInfo   = 4
)

// SetLogLevel sets OpenCV's own log level (it writes to stderr).
func SetLogLevel(level int) { C.cvx_set_log_level(C.int(level)) }

var quietOnce sync.Once

// QuietOpenCV lowers OpenCV's logging to errors only, unless OPENCV_LOG_LEVEL
// is set by the user. Called once before the first model is read.
func QuietOpenCV() {
	quietOnce.Do(func() {
		if !envSet("OPENCV_LOG_LEVEL") {
			SetLogLevel(LogError)
		}
	})
}

// Net is a cv::dnn::Net owned by Go. It is not safe for concurrent use.
type Net struct {
	p     C.CvxNet
	input string // name of the input blob, "" for the only one
}

// ReadNet reads a network: framework is "onnx", "caffe" or "tensorflow";
// config is the Caffe prototxt or the optional TensorFlow .pbtxt.
func ReadNet(framework, model, config string) (*Net, error) {
	QuietOpenCV()
	cf := C.CString(framework)
	cm := C.CString(model)
	cc := C.CString(config)
	defer C.free(unsafe.Pointer(cf))
	defer C.free(unsafe.Pointer(cm))
	defer C.free(unsafe.Pointer(cc))
	var e *C.char
	p := C.cvx_read_net(cf, cm, cc, &e)
	if p == nil {
		return nil, cerr(e)
	}
	n := &Net{p: p}
	runtime.SetFinalizer(n, (*Net).Close)
	return n, nil
}

// Close frees the network. It is safe to call more than once.
func (n *Net) Close() error {
	if n != nil && n.p != nil {
		C.cvx_net_close(n.p)
		n.p = nil
		runtime.SetFinalizer(n, nil)
	}
	return nil
}

// SetInputName names the blob Forward feeds ("" for a single-input net).
func (n *Net) SetInputName(name string) { n.input = name }

// setBackend sets OpenCV's preferable backend and target (raw enum values).
func (n *Net) setBackend(backend, target int) error {
	var e *C.char
	if C.cvx_net_set_backend(n.p, C.int(backend), C.int(target), &e) != 0 {
		return cerr(e)
	}
	return nil
}

// EnableFusion turns OpenCV's layer fusion on or off (on by default).
func (n *Net) EnableFusion(on bool) {
	v := 0
	if on {
		v = 1
	}
	C.cvx_net_enable_fusion(n.p, C.int(v))
}

// rawLayer is one line of cvx_net_describe.
type rawLayer struct {
	ID     int
	Name   string
	Type   string
	Inputs []int
	Shapes [][]int // output shapes, batch dimension included
	Info   string  // pooling kind ("max", "ave", with ",global")
}

func (n *Net) describe(shape [4]int) ([]rawLayer, error) {
	ci := C.CString(n.input)
	defer C.free(unsafe.Pointer(ci))
	cs := [4]C.int{C.int(shape[0]), C.int(shape[1]), C.int(shape[2]), C.int(shape[3])}
	var e *C.char
	p := C.cvx_net_describe(n.p, ci, &cs[0], &e)
	if p == nil {
		return nil, cerr(e)
	}
	text := gostr(p)
	var out []rawLayer
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			return nil, fmt.Errorf("describe: bad line %q", line)
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("describe: bad id in %q", line)
		}
		l := rawLayer{ID: id, Name: f[1], Type: f[2], Info: f[5]}
		for _, s := range strings.Split(f[3], ",") {
			if s == "" {
				continue
			}
			v, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("describe: bad input in %q", line)
			}
			l.Inputs = append(l.Inputs, v)
		}
		for _, s := range strings.Fields(f[4]) {
			var dims []int
			for _, d := range strings.Split(s, "x") {
				v, err := strconv.Atoi(d)
				if err != nil {
					return nil, fmt.Errorf("describe: bad shape in %q", line)
				}
				dims = append(dims, v)
			}
			l.Shapes = append(l.Shapes, dims)
		}
		out = append(out, l)
	}
	return out, nil
}

// Forward runs the network on in (shape[0] images, NCHW float32) and copies
// the outputs of the named layers into dst, one after another; sizes gives the
// number of floats each output must have. It returns the shape of each output.
func (n *Net) Forward(in []float32, shape [4]int, outs []string, sizes []int, dst []float32) ([][]int, error) {
	if len(in) != shape[0]*shape[1]*shape[2]*shape[3] {
		return nil, fmt.Errorf("forward: input holds %d values, shape %v wants %d", len(in), shape, shape[0]*shape[1]*shape[2]*shape[3])
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	if len(outs) == 0 || len(sizes) != len(outs) || len(dst) < total {
		return nil, fmt.Errorf("forward: %d outputs, %d sizes, %d of %d destination values", len(outs), len(sizes), len(dst), total)
	}
	ci := C.CString(n.input)
	defer C.free(unsafe.Pointer(ci))
	cnames := make([]*C.char, len(outs))
	for i, o := range outs {
		cnames[i] = C.CString(o)
	}
	defer func() {
		for _, c := range cnames {
			C.free(unsafe.Pointer(c))
		}
	}()
	// The name array must live in C memory: it holds C pointers only, but
	// cgo forbids passing Go memory that contains pointers.
	carr := (**C.char)(C.malloc(C.size_t(len(outs)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(carr))
	copy(unsafe.Slice(carr, len(outs)), cnames)
	cs := [4]C.int{C.int(shape[0]), C.int(shape[1]), C.int(shape[2]), C.int(shape[3])}
	csizes := make([]C.long, len(sizes))
	for i, s := range sizes {
		csizes[i] = C.long(s)
	}
	shapes := make([]C.int, 8*len(outs))
	var e *C.char
	rc := C.cvx_net_forward(n.p, ci, (*C.float)(unsafe.Pointer(&in[0])), &cs[0], carr, C.int(len(outs)),
		(*C.float)(unsafe.Pointer(&dst[0])), &csizes[0], &shapes[0], &e)
	runtime.KeepAlive(in)
	runtime.KeepAlive(dst)
	if rc != 0 {
		return nil, cerr(e)
	}
	res := make([][]int, len(outs))
	for i := range outs {
		for d := 0; d < 8; d++ {
			if v := int(shapes[8*i+d]); v > 0 {
				res[i] = append(res[i], v)
			}
		}
	}
	return res, nil
}
