package extract

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"pipeline/errclass"
)

/*
#include "cvdnn.h"
*/
import "C"

// ErrBackendUnavailable is returned (wrapped) when the OpenCV build cannot
// run the requested backend or target: OpenCV itself would silently fall back
// to the CPU, and we never do.
var ErrBackendUnavailable = errclass.New(errclass.Usage, "backend not available")

// OpenCV's cv::dnn::Backend and cv::dnn::Target values.
var (
	cvBackendNames = map[int]string{0: "default", 1: "halide", 2: "inference-engine", 3: "opencv", 4: "vulkan", 5: "cuda", 6: "webnn", 7: "timvx"}
	cvTargetNames  = map[int]string{0: "cpu", 1: "opencl", 2: "opencl-fp16", 3: "myriad", 4: "vulkan", 5: "fpga", 6: "cuda", 7: "cuda-fp16", 8: "hddl", 9: "npu"}
)

const (
	cvBackendOpenCV = 3
	cvBackendCUDA   = 5
	cvTargetCPU     = 0
	cvTargetOpenCL  = 1
	cvTargetOCL16   = 2
	cvTargetCUDA    = 6
	cvTargetCUDA16  = 7
)

// BackendTarget is one (backend, target) pair OpenCV reports as available.
type BackendTarget struct {
	Backend, Target int
}

func (bt BackendTarget) String() string {
	return cvBackendNames[bt.Backend] + "/" + cvTargetNames[bt.Target]
}

// AvailableBackends is cv::dnn::getAvailableBackends(). OpenCV computes it
// once per process, so call ConfigureOpenCL first when OpenCL is wanted.
func AvailableBackends() []BackendTarget {
	text := gostr(C.cvx_available())
	var out []BackendTarget
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		a, b, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		x, err1 := strconv.Atoi(a)
		y, err2 := strconv.Atoi(b)
		if err1 == nil && err2 == nil {
			out = append(out, BackendTarget{x, y})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Backend != out[j].Backend {
			return out[i].Backend < out[j].Backend
		}
		return out[i].Target < out[j].Target
	})
	return out
}

// OpenCLDevice is one device of an OpenCL platform.
type OpenCLDevice struct {
	Platform, Name, Type string // Type: cpu, gpu, accelerator, other
}

