package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"pipeline/extract"
	"pipeline/store"
)

type resultKind int

const (
	kindFailed  resultKind = iota
	kindPresent            // path known, content unchanged, all vectors stored
	kindDup                // content already stored (other path or changed metadata)
	kindForward            // needs a forward pass
)

type job struct {
	idx int
	in  Input
}

type result struct {
	idx     int
	in      Input
	kind    resultKind
	rec     store.ImageRecord
	path    store.PathRecord
	write   bool    // kindPresent/kindDup: the path row needs writing
	imageID int64   // kindPresent/kindDup: the stored image
	missing []int64 // kindForward: feature sets without a vector
	blob    []float32
	fail    store.Failure
}

// recordedPath is the model path a feature set records: the file's, when
// the model was given by an absolute path (a relative one depends on the
// working directory, a name is found by name).
func recordedPath(m extract.Model) string {
	if filepath.IsAbs(m.Path) {
		return filepath.Clean(m.Path)
	}
	return ""
}

// useFixedSets takes the feature sets a caller was given (predict: the
// classifier's), after checking that the extractor really computes them.
func (e *engine) useFixedSets(sets []store.FeatureSet) error {
	if n := len(e.ex.Outputs()); n != len(sets) {
		return fmt.Errorf("internal: %d outputs for %d feature sets", n, len(sets))
	}
	for _, fs := range sets {
		// A read-only run may compute them with another engine (a note
		// says so); a writing run stores them in fs: same engine only.
		if err := reproduces(e.ex, e.o.Model.Name, fs, e.runID == 0); err != nil {
			return err
		}
		if n := engineNote(fs, e.ex.Engine()); n != "" {
			e.note(n)
		}
		e.sets = append(e.sets, fs)
		e.setIDs = append(e.setIDs, fs.ID)
	}
	return nil
}

// reproduces checks that ex computes feature set fs: one of its outputs
// has the set's layer, pooling, size and preprocessing, on the set's engine
// unless anyEngine.
func reproduces(ex *extract.Extractor, model string, fs store.FeatureSet, anyEngine bool) error {
	preKey := ex.Preprocess().Key()
	var o extract.Output
	for _, out := range ex.Outputs() {
		if out.Layer.Name == fs.Layer {
			o = out
			break
		}
	}
	if o.Layer.Name != fs.Layer || o.Pool != fs.Pooling || o.Dim != fs.Dim || preKey != fs.Preprocess {
		return fmt.Errorf("model %s does not reproduce feature set %s: layer %s, pooling %s, %d-d, preprocessing %s",
			model, fs, o.Layer.Name, o.Pool, o.Dim, preKey)
	}
	if !anyEngine && ex.Engine() != SetEngine(fs) {
		return usagef("%s holds codes of engine %s: storing codes computed by engine %s there would mix engines in one set; compute with engine %s (the default), or do not store",
			fs, SetEngine(fs), ex.Engine(), SetEngine(fs))
	}
	return nil
}

// ensureSets finds or makes the feature set of every output.
func (e *engine) ensureSets() error {
	o := e.o
	pre := e.ex.Preprocess()
	for _, out := range e.ex.Outputs() {
		fs, err := e.db.EnsureFeatureSet(e.bg, store.FeatureSet{
			ModelSHA256: o.Model.SHA256, ModelName: o.Model.Name, Layer: out.Layer.Name, Alias: out.Alias,
			Pooling: out.Pool, Preprocess: pre.Key(), Precision: o.Compute.Precision(), Engine: e.ex.Engine(),
			Shape: out.Layer.ShapeString(), Dim: out.Dim, ModelPath: recordedPath(o.Model),
		})
		if err != nil {
			return err
		}
		e.sets = append(e.sets, fs)
		e.setIDs = append(e.setIDs, fs.ID)
	}
	return nil
}

