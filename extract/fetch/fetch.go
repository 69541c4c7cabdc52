// Package fetch downloads large files, such as model weights, robustly.
//
// A file is identified by its size and SHA-256, never by its URL: any mirror
// may serve it, a download interrupted on one mirror resumes on the next, and
// nothing is used before it verifies. Downloads go to NAME.partial in the
// target directory and reach NAME only by an atomic rename, so a reader never
// sees a half-written file. An advisory lock (NAME.lock) keeps two processes
// pulling the same file from writing the same partial.
//
// The package is pure Go and has no dependency outside the standard library.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"pipeline/errclass"
)

// Spec describes one file to fetch.
type Spec struct {
	// Name is the file name inside the target directory (no separators).
	Name string
	// Size is the exact size in bytes.
	Size int64
	// SHA256 is the hex digest of the content (either case); it may be
	// empty when MD5 is set (an upstream that publishes only an MD5).
	SHA256 string
	// MD5 is checked too when set (Keras's get_file identities).
	MD5 string
	// URLs are mirrors, tried in order.
	URLs []string
}

// Options tune Fetch. The zero value is usable: silent, default client.
type Options struct {
	// Progress receives a progress display; nil means none.
	Progress io.Writer
	// IsTTY selects a redrawn progress bar; otherwise a plain line is
	// written every ~10% or 30 s (cron- and log-friendly).
	IsTTY bool
	// Client makes the requests; nil means a client with connect and
	// response-header timeouts but no overall timeout (files are large).
	Client *http.Client
	// Logf receives notes on what happened (mirror failures, resumes,
	// waits for another process); nil means silent.
	Logf func(format string, args ...any)
	// Retries bounds how often one mirror is retried, with a Range request,
	// after it dropped the connection mid-body: 0 means 5, negative means 0.
	Retries int
	// Backoff is the wait before the first such retry, doubled each time
	// (at most 30 s): 0 means 1 s.
	Backoff time.Duration
	// StallTimeout aborts an attempt that received no byte for this long;
	// it then counts as a dropped connection. 0 means 60 s.
	StallTimeout time.Duration
}

const (
	defaultRetries = 5
	defaultBackoff = time.Second
	maxBackoff     = 30 * time.Second
	defaultStall   = 60 * time.Second
	userAgent      = "pipeline-fetch/1"
)

// ErrMismatch is matched (errors.Is) by every *MismatchError.
var ErrMismatch = errclass.New(errclass.Fatal, "size or sha256 mismatch")

// MismatchError says that a file's content is not the expected one.
type MismatchError struct {
	Path                  string
	WantSize, GotSize     int64
	WantSHA256, GotSHA256 string
	WantMD5, GotMD5       string // set when an MD5 identity was checked
}

func (e *MismatchError) Error() string {
	if e.WantMD5 != "" && e.WantSHA256 == "" {
		size := ""
		if e.WantSize > 0 {
			size = fmt.Sprintf("%d bytes with ", e.WantSize)
		}
		return fmt.Sprintf("%s does not match: want %smd5 %s, got %d bytes with md5 %s",
			e.Path, size, e.WantMD5, e.GotSize, e.GotMD5)
	}
	return fmt.Sprintf("%s does not match: want %d bytes with sha256 %s, got %d bytes with sha256 %s",
		e.Path, e.WantSize, e.WantSHA256, e.GotSize, e.GotSHA256)
}

// Is makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// Unwrap gives the error ErrMismatch's class.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// Attempt is what went wrong with one mirror.
type Attempt struct {
	URL string
	Err error
}

// Error is returned when no mirror delivered the file; it lists every URL
// with its failure. errors.Is/As see through to each attempt's error.
type Error struct {
	Name     string
	Attempts []Attempt
}

