package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Child processes: the test binary re-executed with STORE_TEST_CHILD set.
// They report on stdout, one line per event, and take their parameters
// from the environment.

func runChild(mode string) int {
	var err error
	switch mode {
	case "hold-lock":
		err = childHoldLock()
	case "extract":
		err = childExtract()
	case "read-ro-dir":
		err = childReadOnlyDir()
	default:
		err = fmt.Errorf("unknown child mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

// childHoldLock takes the writer lock, starts a run, says "locked <run id>"
// and holds the lock for STORE_TEST_HOLD (or until killed).
func childHoldLock() error {
	ctx := context.Background()
	db, err := Open(os.Getenv("STORE_TEST_DB"), Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	release, err := db.Lock(ctx, envDuration("STORE_TEST_WAIT"), Holder{Command: "pipeline extract"})
	if err != nil {
		return err
	}
	id, err := db.StartRun(ctx, "extract", []string{"--images", "/data"})
	if err != nil {
		return err
	}
	fmt.Printf("locked %d\n", id)
	time.Sleep(envDuration("STORE_TEST_HOLD"))
	if err := db.FinishRun(ctx, id, RunOK, 0, Counts{}, ""); err != nil {
		return err
	}
	return release()
}

// Parameters of the crash-test dataset.
const (
	crashImages = 1500
	crashBatch  = 12
)

var crashDims = []int{256, 512}

// crashContent is the content (and so the sha256) of dataset image i.
func crashContent(i int) string { return fmt.Sprintf("image %d", i) }

// crashPaths are the paths of image i: every 10th has a second copy.
func crashPaths(i int) []string {
	label := []string{"cat", "dog", "fox"}[i%3]
	p := []string{fmt.Sprintf("/data/%s/%04d.jpg", label, i)}
	if i%10 == 0 {
		p = append(p, fmt.Sprintf("/data/%s/copy-of-%04d.jpg", label, i))
	}
	return p
}

func crashSets(db *DB) ([]FeatureSet, error) {
	var sets []FeatureSet
	for _, dim := range crashDims {
		fs, err := db.EnsureFeatureSet(context.Background(), FeatureSet{
			ModelSHA256: shaOf("model"), ModelName: "vgg16", Layer: fmt.Sprintf("layer%d", dim),
			Pooling: PoolAvg, Preprocess: `{}`, Shape: fmt.Sprint(dim), Dim: dim,
		})
		if err != nil {
			return nil, err
		}
		sets = append(sets, fs)
	}
	return sets, nil
}

// childExtract behaves like the extraction engine over the crash dataset:
// take the lock (waiting for a killed predecessor's to go), abandon stale
// runs, skip what is stored, write the rest in batches, finish the run. It
// says "started" once its run exists.
func childExtract() error {
	ctx := context.Background()
	db, err := Open(os.Getenv("STORE_TEST_DB"), Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	release, err := db.Lock(ctx, 30*time.Second, Holder{Command: "pipeline extract"})
	if err != nil {
		return err
	}
	defer release()
	if _, err := db.AbandonStaleRuns(ctx); err != nil {
		return err
	}
	sets, err := crashSets(db)
	if err != nil {
		return err
	}
	run, err := db.StartRun(ctx, "extract", nil)
	if err != nil {
		return err
	}
	fmt.Println("started")
	var total Counts
	var b Batch
	flush := func() error {
		if err := db.WriteBatch(ctx, run, b); err != nil {
			return err
		}
		total = total.Add(b.Counts)
		b = Batch{}
		return nil
	}
	pause := envDuration("STORE_TEST_PAUSE")
	for i := range crashImages {
		if i%crashBatch == 0 {
			time.Sleep(pause) // the forward passes of a batch
		}
		paths := crashPaths(i)
		b.Counts.Seen += int64(len(paths))
		info, ok, err := db.LookupPath(ctx, paths[0])
		if err != nil {
			return err
		}
		var want []int64
		for _, fs := range sets {
			want = append(want, fs.ID)
		}
		if ok {
			if want, err = db.MissingSets(ctx, info.ImageID, want); err != nil {
				return err
			}
		}
		if len(want) == 0 {
			b.Counts.Present += int64(len(paths))
			continue
		}
		it := item(crashContent(i), paths)
		for _, fs := range sets {
			it.Vectors = append(it.Vectors, Vector{FeatureSetID: fs.ID, Data: vecOf(seedOf(crashContent(i)), fs.ID, fs.Dim)})
		}
		b.Items = append(b.Items, it)
		b.Counts.Extracted += int64(len(it.Vectors))
		b.Counts.Duplicates += int64(len(paths) - 1)
		if i%97 == 0 {
			b.Failures = append(b.Failures, Failure{Path: fmt.Sprintf("/data/broken-%d.jpg", i), Stage: "decode", Message: "not an image"})
			b.Counts.Failed++
		}
		if len(b.Items) == crashBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return db.FinishRun(ctx, run, RunOK, 0, total, "")
}

// child is a running child process.
type child struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan error
	errb  strings.Builder
}

// startChild runs the test binary as a child in mode with env.
func startChild(t *testing.T, mode string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"STORE_TEST_CHILD=" + mode}, env...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 16), done: make(chan error, 1)}
	cmd.Stderr = &c.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		io.Copy(io.Discard, out)
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.lines
	})
	return c
}

// expect waits for the next line from the child and checks its prefix.
func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok {
			t.Fatalf("child exited before %q: %v; stderr: %s", prefix, <-c.done, c.errb.String())
		}
		if !strings.HasPrefix(line, prefix) {
			t.Fatalf("child said %q, want %q...", line, prefix)
		}
		return strings.TrimSpace(strings.TrimPrefix(line, prefix))
	case <-time.After(30 * time.Second):
		t.Fatalf("child did not say %q within 30s", prefix)
	}
	return ""
}

// wait waits for the child to exit.
func (c *child) wait(t *testing.T) error {
	t.Helper()
	for range c.lines {
	}
	select {
	case err := <-c.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("child did not exit within 60s")
	}
	return nil
}

// kill SIGKILLs the child, waits for it, and reports whether the signal
// killed it (false: it had exited by itself).
func (c *child) kill(t *testing.T) bool {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !strings.Contains(err.Error(), "finished") {
		t.Fatal(err)
	}
	c.wait(t)
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
