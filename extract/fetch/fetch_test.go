package fetch

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// payload returns n random bytes and their hex SHA-256, computed here with
// crypto/sha256 directly (not through the package's own hashing).
func payload(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// request is what a test server saw.
type request struct {
	Range string
	Sent  int64 // body bytes written
}

// server is an httptest server whose handler the test chooses; it records
// every request and how many body bytes it sent.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int) int64) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		i := len(s.reqs)
		s.reqs = append(s.reqs, request{Range: r.Header.Get("Range")})
		s.mu.Unlock()
		sent := h(w, r, i)
		s.mu.Lock()
		s.reqs[i].Sent = sent
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// serveRange answers like a correct static file server: 206 for "bytes=N-",
// 200 otherwise.
func serveRange(w http.ResponseWriter, r *http.Request, data []byte) int64 {
	off := int64(0)
	if rg := r.Header.Get("Range"); rg != "" {
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
		if err != nil || v >= int64(len(data)) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return 0
		}
		off = v
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(data)-1, len(data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)-int(off)))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	}
	n, _ := w.Write(data[off:])
	return int64(n)
}

// serveAndDrop sends the headers of the whole answer but only the first
// drop bytes of the body, then cuts the connection.
func serveAndDrop(w http.ResponseWriter, r *http.Request, data []byte, drop int) int64 {
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data[:drop])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler) // net/http closes the connection without finishing the body
}

func quiet() Options { return Options{Backoff: time.Millisecond} }

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs from the payload (%d bytes, want %d)", path, len(got), len(want))
	}
}

func checkAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: want no such file, stat says %v", path, err)
	}
}

