package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pipeline/errclass"
	"pipeline/extract"
	"pipeline/pipeline"
)

// loadMemoryDefault bounds the address space of the process that test-loads
// a model for `models add` (PIPELINE_LOAD_MEMORY_MB overrides it).
const loadMemoryDefault = 16 << 10 // MiB

// checkModelLoads loads a model file with OpenCV in a child process before
// it is registered: a file the framework cannot load is refused (exit 2).
// The child can be abandoned: SIGTERM/Ctrl-C kills it at once (exit 130,
// however long a pathological graph takes to load), and its memory is
// limited (RLIMIT_AS), so a graph that wants too much is a clean error
// instead of a Go fatal error.
func checkModelLoads(e *env, file, config string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"models", "_load", "--file", file}
	if config != "" {
		args = append(args, "--config", config)
	}
	cmd := exec.CommandContext(e.ctx, exe, args...)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if e.ctx.Err() != nil {
		return fmt.Errorf("models add: loading %s: %w (nothing registered)", file, pipeline.ErrInterrupted)
	}
	if err == nil {
		return nil
	}
	msg := strings.TrimPrefix(strings.TrimSpace(out.String()), "pipeline: ")
	if i := strings.Index(msg, "\ngoroutine "); i > 0 {
		msg = msg[:i] // a Go runtime crash: its first lines say why
	}
	if strings.Contains(msg, "out of memory") || strings.Contains(msg, "Insufficient memory") || strings.Contains(msg, "bad_alloc") {
		return errclass.Errorf(errclass.Data, "models add: loading %s needs more than %d MiB (PIPELINE_LOAD_MEMORY_MB); nothing registered", file, loadMemory())
	}
	if msg == "" {
		msg = err.Error()
	}
	return errclass.Errorf(errclass.Usage, "models add: %s does not load with OpenCV: %s; nothing registered", file, msg)
}

func loadMemory() int64 {
	if v, err := strconv.ParseInt(os.Getenv("PIPELINE_LOAD_MEMORY_MB"), 10, 64); err == nil && v > 0 {
		return v
	}
	return loadMemoryDefault
}

// modelsLoad is the hidden child of checkModelLoads: limit memory, load,
// exit 0 or print the error.
func modelsLoad(e *env, args []string) error {
	fs := newFlags(e, "models _load", "models _load --file PATH [--config PATH]")
	file := fs.String("file", "", "model file")
	config := fs.String("config", "", "companion file")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	lim := uint64(loadMemory()) << 20
	syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim})
	m, err := extract.ResolveModel(extract.ModelSpec{Model: *file, Config: *config, Overrides: extract.Overrides{Preset: "torch"}})
	if err != nil {
		return err
	}
	net, _, err := extract.OpenNet(m)
	if err != nil {
		return err
	}
	net.Close()
	return nil
}