func (e *Error) Error() string {
	var b strings.Builder
	if len(e.Attempts) == 1 {
		fmt.Fprintf(&b, "download %s from %s: %v", e.Name, e.Attempts[0].URL, e.Attempts[0].Err)
		return b.String()
	}
	fmt.Fprintf(&b, "download %s: all %d mirrors failed:", e.Name, len(e.Attempts))
	for _, a := range e.Attempts {
		fmt.Fprintf(&b, "\n  %s: %v", a.URL, a.Err)
	}
	return b.String()
}

// Unwrap returns the attempts' errors.
func (e *Error) Unwrap() []error {
	errs := make([]error, len(e.Attempts))
	for i, a := range e.Attempts {
		errs[i] = a.Err
	}
	return errs
}

// StatusError is an HTTP answer other than 200, 206 or 416.
type StatusError struct {
	Code   int
	Status string // e.g. "404 Not Found"
}

func (e *StatusError) Error() string { return "HTTP " + e.Status }

// Kinds of failure, which decide what happens next.
type (
	// transientError: worth retrying the same mirror once it has served.
	transientError struct{ err error }
	// localError: the disk, not the mirror; no other mirror will help.
	localError struct{ err error }
)

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }
func (e *localError) Error() string     { return e.err.Error() }
func (e *localError) Unwrap() error     { return e.err }

// errRestart: the server refused our Range (416); start over from byte 0.
var errRestart = errors.New("range not satisfiable")

var errStalled = errors.New("stalled")

// Fetch makes dir/NAME hold the file described by spec and returns its path.
// A file already there that verifies is returned at once (see VerifyCached);
// otherwise it is downloaded from the mirrors in order, resuming
// dir/NAME.partial when one exists, verified, and renamed into place.
// When every mirror fails the error is an *Error naming each URL. When ctx
// ends, the partial file is kept so that the next call resumes it.
func Fetch(ctx context.Context, spec Spec, dir string, opts Options) (string, error) {
	if err := spec.validate(); err != nil {
		return "", err
	}
	spec.SHA256, spec.MD5 = strings.ToLower(spec.SHA256), strings.ToLower(spec.MD5)
	final := filepath.Join(dir, spec.Name)
	if _, err := VerifyCachedID(final, spec.id()); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("download %s: %w", spec.Name, err)
	}
	d := newDownloader(spec, final, opts)
	unlock, err := Lock(ctx, final+".lock", func(holder string) {
		d.logf("%s is being downloaded by another process%s; waiting for it (lock %s)", spec.Name, holder, final+".lock")
	})
	if err != nil {
		return "", fmt.Errorf("download %s: %w", spec.Name, err)
	}
	defer unlock()

	// Whoever held the lock before us may have finished the job.
	switch _, err := VerifyCachedID(final, spec.id()); {
	case err == nil:
		return final, nil
	case errors.Is(err, ErrMismatch):
		d.logf("%v; downloading it again", err)
		if err := os.Remove(final); err != nil {
			return "", fmt.Errorf("download %s: %w", spec.Name, err)
		}
		os.Remove(final + sidecarExt)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("download %s: %w", spec.Name, err)
	}
	return d.run(ctx)
}