func TestFetch(t *testing.T) {
	const size = 3 << 20
	data, sum := payload(t, size)
	ctx := context.Background()

	t.Run("Full", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { return serveRange(w, r, data) })
		dir := t.TempDir()
		got, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL + "/m.onnx"}}, dir, quiet())
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, "m.onnx"); got != want {
			t.Fatalf("path = %s, want %s", got, want)
		}
		checkFile(t, got, data)
		checkAbsent(t, got+".partial")
		if reqs := srv.requests(); len(reqs) != 1 || reqs[0].Range != "" || reqs[0].Sent != size {
			t.Fatalf("requests = %+v, want one without Range sending %d bytes", reqs, size)
		}
	})

	t.Run("Resume", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { return serveRange(w, r, data) })
		dir := t.TempDir()
		const have = 1<<20 + 123
		if err := os.WriteFile(filepath.Join(dir, "m.onnx.partial"), data[:have], 0o644); err != nil {
			t.Fatal(err)
		}
		path, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}, dir, quiet())
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data)
		reqs := srv.requests()
		if len(reqs) != 1 {
			t.Fatalf("requests = %+v, want 1", reqs)
		}
		if want := fmt.Sprintf("bytes=%d-", have); reqs[0].Range != want {
			t.Errorf("Range = %q, want %q", reqs[0].Range, want)
		}
		if want := int64(size - have); reqs[0].Sent != want {
			t.Errorf("server sent %d bytes, want only the missing %d", reqs[0].Sent, want)
		}
	})

	t.Run("ResumeThroughRedirect", func(t *testing.T) {
		// Hugging Face answers resolve/main/... with a redirect to its CDN:
		// the Range header must survive it.
		cdn := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { return serveRange(w, r, data) })
		front := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 {
			http.Redirect(w, r, cdn.URL+"/blob", http.StatusFound)
			return 0
		})
		dir := t.TempDir()
		const have = 777
		if err := os.WriteFile(filepath.Join(dir, "m.onnx.partial"), data[:have], 0o644); err != nil {
			t.Fatal(err)
		}
		path, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{front.URL + "/resolve/main/m.onnx"}}, dir, quiet())
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data)
		if reqs := cdn.requests(); len(reqs) != 1 || reqs[0].Range != "bytes=777-" || reqs[0].Sent != size-have {
			t.Fatalf("CDN requests = %+v, want one for bytes=777-", reqs)
		}
	})

	t.Run("ServerIgnoresRange", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			n, _ := w.Write(data)
			return int64(n)
		})
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "m.onnx.partial"), data[:1<<20], 0o644); err != nil {
			t.Fatal(err)
		}
		path, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}, dir, quiet())
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data)
		if reqs := srv.requests(); len(reqs) != 1 || reqs[0].Range == "" {
			t.Fatalf("requests = %+v, want one with a Range header", reqs)
		}
	})

	t.Run("RangeNotSatisfiable", func(t *testing.T) {
		// A server that answers 416 to any range: start over from 0.
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 {
			if r.Header.Get("Range") != "" {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return 0
			}
			return serveRange(w, r, data)
		})
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "m.onnx.partial"), []byte("stale bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
		path, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}, dir, quiet())
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data)
		reqs := srv.requests()
		if len(reqs) != 2 || reqs[0].Range != "bytes=11-" || reqs[1].Range != "" {
			t.Fatalf("requests = %+v, want a Range request then a plain one", reqs)
		}
	})

	t.Run("PartialLargerThanFile", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { return serveRange(w, r, data) })
		dir := t.TempDir()
		big := append(append([]byte(nil), data...), "trailing junk"...)
		if err := os.WriteFile(filepath.Join(dir, "m.onnx.partial"), big, 0o644); err != nil {
			t.Fatal(err)
		}
		path, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}, dir, quiet())
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data)
		if reqs := srv.requests(); len(reqs) != 1 || reqs[0].Range != "" {
			t.Fatalf("requests = %+v, want one full download", reqs)
		}
	})

	t.Run("CompletePartialNeedsNoNetwork", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "m.onnx.partial"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		path, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{"http://127.0.0.1:1/unused"}}, dir, quiet())
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data)
	})

	t.Run("ErrMismatch", func(t *testing.T) {
		other, otherSum := payload(t, size) // same size, other content
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { return serveRange(w, r, other) })
		dir := t.TempDir()
		_, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}, dir, quiet())
		if !errors.Is(err, ErrMismatch) {
			t.Fatalf("err = %v, want ErrMismatch", err)
		}
		msg := err.Error()
		for _, want := range []string{sum, otherSum, strconv.Itoa(size), srv.URL} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
		}
		checkAbsent(t, filepath.Join(dir, "m.onnx.partial"))
		checkAbsent(t, filepath.Join(dir, "m.onnx"))
	})

	t.Run("WrongSize", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { return serveRange(w, r, data[:size-1]) })
		dir := t.TempDir()
		_, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}, dir, quiet())
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes, want %d", size-1, size)) {
			t.Fatalf("err = %v, want both sizes named", err)
		}
		checkAbsent(t, filepath.Join(dir, "m.onnx"))
	})

	t.Run("GitLFSPointer", func(t *testing.T) {
		pointer := "version https://git-lfs.github.com/spec/v1\noid sha256:" + sum + "\nsize " + strconv.Itoa(size) + "\n"
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 {
			n, _ := w.Write([]byte(pointer))
			return int64(n)
		})
		_, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}, t.TempDir(), quiet())
		if err == nil || !strings.Contains(err.Error(), "Git LFS pointer") {
			t.Fatalf("err = %v, want it to say the server sent a Git LFS pointer", err)
		}
	})

	t.Run("SecondMirror", func(t *testing.T) {
		missing := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { http.NotFound(w, r); return 0 })
		good := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { return serveRange(w, r, data) })
		var logs []string
		opts := quiet()
		opts.Logf = func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
		path, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{missing.URL + "/a", good.URL + "/b"}}, t.TempDir(), opts)
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data)
		if n := len(missing.requests()); n != 1 {
			t.Errorf("first mirror got %d requests, want 1", n)
		}
		if !strings.Contains(strings.Join(logs, "\n"), missing.URL+"/a: HTTP 404") {
			t.Errorf("logs %q do not report the 404 of the first mirror", logs)
		}
	})

	t.Run("DroppedConnectionResumes", func(t *testing.T) {
		const drop = 1 << 20
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, i int) int64 {
			if i == 0 {
				return serveAndDrop(w, r, data, drop)
			}
			return serveRange(w, r, data)
		})
		path, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}, t.TempDir(), quiet())
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data)
		reqs := srv.requests()
		if len(reqs) != 2 {
			t.Fatalf("requests = %+v, want 2", reqs)
		}
		start, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(reqs[1].Range, "bytes="), "-"), 10, 64)
		if err != nil || start <= 0 || start > drop {
			t.Fatalf("second request Range = %q, want bytes=N- with 0 < N <= %d", reqs[1].Range, drop)
		}
		if reqs[1].Sent != size-start {
			t.Errorf("second request sent %d bytes, want %d", reqs[1].Sent, size-start)
		}
	})

	t.Run("DroppedConnectionGivesUp", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, i int) int64 {
			off := 0
			if rg := r.Header.Get("Range"); rg != "" {
				off, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, size-1, size))
				w.Header().Set("Content-Length", strconv.Itoa(size-off))
				w.WriteHeader(http.StatusPartialContent)
			} else {
				w.Header().Set("Content-Length", strconv.Itoa(size))
			}
			w.Write(data[off : off+1000])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		})
		dir := t.TempDir()
		opts := quiet()
		opts.Retries = 2
		_, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}, dir, opts)
		if err == nil || !strings.Contains(err.Error(), "gave up after 2 retries") || !strings.Contains(err.Error(), srv.URL) {
			t.Fatalf("err = %v, want the URL and 'gave up after 2 retries'", err)
		}
		if n := len(srv.requests()); n != 3 {
			t.Errorf("%d requests, want 3 (one plus 2 retries)", n)
		}
		// What arrived is kept for the next run.
		if st, err := os.Stat(filepath.Join(dir, "m.onnx.partial")); err != nil || st.Size() == 0 {
			t.Errorf("partial file: %v, want it kept with the bytes received", err)
		}
	})

	t.Run("AllMirrorsFail", func(t *testing.T) {
		missing := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { http.NotFound(w, r); return 0 })
		broken := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return 0
		})
		gone := httptest.NewServer(http.NotFoundHandler())
		gone.Close() // nothing listens there any more
		urls := []string{missing.URL + "/x.onnx", broken.URL + "/x.onnx", gone.URL + "/x.onnx"}
		_, err := Fetch(ctx, Spec{Name: "x.onnx", Size: size, SHA256: sum, URLs: urls}, t.TempDir(), quiet())
		var fe *Error
		if !errors.As(err, &fe) {
			t.Fatalf("err = %v (%T), want *Error", err, err)
		}
		msg := err.Error()
		for _, want := range []string{
			"all 3 mirrors failed",
			urls[0] + ": HTTP 404 Not Found",
			urls[1] + ": HTTP 500 Internal Server Error",
			urls[2] + ": dial tcp",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not contain %q", msg, want)
			}
		}
	})

	t.Run("CancelKeepsPartial", func(t *testing.T) {
		const first = 1 << 20
		sentFirst := make(chan struct{})
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, i int) int64 {
			if i > 0 {
				return serveRange(w, r, data)
			}
			w.Header().Set("Content-Length", strconv.Itoa(size))
			n, _ := w.Write(data[:first])
			w.(http.Flusher).Flush()
			close(sentFirst)
			<-r.Context().Done() // hold the connection until the client gives up
			return int64(n)
		})
		dir := t.TempDir()
		partial := filepath.Join(dir, "m.onnx.partial")
		spec := Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			<-sentFirst
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if st, err := os.Stat(partial); err == nil && st.Size() == first {
					break
				}
			}
			cancel()
		}()
		_, err := Fetch(cctx, spec, dir, quiet())
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run again to resume") {
			t.Fatalf("err = %v, want context.Canceled with a hint to resume", err)
		}
		st, err := os.Stat(partial)
		if err != nil || st.Size() != first {
			t.Fatalf("partial after cancel: %v, size %d; want %d bytes kept", err, st.Size(), first)
		}
		path, err := Fetch(ctx, spec, dir, quiet())
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data)
		if reqs := srv.requests(); len(reqs) != 2 || reqs[1].Range != fmt.Sprintf("bytes=%d-", first) {
			t.Fatalf("requests = %+v, want the second to resume at %d", reqs, first)
		}
	})

	t.Run("Cached", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { return serveRange(w, r, data) })
		dir := t.TempDir()
		spec := Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}
		path, err := Fetch(ctx, spec, dir, quiet())
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// Same size and mtime, other content: the fast path trusts the
		// sidecar and does not read the file, which proves it is not hashed.
		other, _ := payload(t, size)
		if err := os.WriteFile(path, other, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
		if _, err := Fetch(ctx, spec, dir, quiet()); err != nil {
			t.Fatal(err)
		}
		if n := len(srv.requests()); n != 1 {
			t.Fatalf("%d requests after the cached call, want 1", n)
		}
		checkFile(t, path, other)
		// A new mtime voids the fast path: the file is hashed, found wrong,
		// and downloaded again.
		later := st.ModTime().Add(time.Hour)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
		if _, err := Fetch(ctx, spec, dir, quiet()); err != nil {
			t.Fatal(err)
		}
		if n := len(srv.requests()); n != 2 {
			t.Fatalf("%d requests after the file changed, want 2", n)
		}
		checkFile(t, path, data)
	})

	t.Run("Concurrent", func(t *testing.T) {
		release := make(chan struct{})
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 {
			<-release // hold the first download until the other caller waits on the lock
			return serveRange(w, r, data)
		})
		dir := t.TempDir()
		spec := Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}
		var once sync.Once
		// Should the lock not work, nobody waits: release anyway, so that
		// the test fails on the request count instead of hanging.
		time.AfterFunc(5*time.Second, func() { once.Do(func() { close(release) }) })
		opts := quiet()
		opts.Logf = func(f string, a ...any) {
			if strings.Contains(fmt.Sprintf(f, a...), "being downloaded by another process") {
				once.Do(func() { close(release) })
			}
		}
		var wg sync.WaitGroup
		paths := make([]string, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				paths[i], errs[i] = Fetch(ctx, spec, dir, opts)
			}()
		}
		wg.Wait()
		for i := range 2 {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			checkFile(t, paths[i], data)
		}
		if reqs := srv.requests(); len(reqs) != 1 {
			t.Fatalf("requests = %+v, want one: the second caller waits and finds the file", reqs)
		}
	})

	t.Run("Progress", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) int64 { return serveRange(w, r, data) })
		for _, tty := range []bool{false, true} {
			var out bytes.Buffer
			opts := quiet()
			opts.Progress, opts.IsTTY = &out, tty
			if _, err := Fetch(ctx, Spec{Name: "m.onnx", Size: size, SHA256: sum, URLs: []string{srv.URL}}, t.TempDir(), opts); err != nil {
				t.Fatal(err)
			}
			s := out.String()
			if tty {
				if !strings.Contains(s, "\r") || !strings.Contains(s, "100% 3.0/3.0 MiB") || !strings.HasSuffix(s, "\n") {
					t.Errorf("tty progress %q: want redrawn lines ending at 100%% 3.0/3.0 MiB and a newline", s)
				}
				continue
			}
			if strings.Contains(s, "\r") {
				t.Errorf("plain progress %q contains a carriage return", s)
			}
			lines := strings.Split(strings.TrimSpace(s), "\n")
			if len(lines) < 2 || len(lines) > 12 || !strings.Contains(lines[len(lines)-1], "100% (3.0 MiB)") {
				t.Errorf("plain progress has %d lines %q; want at most one per 10%% and a last line at 100%%", len(lines), lines)
			}
		}
	})

	t.Run("BadSpec", func(t *testing.T) {
		for _, spec := range []Spec{
			{Name: "../m.onnx", Size: 1, SHA256: sum, URLs: []string{"http://x"}},
			{Name: "m.onnx", Size: 0, SHA256: sum, URLs: []string{"http://x"}},
			{Name: "m.onnx", Size: 1, SHA256: "abc", URLs: []string{"http://x"}},
			{Name: "m.onnx", Size: 1, SHA256: sum},
		} {
			if _, err := Fetch(ctx, spec, t.TempDir(), quiet()); err == nil {
				t.Errorf("Fetch(%+v) succeeded, want an error", spec)
			}
		}
	})
}

