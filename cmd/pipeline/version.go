package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"pipeline/extract"
	"pipeline/store"
)

// version and revision are set at build time by scripts/build.sh:
// -ldflags "-X main.version=v1.2.3 -X main.revision=<commit>", so that a
// binary built with -buildvcs=false (or outside the git tree) still says
// what it is. Without them the Go build information is used.
var (
	version  = "dev"
	revision = ""
)

// toolVersion is the version plus the VCS revision the binary was built from.
func toolVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return describeVersion(version, revision, bi)
}

// describeVersion prefers what the build stamped (ldflags), then the
// module version and VCS settings Go records.
func describeVersion(v, rev string, bi *debug.BuildInfo) string {
	dirty := ""
	if bi != nil {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
	}
	if strings.HasSuffix(rev, "+dirty") {
		rev, dirty = strings.TrimSuffix(rev, "+dirty"), "+dirty"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " (" + rev + dirty + ")"
	}
	return v
}

type versionInfo struct {
	Pipeline   string   `json:"pipeline"`
	Go         string   `json:"go"`
	OpenCV     string   `json:"opencv"`
	Backends   []string `json:"backends"`       // backend/target pairs usable with --backend/--target
	OpenCL     []string `json:"opencl_devices"` // OpenCL devices OpenCV sees
	OpenCLNote string   `json:"opencl_note,omitempty"`
	CUDA       bool     `json:"cuda"`
	Threads    int      `json:"threads"`
	Parallel   string   `json:"parallel_framework"` // from cv::getBuildInformation
	OneDNN     string   `json:"onednn"`             // version (threading runtime)
	OneDNNISA  string   `json:"onednn_isa"`         // instruction set oneDNN dispatches to
	BF16       bool     `json:"bf16"`               // --precision bf16 available
	SQLite     string   `json:"sqlite,omitempty"`
	SQLiteVec  string   `json:"sqlite_vec,omitempty"`
}

func cmdVersion(e *env, args []string) error {
	fs := newFlags(e, "version", "version [flags]")
	asJSON := fs.Bool("json", false, "print JSON")
	build := fs.Bool("build", false, "also print OpenCV's full build information")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	v := versionInfo{Pipeline: toolVersion(), Go: runtime.Version(), OpenCV: extract.OpenCVVersion(), Threads: extract.NumThreads(), OpenCL: []string{}}
	if devs, err := extract.OpenCLDevices(); err == nil {
		for _, d := range devs {
			v.OpenCL = append(v.OpenCL, fmt.Sprintf("%s: %s (%s)", d.Platform, d.Name, d.Type))
		}
	}
	// Set up OpenCL the way `extract --backend opencl` would, so that the
	// list says what that flag can really use.
	if note, err := extract.ConfigureOpenCL(); err == nil {
		v.OpenCLNote = note
	}
	v.Backends = extract.DescribeAvailable()
	for _, b := range v.Backends {
		if strings.HasPrefix(b, "cuda/") {
			v.CUDA = true
		}
	}
	info := extract.BuildInformation()
	for _, line := range strings.Split(info, "\n") {
		if k, val, ok := strings.Cut(strings.TrimSpace(line), "Parallel framework:"); ok && k == "" {
			v.Parallel = strings.TrimSpace(val)
		}
	}
	v.OneDNN, v.OneDNNISA = extract.OneDNNVersion(), extract.OneDNNISA()
	v.BF16, _ = extract.BF16Available()
	v.SQLite, v.SQLiteVec, _ = store.Versions() // omitted when unknown
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := e.stdout
	fmt.Fprintf(w, "pipeline   %s\n", v.Pipeline)
	fmt.Fprintf(w, "go         %s\n", v.Go)
	fmt.Fprintf(w, "opencv     %s (parallel: %s, %d threads)\n", v.OpenCV, v.Parallel, v.Threads)
	bf16 := "no bf16"
	if v.BF16 {
		bf16 = "bf16 available"
	}
	fmt.Fprintf(w, "onednn     %s, %s, %s (--engine onednn)\n", v.OneDNN, v.OneDNNISA, bf16)
	fmt.Fprintf(w, "backends   %s\n", strings.Join(v.Backends, ", "))
	if !v.CUDA {
		fmt.Fprintf(w, "           cuda: not in this OpenCV build (--backend cuda fails rather than silently using the CPU)\n")
	}
	if len(v.OpenCL) == 0 {
		fmt.Fprintf(w, "opencl     no device (install pocl-opencl-icd for a CPU device, or a GPU driver)\n")
	}
	for _, d := range v.OpenCL {
		fmt.Fprintf(w, "opencl     %s\n", d)
	}
	if v.OpenCLNote != "" {
		fmt.Fprintf(w, "           %s\n", strings.Replace(v.OpenCLNote, "for this run", "when you ask for --backend opencl", 1))
	}
	if v.SQLite != "" {
		fmt.Fprintf(w, "sqlite     %s (sqlite-vec %s)\n", v.SQLite, v.SQLiteVec)
	}
	if *build {
		fmt.Fprintln(w)
		fmt.Fprint(w, info)
	}
	return nil
}