// OpenCLDevices lists the OpenCL devices OpenCV can see (none when OpenCV was
// built without OpenCL or no ICD is installed). It does not create an OpenCL
// context, so the OpenCL environment variables can still be set after it.
func OpenCLDevices() ([]OpenCLDevice, error) {
	var e *C.char
	p := C.cvx_opencl_devices(&e)
	if p == nil {
		return nil, cerr(e)
	}
	var out []OpenCLDevice
	for _, line := range strings.Split(strings.TrimSpace(gostr(p)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 3 {
			out = append(out, OpenCLDevice{Platform: f[0], Name: f[1], Type: f[2]})
		}
	}
	return out, nil
}

// Compute is what the user asked for: --backend, --target, --threads.
type Compute struct {
	Backend string // cpu (default), opencl, cuda
	Target  string // fp32 (default), fp16
	Threads int    // OpenCV's or oneDNN's threads; 0 = the library's default (all cores)
	// Engine is auto (""), onednn or opencv: see NewExtractor.
	Engine string
	// Arith is --precision: fp32 ("") or bf16 (oneDNN only).
	Arith string
}

// Precision is the feature-set precision this compute setting gives.
func (c Compute) Precision() string {
	if c.Target == "fp16" {
		return "fp16"
	}
	if c.Arith == "bf16" {
		return "bf16"
	}
	return "fp32"
}

// ConfigureOpenCL prepares the process for --backend opencl. OpenCV's DNN
// module only uses OpenCL GPUs unless OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES=1,
// and OpenCV picks the default device unless OPENCV_OPENCL_DEVICE says
// otherwise; on a machine whose only OpenCL device is a CPU (pocl), both must
// be set or OpenCV silently runs on its plain CPU path. It sets them when
// needed (before OpenCV's first use of OpenCL) and returns a note saying so.
func ConfigureOpenCL() (note string, err error) {
	devs, err := OpenCLDevices()
	if err != nil {
		return "", fmt.Errorf("%w: opencl: %v", ErrBackendUnavailable, err)
	}
	if len(devs) == 0 {
		return "", fmt.Errorf("%w: opencl: no OpenCL device found (on Debian/Ubuntu, install pocl-opencl-icd for a CPU device, or your GPU's OpenCL driver)", ErrBackendUnavailable)
	}
	hasGPU := false
	var cpu *OpenCLDevice
	for i, d := range devs {
		switch d.Type {
		case "gpu", "accelerator":
			hasGPU = true
		case "cpu":
			if cpu == nil {
				cpu = &devs[i]
			}
		}
	}
	if hasGPU || cpu == nil {
		return "", nil
	}
	var set []string
	if !envSet("OPENCV_OPENCL_DEVICE") {
		os.Setenv("OPENCV_OPENCL_DEVICE", ":CPU:")
		set = append(set, "OPENCV_OPENCL_DEVICE=:CPU:")
	}
	if !envSet("OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES") {
		os.Setenv("OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES", "1")
		set = append(set, "OPENCV_DNN_OPENCL_ALLOW_ALL_DEVICES=1")
	}
	if len(set) == 0 {
		return "", nil
	}
	return fmt.Sprintf("opencl: the only OpenCL device is a CPU (%s, %s); set %s for this run so that OpenCV uses it",
		cpu.Name, cpu.Platform, strings.Join(set, " ")), nil
}

// resolveCompute maps --backend/--target to OpenCV enums, checking that the
// pair is really available in this build.
func resolveCompute(c Compute) (backend, target int, err error) {
	b := strings.ToLower(c.Backend)
	t := strings.ToLower(c.Target)
	if b == "" {
		b = "cpu"
	}
	if t == "" {
		t = "fp32"
	}
	if t != "fp32" && t != "fp16" {
		return 0, 0, errclass.Errorf(errclass.Usage, "target %q: want fp32 or fp16", c.Target)
	}
	switch b {
	case "cpu":
		if t == "fp16" {
			return 0, 0, fmt.Errorf("%w: target fp16 needs the opencl or cuda backend; OpenCV's CPU backend computes in fp32 only", ErrBackendUnavailable)
		}
		backend, target = cvBackendOpenCV, cvTargetCPU
	case "opencl":
		backend, target = cvBackendOpenCV, cvTargetOpenCL
		if t == "fp16" {
			target = cvTargetOCL16
		}
	case "cuda":
		backend, target = cvBackendCUDA, cvTargetCUDA
		if t == "fp16" {
			target = cvTargetCUDA16
		}
	default:
		return 0, 0, errclass.Errorf(errclass.Usage, "backend %q: want cpu, opencl or cuda", c.Backend)
	}
	avail := AvailableBackends()
	for _, a := range avail {
		if a.Backend == backend && a.Target == target {
			return backend, target, nil
		}
	}
	var names []string
	for _, a := range avail {
		names = append(names, describeBT(a))
	}
	return 0, 0, fmt.Errorf("%w: backend %s with target %s is not available in this OpenCV build (%s); available: %s",
		ErrBackendUnavailable, b, t, OpenCVVersion(), strings.Join(names, ", "))
}

// describeBT names a backend/target pair in the CLI's terms.
func describeBT(a BackendTarget) string {
	switch {
	case a.Backend == cvBackendOpenCV && a.Target == cvTargetCPU:
		return "cpu/fp32"
	case a.Backend == cvBackendOpenCV && a.Target == cvTargetOpenCL:
		return "opencl/fp32"
	case a.Backend == cvBackendOpenCV && a.Target == cvTargetOCL16:
		return "opencl/fp16"
	case a.Backend == cvBackendCUDA && a.Target == cvTargetCUDA:
		return "cuda/fp32"
	case a.Backend == cvBackendCUDA && a.Target == cvTargetCUDA16:
		return "cuda/fp16"
	}
	return a.String()
}

// DescribeAvailable lists the available pairs in the CLI's terms ("cpu/fp32").
func DescribeAvailable() []string {
	var out []string
	for _, a := range AvailableBackends() {
		out = append(out, describeBT(a))
	}
	return out
}