func (s Spec) validate() error {
	if s.Name == "" || s.Name == "." || s.Name == ".." || strings.ContainsAny(s.Name, `/\`) {
		return fmt.Errorf("download %q: the name must be a plain file name", s.Name)
	}
	if s.Size <= 0 { // the downloader resumes and checks servers by size
		return fmt.Errorf("download %s: size %d must be positive", s.Name, s.Size)
	}
	if s.MD5 == "" && !isSHA256(s.SHA256) {
		return fmt.Errorf("download %s: sha256 %q is not 64 hex digits", s.Name, s.SHA256)
	}
	if err := s.id().Validate(); err != nil {
		return fmt.Errorf("download %s: %w", s.Name, err)
	}
	if len(s.URLs) == 0 {
		return fmt.Errorf("download %s: no URL to download it from", s.Name)
	}
	return nil
}

func (s Spec) id() ID { return ID{Size: s.Size, SHA256: s.SHA256, MD5: s.MD5}.normal() }

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

type downloader struct {
	spec    Spec
	final   string
	partial string
	client  *http.Client
	logFn   func(string, ...any)
	retries int
	backoff time.Duration
	stall   time.Duration
	prog    *progress
}

func newDownloader(spec Spec, final string, o Options) *downloader {
	d := &downloader{spec: spec, final: final, partial: final + ".partial", client: o.Client, logFn: o.Logf,
		retries: o.Retries, backoff: o.Backoff, stall: o.StallTimeout}
	if d.client == nil {
		d.client = defaultClient()
	}
	switch {
	case d.retries == 0:
		d.retries = defaultRetries
	case d.retries < 0:
		d.retries = 0
	}
	if d.backoff <= 0 {
		d.backoff = defaultBackoff
	}
	if d.stall <= 0 {
		d.stall = defaultStall
	}
	if o.Progress != nil {
		d.prog = newProgress(o.Progress, o.IsTTY, spec.Name, spec.Size)
	}
	return d
}

func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: t}
}

func (d *downloader) logf(format string, args ...any) {
	if d.logFn == nil {
		return
	}
	d.prog.breakLine()
	d.logFn(format, args...)
}

// run downloads into the partial file, mirror after mirror, then verifies
// and renames it. The caller holds the lock.
func (d *downloader) run(ctx context.Context) (string, error) {
	// A partial left complete by an earlier run (stopped between the last
	// byte and the rename) needs no network.
	if st, err := os.Stat(d.partial); err == nil {
		switch {
		case st.Size() > d.spec.Size:
			d.logf("discarding %s: it holds %d bytes, more than the expected %d", d.partial, st.Size(), d.spec.Size)
			if err := os.Remove(d.partial); err != nil {
				return "", fmt.Errorf("download %s: %w", d.spec.Name, err)
			}
		case st.Size() == d.spec.Size:
			err := d.finish()
			if err == nil {
				return d.final, nil
			}
			if !errors.Is(err, ErrMismatch) {
				return "", fmt.Errorf("download %s: %w", d.spec.Name, err)
			}
			d.logf("discarded the complete but wrong partial file: %v", err)
		}
	}

	var attempts []Attempt
	for _, u := range d.spec.URLs {
		err := d.mirror(ctx, u)
		if err == nil {
			if err = d.finish(); err == nil {
				d.prog.finish()
				return d.final, nil
			}
		}
		if ctx.Err() != nil {
			d.prog.breakLine()
			return "", d.interrupted(ctx)
		}
		var le *localError
		if errors.As(err, &le) {
			d.prog.breakLine()
			return "", fmt.Errorf("download %s: %w", d.spec.Name, le.err)
		}
		err = plainError(err)
		attempts = append(attempts, Attempt{URL: u, Err: err})
		d.logf("%s: %v", u, err)
	}
	d.prog.breakLine()
	return "", &Error{Name: d.spec.Name, Attempts: attempts}
}

func (d *downloader) interrupted(ctx context.Context) error {
	have := int64(0)
	if st, err := os.Stat(d.partial); err == nil {
		have = st.Size()
	}
	if have == 0 {
		return fmt.Errorf("download %s: %w", d.spec.Name, context.Cause(ctx))
	}
	return fmt.Errorf("download %s interrupted at %d of %d bytes (kept in %s; run again to resume): %w",
		d.spec.Name, have, d.spec.Size, d.partial, context.Cause(ctx))
}

// plainError drops the kind wrappers and the "Get URL:" prefix of client
// errors: the URL is printed next to it already.
func plainError(err error) error {
	var te *transientError
	if errors.As(err, &te) {
		err = te.err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err
}

// mirror brings the partial file to full size from one URL. After the
// mirror has served once, a dropped connection is retried with a Range
// request, with backoff, at most d.retries times; before that, any failure
// moves on to the next mirror.
func (d *downloader) mirror(ctx context.Context, u string) error {
	retries, served, restarted := 0, false, false
	for {
		off, err := fileSize(d.partial)
		if err != nil {
			return &localError{err}
		}
		if off > d.spec.Size { // cannot happen through get, which stops at Size
			if err := os.Remove(d.partial); err != nil {
				return &localError{err}
			}
			off = 0
		}
		if off == d.spec.Size {
			return nil
		}
		if off > 0 {
			d.logf("resuming %s at byte %d of %d from %s", d.spec.Name, off, d.spec.Size, u)
		}
		err = d.get(ctx, u, off, &served)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errRestart) && !restarted:
			restarted = true
			d.logf("%s: range from byte %d not satisfiable; starting %s over", u, off, d.spec.Name)
			if err := os.Remove(d.partial); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return &localError{err}
			}
			continue
		}
		var te *transientError
		if !served || !errors.As(err, &te) {
			return err
		}
		if retries >= d.retries {
			return fmt.Errorf("%w (gave up after %d retries)", te.err, retries)
		}
		retries++
		wait := d.backoff
		for i := 1; i < retries && wait < maxBackoff; i++ {
			wait *= 2
		}
		wait = min(wait, maxBackoff)
		d.logf("%s: %v; retry %d of %d in %s", u, plainError(err), retries, d.retries, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// get makes one request for the bytes from off on and appends them to the
// partial file. served is set once the mirror answered with content.
func (d *downloader) get(ctx context.Context, u string, off int64, served *bool) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resp, err := d.request(actx, u, off)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if off, err = d.checkResponse(resp, u, off); err != nil {
		return err
	}
	*served = true

	f, err := d.openPartial(off)
	if err != nil {
		return err
	}
	d.prog.begin(off)

	want := d.spec.Size - off
	stall := time.AfterFunc(d.stall, func() { cancel(errStalled) })
	defer stall.Stop()
	buf := make([]byte, 256<<10)
	var written int64
	var rerr error
	var head []byte // the first bytes, to explain a tiny wrong answer
	for written < want {
		n, err := resp.Body.Read(buf[:min(int64(len(buf)), want-written)])
		if n > 0 {
			stall.Reset(d.stall)
			if off == 0 && len(head) < 512 {
				head = append(head, buf[:min(n, 512-len(head))]...)
			}
			if _, werr := f.Write(buf[:n]); werr != nil {
				f.Close()
				return &localError{werr}
			}
			written += int64(n)
			d.prog.add(int64(n))
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if written == want {
		if err := f.Sync(); err != nil {
			f.Close()
			return &localError{err}
		}
		if err := f.Close(); err != nil {
			return &localError{err}
		}
		return nil
	}
	f.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(context.Cause(actx), errStalled) {
		return &transientError{fmt.Errorf("no data for %s after %d of %d bytes", d.stall, off+written, d.spec.Size)}
	}
	return d.shortBody(off, written, head, rerr)
}

// request sends the GET for the bytes from off on.
func (d *downloader) request(ctx context.Context, u string, off int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	// Identity, or Go's transport asks for gzip and decodes it, and byte
	// ranges would then refer to the compressed stream.
	req.Header.Set("Accept-Encoding", "identity")
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, &transientError{err}
	}
	return resp, nil
}

// checkResponse says whether the answer to a request for the bytes from
// off on carries the file, and from which offset: 0 when the server
// ignored the range and sends it all.
func (d *downloader) checkResponse(resp *http.Response, u string, off int64) (int64, error) {
	switch resp.StatusCode {
	case http.StatusOK:
		if off > 0 {
			d.logf("%s ignored the Range request; downloading %s from the start", u, d.spec.Name)
			off = 0
		}
		if resp.ContentLength >= 0 && resp.ContentLength != d.spec.Size {
			return off, d.sizeConflict(resp.ContentLength, resp.Body)
		}
	case http.StatusPartialContent:
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != off {
			return off, fmt.Errorf("asked for bytes from %d, got Content-Range %q", off, resp.Header.Get("Content-Range"))
		}
		if total >= 0 && total != d.spec.Size {
			return off, fmt.Errorf("the server's copy is %d bytes, want %d: a different file", total, d.spec.Size)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if _, total, err := parseContentRange(resp.Header.Get("Content-Range")); err == nil && total >= 0 && total != d.spec.Size {
			return off, fmt.Errorf("the server's copy is %d bytes, want %d: a different file", total, d.spec.Size)
		}
		return off, errRestart
	default:
		se := &StatusError{Code: resp.StatusCode, Status: resp.Status}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
			return off, &transientError{se}
		}
		return off, se
	}
	return off, nil
}

// openPartial opens the partial file for writing at off, dropping any
// bytes after off.
func (d *downloader) openPartial(off int64) (*os.File, error) {
	f, err := os.OpenFile(d.partial, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, &localError{err}
	}
	if err := f.Truncate(off); err != nil {
		f.Close()
		return nil, &localError{err}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, &localError{err}
	}
	return f, nil
}

// shortBody explains a body that ended after written of the bytes from
// off on: a tiny answer that is not the file (head: its first bytes), or
// a lost connection worth a retry.
func (d *downloader) shortBody(off, written int64, head []byte, rerr error) error {
	if rerr == io.EOF {
		if off == 0 {
			if what := describeSmall(head, written); what != "" {
				return fmt.Errorf("the server sent %s, not the file", what)
			}
		}
		rerr = io.ErrUnexpectedEOF
	}
	return &transientError{fmt.Errorf("connection lost after %d of %d bytes: %w", off+written, d.spec.Size, plainError(rerr))}
}

// sizeConflict explains a 200 answer whose length is not the file's.
func (d *downloader) sizeConflict(n int64, body io.Reader) error {
	if n < 4096 {
		head, _ := io.ReadAll(io.LimitReader(body, 512))
		if what := describeSmall(head, n); what != "" {
			return fmt.Errorf("the server sent %s, not the file", what)
		}
	}
	return fmt.Errorf("the server's copy is %d bytes, want %d: a different file", n, d.spec.Size)
}

// describeSmall recognises the usual wrong answers: a Git LFS pointer
// (github.com/.../raw/ of an LFS file) or an HTML page (a login or error
// page served with status 200).
func describeSmall(head []byte, n int64) string {
	s := strings.TrimSpace(string(head))
	switch {
	case strings.HasPrefix(s, "version https://git-lfs.github.com/spec/"):
		return fmt.Sprintf("a Git LFS pointer (%d bytes)", n)
	case len(s) > 0 && s[0] == '<' && strings.Contains(strings.ToLower(s), "html"):
		return fmt.Sprintf("an HTML page (%d bytes)", n)
	}
	return ""
}

// parseContentRange reads "bytes START-END/TOTAL" or "bytes */TOTAL";
// TOTAL "*" gives -1, and START is -1 in the second form.
func parseContentRange(s string) (start, total int64, err error) {
	bad := fmt.Errorf("bad Content-Range %q", s)
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !ok {
		return 0, 0, bad
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, bad
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, bad
		}
	}
	if rng == "*" {
		return -1, total, nil
	}
	a, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, bad
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, bad
	}
	return start, total, nil
}

// finish verifies the complete partial file and renames it into place,
// syncing the file and the directory so the rename survives a crash. A
// partial that does not verify is deleted.
func (d *downloader) finish() error {
	f, err := os.OpenFile(d.partial, os.O_RDWR, 0)
	if err != nil {
		return &localError{err}
	}
	dg, err := digestReader(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &localError{err}
	}
	if !dg.matches(d.spec.id()) {
		os.Remove(d.partial)
		return dg.mismatch(d.partial+" (deleted)", d.spec.id())
	}
	if err := os.Rename(d.partial, d.final); err != nil {
		return &localError{err}
	}
	if err := syncDir(filepath.Dir(d.final)); err != nil {
		return &localError{err}
	}
	writeSidecarDigests(d.final, dg)
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
