package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Measured is what every measurement records about its process and the
// machine around it.
type Measured struct {
	Command    string  `json:"command"`
	WallSec    float64 `json:"process_wall_seconds"`
	PeakRSSKiB int64   `json:"peak_rss_kib"` // ru_maxrss of the child (what GNU time -v prints)
	// RSSByTenth is the largest VmRSS sampled (every 100 ms) in each tenth
	// of the process's life: loading, then the steady state. A peak made
	// while loading the model does not say anything about the dataset.
	RSSByTenth []int64 `json:"rss_kib_by_tenth,omitempty"`
	LoadBefore string  `json:"loadavg_before"`
	LoadAfter  string  `json:"loadavg_after"`
	Log        string  `json:"log,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// runner starts the measured processes one at a time, teeing their
// stderr to the terminal and to a log file per process.
type runner struct {
	root   string // repository root: the working directory of every child
	logDir string
	stderr io.Writer
	seq    int
	env    []string
}

// run starts name with args and returns its stdout. A non-zero exit is an
// error, but the stdout and the measurements are still returned.
func (r *runner) run(tag string, name string, args ...string) ([]byte, Measured, error) {
	r.seq++
	logPath := filepath.Join(r.logDir, fmt.Sprintf("%02d-%s.log", r.seq, tag))
	// Commands are shown relative to the repository root, where they run.
	shown := []string{relTo(r.root, name)}
	for _, a := range args {
		shown = append(shown, relTo(r.root, a))
	}
	m := Measured{Command: shellJoin(shown), Log: relTo(r.root, logPath)}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, m, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "$ %s\n", m.Command)
	fmt.Fprintf(r.stderr, "\n$ %s\n", m.Command)
	cmd := exec.Command(name, args...)
	cmd.Dir = r.root
	cmd.Env = append(os.Environ(), r.env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = io.MultiWriter(r.stderr, logf)
	m.LoadBefore = loadAvg()
	t0 := time.Now()
	if err = cmd.Start(); err == nil {
		done := make(chan struct{})
		samples := make(chan []rssSample)
		go sampleRSS(cmd.Process.Pid, t0, done, samples)
		err = cmd.Wait()
		close(done)
		m.WallSec = time.Since(t0).Seconds()
		m.RSSByTenth = byTenth(<-samples, m.WallSec)
	}
	m.LoadAfter = loadAvg()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			m.PeakRSSKiB = ru.Maxrss
		}
	}
	fmt.Fprintf(logf, "--- stdout\n%s", out.Bytes())
	if err != nil {
		err = fmt.Errorf("%s: %w (log: %s)", filepath.Base(name), err, m.Log)
		m.Error = err.Error()
	}
	return out.Bytes(), m, err
}

type rssSample struct {
	t   float64 // seconds since start
	kib int64
}

// sampleRSS reads the process's VmRSS every 100 ms until done.
func sampleRSS(pid int, t0 time.Time, done <-chan struct{}, out chan<- []rssSample) {
	var s []rssSample
	path := fmt.Sprintf("/proc/%d/status", pid)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			if kib := statusKiB(b, "VmRSS"); kib > 0 {
				s = append(s, rssSample{time.Since(t0).Seconds(), kib})
			}
		}
		select {
		case <-done:
			out <- s
			return
		case <-tick.C:
		}
	}
}

// byTenth is the largest sample in each tenth of wall seconds (0 where a
// tenth has no sample).
func byTenth(s []rssSample, wall float64) []int64 {
	if len(s) == 0 || wall <= 0 {
		return nil
	}
	out := make([]int64, 10)
	for _, x := range s {
		i := min(9, max(0, int(10*x.t/wall)))
		out[i] = max(out[i], x.kib)
	}
	return out
}

// loadAvg is the 1, 5 and 15 minute load average: on a shared machine it
// says how much of the CPU the measurement really had.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./,=:+@%", r))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// relTo shows an absolute path under base relative to it; anything else
// is returned as is.
func relTo(base, path string) string {
	if !filepath.IsAbs(path) {
		return path
	}
	if r, err := filepath.Rel(base, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// median of the values (the mean of the two middle ones for an even count).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