func TestVerifyFile(t *testing.T) {
	data, sum := payload(t, 1<<20)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		if err := VerifyFile(path, int64(len(data)), strings.ToUpper(sum)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrMismatch", func(t *testing.T) {
		_, wrong := payload(t, 10)
		err := VerifyFile(path, 999, wrong)
		var me *MismatchError
		if !errors.As(err, &me) || !errors.Is(err, ErrMismatch) {
			t.Fatalf("err = %v, want *MismatchError", err)
		}
		for _, want := range []string{path, wrong, sum, "999 bytes", fmt.Sprintf("%d bytes", len(data))} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	})
	t.Run("Missing", func(t *testing.T) {
		if err := VerifyFile(path+".nope", 1, sum); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestHashFile(t *testing.T) {
	data, sum := payload(t, 3<<20+7)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, n, err := HashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != sum || n != int64(len(data)) {
		t.Fatalf("HashFile = %s, %d; want %s, %d", got, n, sum, len(data))
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/1000", 100, 1000, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */1000", -1, 1000, true},
		{"bytes 1-2", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes x-2/3", 0, 0, false},
	} {
		start, total, err := parseContentRange(c.in)
		if (err == nil) != c.ok || (c.ok && (start != c.start || total != c.total)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, ok=%v", c.in, start, total, err, c.start, c.total, c.ok)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.json")
	for _, content := range []string{"first", "second, longer"} {
		if err := WriteFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("content = %q, %v; want %q", got, err, content)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v; want 0600", st.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the file (no temporaries left)", len(ents))
	}
}

// BenchmarkFetch downloads a 64 MiB file from a local server: the cost of
// the download path itself (copy, fsync, hash, rename), not of a network.
func BenchmarkFetch(b *testing.B) {
	data := make([]byte, 64<<20)
	rand.Read(data)
	s := sha256.Sum256(data)
	sum := hex.EncodeToString(s[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveRange(w, r, data) }))
	defer srv.Close()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dir := b.TempDir()
		if _, err := Fetch(context.Background(), Spec{Name: "m", Size: int64(len(data)), SHA256: sum, URLs: []string{srv.URL}}, dir, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached compares the sidecar fast path with a full hash of
// the same 64 MiB file.
func BenchmarkVerifyCached(b *testing.B) {
	data := make([]byte, 64<<20)
	rand.Read(data)
	s := sha256.Sum256(data)
	sum := hex.EncodeToString(s[:])
	path := filepath.Join(b.TempDir(), "m")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("FastPath", func(b *testing.B) {
		if err := VerifyCached(path, int64(len(data)), sum); err != nil { // writes the sidecar
			b.Fatal(err)
		}
		for b.Loop() {
			if err := VerifyCached(path, int64(len(data)), sum); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("FullHash", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := VerifyFile(path, int64(len(data)), sum); err != nil {
				b.Fatal(err)
			}
		}
	})
}
