package main

import (
	"bufio"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
)

// nativeCapture takes over file descriptors 1 and 2 for the whole run, so
// that what C libraries write there (OpenCV's and pocl's OpenCL build logs,
// libpng warnings) never lands in stdout's results and, with --log-format
// json, becomes JSON lines like every other stderr line. Go's own output
// goes to duplicates of the original descriptors.
type nativeCapture struct {
	saved []int // original fds 1 and 2, dup'ed
	pipes []*os.File
	wg    sync.WaitGroup
}

// captureNative redirects fd 1 always and fd 2 when jsonLog; e's writers
// and logger move to the originals. Only for the real process (stdout and
// stderr are fds 1 and 2); a no-op otherwise.
func (e *env) captureNative(jsonLog bool) *nativeCapture {
	so, ok1 := e.stdout.(*os.File)
	se, ok2 := e.stderr.(*os.File)
	if !ok1 || !ok2 || so.Fd() != 1 || se.Fd() != 2 {
		return nil
	}
	c := &nativeCapture{}
	realOut, err := syscall.Dup(1)
	if err != nil {
		return nil
	}
	realErr, err := syscall.Dup(2)
	if err != nil {
		syscall.Close(realOut)
		return nil
	}
	c.saved = []int{realOut, realErr}
	outF, errF := os.NewFile(uintptr(realOut), "stdout"), os.NewFile(uintptr(realErr), "stderr")
	e.stdout, e.stderr = outF, errF
	e.log = slog.New(slog.NewTextHandler(errF, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if jsonLog {
		e.log = slog.New(slog.NewJSONHandler(errF, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	native := slog.New(slog.NewJSONHandler(errF, &slog.HandlerOptions{Level: slog.LevelInfo}))
	fds := []int{1}
	if jsonLog {
		fds = append(fds, 2)
	}
	for _, fd := range fds {
		r, w, err := os.Pipe()
		if err != nil {
			continue
		}
		if err := syscall.Dup3(int(w.Fd()), fd, 0); err != nil {
			r.Close()
			w.Close()
			continue
		}
		w.Close() // fd now holds the write end
		c.pipes = append(c.pipes, r)
		c.wg.Add(1)
		go func(fd int, r io.Reader) {
			defer c.wg.Done()
			src := map[int]string{1: "native stdout", 2: "native stderr"}[fd]
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64*1024), 1<<20)
			for sc.Scan() {
				line := strings.TrimRight(sc.Text(), "\r")
				if strings.TrimSpace(line) == "" {
					continue
				}
				if jsonLog {
					native.Warn(line, "source", src)
				} else {
					io.WriteString(errF, line+"\n")
				}
			}
		}(fd, r)
	}
	return c
}

// restore puts fds 1 and 2 back and waits until every captured line is out.
func (c *nativeCapture) restore() {
	if c == nil {
		return
	}
	os.Stdout.Sync()
	for i, fd := range []int{1, 2} {
		syscall.Dup3(c.saved[i], fd, 0) // closes the pipe's write end held at fd
	}
	c.wg.Wait()
	for _, p := range c.pipes {
		p.Close()
	}
}

// jsonLogRequested reports whether the command line asks for
// --log-format json (read before the command parses its flags, because
// fd 2 must be taken over before anything native runs).
func jsonLogRequested(args []string) bool {
	for i, a := range args {
		if a == "--" {
			return false
		}
		switch {
		case a == "--log-format=json" || a == "-log-format=json":
			return true
		case (a == "--log-format" || a == "-log-format") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}