// prepare does a file's work up to the forward pass: stat, database
// lookups, read, hash, decode and preprocess. It runs on the workers.
func (e *engine) prepare(j job) result {
	r := result{idx: j.idx, in: j.in}
	fail := func(stage string, err error) result {
		r.kind = kindFailed
		r.fail = store.Failure{Path: j.in.Path, Stage: stage, Message: err.Error()}
		return r
	}
	if j.in.Invalid != "" {
		return fail("list", errors.New(j.in.Invalid))
	}
	fi, stage, err := statImage(j.in.Path, e.o.MaxBytes)
	if err != nil {
		return fail(stage, err)
	}
	mtime := fi.ModTime().UnixNano()
	r.path = store.PathRecord{Path: j.in.Path, RelPath: j.in.RelPath, Label: j.in.Label, Split: j.in.Split, Size: fi.Size(), MtimeNS: mtime}
	ctx := e.bg
	pi, known, err := e.db.LookupPath(ctx, j.in.Path)
	if err != nil {
		return fail("read", err)
	}
	if known && j.in.KeepLabel {
		r.path.Label, r.path.RelPath = pi.Label, pi.RelPath
		j.in.Label, j.in.RelPath = pi.Label, pi.RelPath
	}
	if known && pi.Size == fi.Size() && pi.MtimeNS == mtime {
		missing, err := e.db.MissingSets(ctx, pi.ImageID, e.setIDs)
		if err != nil {
			return fail("read", err)
		}
		if len(missing) == 0 {
			r.kind, r.imageID = kindPresent, pi.ImageID
			r.rec = store.ImageRecord{SHA256: pi.SHA256}
			r.write = pi.Label != j.in.Label || pi.RelPath != j.in.RelPath || pi.NeedsSplit(j.in.Split, j.in.Label)
			return r
		}
	}
	data, err := os.ReadFile(j.in.Path)
	if err != nil {
		return fail("read", unwrapPathErr(err))
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	r.rec = store.ImageRecord{SHA256: sha, Bytes: int64(len(data))}
	if img, ok, err := e.db.ImageBySHA(ctx, sha); err != nil {
		return fail("read", err)
	} else if ok {
		missing, err := e.db.MissingSets(ctx, img.ID, e.setIDs)
		if err != nil {
			return fail("read", err)
		}
		if len(missing) == 0 {
			r.kind, r.write, r.imageID = kindDup, true, img.ID
			r.rec = store.ImageRecord{SHA256: sha, Width: img.Width, Height: img.Height, Bytes: img.Bytes, Format: img.Format}
			if known && pi.SHA256 == sha {
				r.kind = kindPresent // same path, same bytes, new mtime
			}
			return r
		}
		r.missing = missing
	} else {
		r.missing = e.setIDs
	}
	blob := e.blobs.Get().([]float32)
	info, err := e.ex.Preprocess().DecodeInto(data, extract.DecodeOptions{
		MaxPixels: e.o.MaxPixels, Reduce: e.o.Reduce,
		MinWidth: e.ex.Preprocess().Width, MinHeight: e.ex.Preprocess().Height,
	}, blob) // DecodeInto applies the preprocessing's IgnoreOrientation
	if err != nil {
		e.blobs.Put(blob)
		stage := "decode"
		if errors.Is(err, extract.ErrTooLarge) {
			stage = "size"
		}
		return fail(stage, err)
	}
	r.rec.Width, r.rec.Height, r.rec.Format = info.Width, info.Height, info.Format
	r.kind, r.blob = kindForward, blob
	return r
}

// statImage checks that path is a regular file of at most maxBytes (0: 1
// GiB); on failure, it says at which stage (read or size).
func statImage(path string, maxBytes int64) (os.FileInfo, string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "read", unwrapPathErr(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, "read", fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if maxBytes <= 0 {
		maxBytes = 1 << 30
	}
	if fi.Size() > maxBytes {
		return nil, "size", fmt.Errorf("file is %d bytes, over the %d byte limit", fi.Size(), maxBytes)
	}
	return fi, "", nil
}

// readImageFile reads an image file within the limits of statImage.
func readImageFile(path string, maxBytes int64) ([]byte, string, error) {
	if _, stage, err := statImage(path, maxBytes); err != nil {
		return nil, stage, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "read", unwrapPathErr(err)
	}
	return data, "", nil
}

// unwrapPathErr drops the *PathError wrapper: the failure row names the path.
func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, syscall.EACCES) {
			return errors.New("permission denied")
		}
		return pe.Err
	}
	return err
}
