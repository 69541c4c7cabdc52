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
	err = cmd.Run()
	m.WallSec = time.Since(t0).Seconds()
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
