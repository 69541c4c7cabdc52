package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"pipeline/errclass"
)

// Image and vector errors.
var (
	// ErrVectorConflict: a different vector is already stored for the
	// same image and feature set. Vectors are never replaced silently.
	ErrVectorConflict = errclass.New(errclass.Integrity, "a different vector is already stored")
	// ErrNonFinite: a vector holds NaN or ±Inf.
	ErrNonFinite = errclass.New(errclass.Data, "vector has NaN or Inf")
)

// PathInfo is what the database remembers about a path: enough for a rerun
// to skip a file whose size and modification time have not changed.
type PathInfo struct {
	ImageID int64
	SHA256  string
	Size    int64
	MtimeNS int64
	RelPath string
	Label   string // the label this path gave; "" = none
	// Part and PartSource are the image's row in splits: "train"/"test"
	// and "auto"/"user"; "" when the image is not in the split.
	Part       string
	PartSource string
}

// NeedsSplit reports whether an input asking for split part (with label)
// must be written to record it: a user's split is kept only for labeled
// images, and only a different part or an automatic row needs writing.
func (p PathInfo) NeedsSplit(part, label string) bool {
	return part != "" && label != "" && (p.Part != part || p.PartSource != SplitUser)
}

// Image is a row of images.
type Image struct {
	ID        int64     `json:"id"`
	SHA256    string    `json:"sha256"`
	Label     string    `json:"label"` // "" = unlabeled
	Path      string    `json:"path"`  // canonical path
	Width     int       `json:"width"`
	Height    int       `json:"height"`
	Bytes     int64     `json:"bytes"`
	Format    string    `json:"format"`
	FirstSeen time.Time `json:"first_seen"`
}

// ImageRecord describes one image content for WriteBatch.
type ImageRecord struct {
	SHA256 string // lowercase hex SHA-256 of the file bytes
	Width  int    // after EXIF orientation
	Height int
	Bytes  int64
	Format string // jpeg, png, ...
}

// PathRecord is one path an image content was read from.
type PathRecord struct {
	Path    string // absolute, cleaned
	RelPath string // relative to the --images root, or as listed
	Label   string // the label this path gives; "" = unlabeled
	// Split is the part of the split this path asks for ("train", "test";
	// "" = none): recorded as the user's choice (splits.source 'user') for
	// the image when the path is labeled.
	Split   string
	Size    int64
	MtimeNS int64
}

// Vector is one CNN code of an image.
type Vector struct {
	FeatureSetID int64
	Data         []float32
}

// Item is one image content with every path it was found at in this batch
// and the vectors computed for it. Two files with the same bytes are one
// Item with two Paths.
type Item struct {
	Image   ImageRecord
	Paths   []PathRecord // at least one
	Vectors []Vector     // may be empty: the paths are still recorded
}

// Failure is a file a run could not use.
type Failure struct {
	Path    string
	Stage   string // read, decode, size, forward, vector
	Message string
}

// Batch is the unit of work WriteBatch stores in one transaction.
type Batch struct {
	Items    []Item
	Failures []Failure
	Counts   Counts // added to the run's counters in the same transaction
}

// LookupPath returns what is stored about path, if anything.
func (db *DB) LookupPath(ctx context.Context, path string) (PathInfo, bool, error) {
	var p PathInfo
	var label sql.NullString
	err := db.reader().QueryRowContext(ctx, `SELECT p.image_id, i.sha256, p.size, p.mtime_ns, p.relpath, p.label,
		COALESCE(s.part, ''), COALESCE(s.source, '')
		FROM image_paths p JOIN images i ON i.id = p.image_id LEFT JOIN splits s ON s.image_id = p.image_id
		WHERE p.path = ?`, path).
		Scan(&p.ImageID, &p.SHA256, &p.Size, &p.MtimeNS, &p.RelPath, &label, &p.Part, &p.PartSource)
	if errors.Is(err, sql.ErrNoRows) {
		return PathInfo{}, false, nil
	}
	if err != nil {
		return PathInfo{}, false, fmt.Errorf("lookup %s: %w", path, err)
	}
	p.Label = label.String
	return p, true, nil
}

const imageSelect = `SELECT id, sha256, COALESCE(label, ''), path, width, height, bytes, format, first_seen FROM images`

func scanImage(row *sql.Row) (Image, error) {
	var im Image
	var first sql.NullString
	err := row.Scan(&im.ID, &im.SHA256, &im.Label, &im.Path, &im.Width, &im.Height, &im.Bytes, &im.Format, &first)
	im.FirstSeen = parseTime(first)
	return im, err
}

// ImageBySHA returns the image with that content hash, if stored.
func (db *DB) ImageBySHA(ctx context.Context, sha string) (Image, bool, error) {
	im, err := scanImage(db.reader().QueryRowContext(ctx, imageSelect+` WHERE sha256 = ?`, sha))
	if errors.Is(err, sql.ErrNoRows) {
		return Image{}, false, nil
	}
	if err != nil {
		return Image{}, false, fmt.Errorf("image %s: %w", sha, err)
	}
	return im, true, nil
}

// Image returns the image with that id.
func (db *DB) Image(ctx context.Context, id int64) (Image, bool, error) {
	im, err := scanImage(db.reader().QueryRowContext(ctx, imageSelect+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Image{}, false, nil
	}
	if err != nil {
		return Image{}, false, fmt.Errorf("image %d: %w", id, err)
	}
	return im, true, nil
}

// MissingSets returns those of setIDs (in their order) for which no vector of
// the image is stored.
func (db *DB) MissingSets(ctx context.Context, imageID int64, setIDs []int64) ([]int64, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT feature_set_id FROM features WHERE image_id = ?`, imageID)
	if err != nil {
		return nil, fmt.Errorf("missing sets of image %d: %w", imageID, err)
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("missing sets of image %d: %w", imageID, err)
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("missing sets of image %d: %w", imageID, err)
	}
	var missing []int64
	for _, id := range setIDs {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// WriteBatch stores a batch in one transaction: all of it or, on any error,
// none of it. runID may be 0 (no run).
//
//   - Images are keyed by content (sha256): a new content is inserted with
//     its first path as images.path and that path's label as images.label.
//   - Every path is upserted in image_paths; a path whose bytes changed now
//     points at the new image.
//   - images.path and images.label follow the canonical path: when the
//     canonical path's label changes, so does the image's; when the
//     canonical path now holds other bytes, the image's oldest remaining
//     path becomes canonical (an image left with no path keeps the old one).
//   - Vectors must have their set's dim and be finite. A vector already
//     stored for (image, set) is skipped when byte-identical and is an
//     ErrVectorConflict otherwise: there is never a second row.
//   - Failures are inserted and b.Counts added to the run's counters.
func (db *DB) WriteBatch(ctx context.Context, runID int64, b Batch) error {
	_, err := db.WriteBatchReport(ctx, runID, b)
	return err
}

// BatchReport is what a committed batch changed beyond its own rows.
type BatchReport struct {
	// Relabels are the images whose images.label the batch changed from
	// a label to another (or to none); newly stored images are not in it.
	Relabels []Relabel
}

// Relabel is one image whose label changed.
type Relabel struct {
	ImageID int64
	Path    string // the image's canonical path, after the batch
	Old     string
	New     string // "" = unlabeled now
}

// WriteBatchReport is WriteBatch, and says which known images the batch
// relabeled (empty when it failed: nothing was committed).
func (db *DB) WriteBatchReport(ctx context.Context, runID int64, b Batch) (rep BatchReport, err error) {
	defer func() {
		if err != nil {
			rep = BatchReport{}
		}
	}()
	return rep, db.writeBatch(ctx, runID, b, &rep)
}

func (db *DB) writeBatch(ctx context.Context, runID int64, b Batch, rep *BatchReport) error {
	w, err := db.writer("write batch")
	if err != nil {
		return err
	}
	if runID == 0 && len(b.Failures) > 0 {
		return fmt.Errorf("write batch: %d failures need a run to belong to (runID is 0)", len(b.Failures))
	}
	// Encode and check outside the transaction: the write lock is held
	// for the shortest time.
	blobs := make([][][]byte, len(b.Items))
	for i, it := range b.Items {
		if err := checkSHA(it.Image.SHA256); err != nil {
			return fmt.Errorf("write batch: %s: %w", itemName(it), err)
		}
		if len(it.Paths) == 0 {
			return fmt.Errorf("write batch: image %s has no path", it.Image.SHA256)
		}
		blobs[i] = make([][]byte, len(it.Vectors))
		for j, v := range it.Vectors {
			blob := EncodeVector(v.Data)
			if k := nonFinite(blob); k >= 0 {
				return fmt.Errorf("write batch: %s: feature set %d: %w (element %d is %v)",
					itemName(it), v.FeatureSetID, ErrNonFinite, k, v.Data[k])
			}
			blobs[i][j] = blob
		}
	}

	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write batch: %w", err)
	}
	defer rollback(tx)
	bw, err := newBatchWriter(ctx, tx, runID)
	if err != nil {
		return err
	}
	defer bw.close()
	for i, it := range b.Items {
		if err := bw.item(ctx, it, blobs[i]); err != nil {
			return fmt.Errorf("write batch: %s: %w", itemName(it), err)
		}
	}
	if err := bw.fixCanonical(ctx); err != nil {
		return fmt.Errorf("write batch: %w", err)
	}
	rep.Relabels = bw.relabels
	at := now()
	for _, f := range b.Failures {
		if _, err := tx.ExecContext(ctx, `INSERT INTO failures (run_id, path, stage, message, at) VALUES (?, ?, ?, ?, ?)`,
			runID, f.Path, f.Stage, f.Message, at); err != nil {
			return fmt.Errorf("write batch: failure of %s: %w", f.Path, err)
		}
	}
	if runID != 0 {
		c := b.Counts
		res, err := tx.ExecContext(ctx, `UPDATE runs SET seen = seen + ?, extracted = extracted + ?, present = present + ?,
			duplicates = duplicates + ?, failed = failed + ? WHERE id = ?`,
			c.Seen, c.Extracted, c.Present, c.Duplicates, c.Failed, runID)
		if err := checkRunUpdate("write batch: run", runID, res, err); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write batch: commit: %w", err)
	}
	return nil
}

func itemName(it Item) string {
	if len(it.Paths) > 0 {
		return it.Paths[0].Path
	}
	return "image " + it.Image.SHA256
}

func checkSHA(s string) error {
	if len(s) != 64 {
		return fmt.Errorf("sha256 %q: want 64 lowercase hex digits", s)
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("sha256 %q: want 64 lowercase hex digits", s)
		}
	}
	return nil
}

// batchWriter holds the prepared statements of one WriteBatch transaction.
type batchWriter struct {
	tx       *sql.Tx
	runID    sql.NullInt64
	at       string
	dims     map[int64]int  // feature set id -> dim
	touched  map[int64]bool // images whose canonical path may need fixing
	findImg  *sql.Stmt      // sha256 -> id
	addImg   *sql.Stmt      // insert image
	findPath *sql.Stmt      // path -> image_id
	putPath  *sql.Stmt      // upsert image_paths
	addVec   *sql.Stmt      // insert vector unless present
	getVec   *sql.Stmt      // stored vector
	putSplit *sql.Stmt      // the user's split of an image
	stmts    []*sql.Stmt
	relabels []Relabel
}

func newBatchWriter(ctx context.Context, tx *sql.Tx, runID int64) (*batchWriter, error) {
	bw := &batchWriter{tx: tx, runID: nullInt(runID), at: now(), dims: map[int64]int{}, touched: map[int64]bool{}}
	for _, p := range []struct {
		s **sql.Stmt
		q string
	}{
		{&bw.findImg, `SELECT id FROM images WHERE sha256 = ?`},
		{&bw.addImg, `INSERT INTO images (sha256, label, path, width, height, bytes, format, first_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&bw.findPath, `SELECT image_id FROM image_paths WHERE path = ?`},
		{&bw.putPath, `INSERT INTO image_paths (path, relpath, image_id, label, size, mtime_ns, last_seen, run_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (path) DO UPDATE SET relpath = excluded.relpath, image_id = excluded.image_id,
				label = excluded.label, size = excluded.size, mtime_ns = excluded.mtime_ns,
				last_seen = excluded.last_seen, run_id = excluded.run_id`},
		{&bw.addVec, `INSERT INTO features (image_id, feature_set_id, vector, run_id) VALUES (?, ?, ?, ?)
			ON CONFLICT (image_id, feature_set_id) DO NOTHING`},
		{&bw.getVec, `SELECT vector FROM features WHERE image_id = ? AND feature_set_id = ?`},
		{&bw.putSplit, `INSERT INTO splits (image_id, part, assigned_at, source) VALUES (?, ?, ?, 'user')
			ON CONFLICT (image_id) DO UPDATE SET part = excluded.part, assigned_at = excluded.assigned_at, source = 'user'
			WHERE part IS NOT excluded.part OR source IS NOT 'user'`},
	} {
		s, err := tx.PrepareContext(ctx, p.q)
		if err != nil {
			bw.close()
			return nil, fmt.Errorf("write batch: %w", err)
		}
		*p.s = s
		bw.stmts = append(bw.stmts, s)
	}
	return bw, nil
}

func (bw *batchWriter) close() {
	for _, s := range bw.stmts {
		s.Close()
	}
}

func (bw *batchWriter) item(ctx context.Context, it Item, blobs [][]byte) error {
	im := it.Image
	var id int64
	err := bw.findImg.QueryRowContext(ctx, im.SHA256).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		first := it.Paths[0]
		res, err := bw.addImg.ExecContext(ctx, im.SHA256, nullString(first.Label), first.Path,
			im.Width, im.Height, im.Bytes, im.Format, bw.at)
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	bw.touched[id] = true
	for _, p := range it.Paths {
		var old int64
		err := bw.findPath.QueryRowContext(ctx, p.Path).Scan(&old)
		switch {
		case err == nil && old != id:
			bw.touched[old] = true // may have lost its canonical path
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := bw.putPath.ExecContext(ctx, p.Path, p.RelPath, id, nullString(p.Label), p.Size, p.MtimeNS,
			bw.at, bw.runID); err != nil {
			return fmt.Errorf("path %s: %w", p.Path, err)
		}
		if p.Split != "" && p.Label != "" {
			if p.Split != PartTrain && p.Split != PartTest {
				return fmt.Errorf("path %s: split %q: want %s or %s", p.Path, p.Split, PartTrain, PartTest)
			}
			if _, err := bw.putSplit.ExecContext(ctx, id, p.Split, bw.at); err != nil {
				return fmt.Errorf("path %s: split: %w", p.Path, err)
			}
		}
	}
	for j, v := range it.Vectors {
		dim, err := bw.dim(ctx, v.FeatureSetID)
		if err != nil {
			return err
		}
		if len(v.Data) != dim {
			return fmt.Errorf("feature set %d: %w: vector has %d values, the set has dim %d",
				v.FeatureSetID, ErrDimMismatch, len(v.Data), dim)
		}
		res, err := bw.addVec.ExecContext(ctx, id, v.FeatureSetID, blobs[j], bw.runID)
		if err != nil {
			return fmt.Errorf("feature set %d: %w", v.FeatureSetID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			continue
		}
		var stored []byte
		if err := bw.getVec.QueryRowContext(ctx, id, v.FeatureSetID).Scan(&stored); err != nil {
			return fmt.Errorf("feature set %d: %w", v.FeatureSetID, err)
		}
		if !bytes.Equal(stored, blobs[j]) {
			return fmt.Errorf("feature set %d, image %d (sha256 %s): %w", v.FeatureSetID, id, im.SHA256, ErrVectorConflict)
		}
	}
	return nil
}

func (bw *batchWriter) dim(ctx context.Context, setID int64) (int, error) {
	if d, ok := bw.dims[setID]; ok {
		return d, nil
	}
	var d int
	err := bw.tx.QueryRowContext(ctx, `SELECT dim FROM feature_sets WHERE id = ?`, setID).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("feature set %d: %w", setID, ErrUnknownFeatureSet)
	}
	if err != nil {
		return 0, fmt.Errorf("feature set %d: %w", setID, err)
	}
	bw.dims[setID] = d
	return d, nil
}

// fixCanonical makes images.path and images.label of every touched image
// follow its canonical path (see WriteBatch).
func (bw *batchWriter) fixCanonical(ctx context.Context) error {
	ids := make([]int64, 0, len(bw.touched))
	for id := range bw.touched {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		old, err := bw.label(ctx, id)
		if err != nil {
			return err
		}
		if err := bw.fixImage(ctx, id); err != nil {
			return err
		}
		if !old.Valid {
			continue // unlabeled before, or new: labelling is not relabelling
		}
		var now sql.NullString
		var path string
		if err := bw.tx.QueryRowContext(ctx, `SELECT label, path FROM images WHERE id = ?`, id).Scan(&now, &path); err != nil {
			return fmt.Errorf("image %d: %w", id, err)
		}
		if now != old {
			bw.relabels = append(bw.relabels, Relabel{ImageID: id, Path: path, Old: old.String, New: now.String})
		}
	}
	return nil
}

func (bw *batchWriter) label(ctx context.Context, id int64) (sql.NullString, error) {
	var l sql.NullString
	if err := bw.tx.QueryRowContext(ctx, `SELECT label FROM images WHERE id = ?`, id).Scan(&l); err != nil {
		return l, fmt.Errorf("image %d: %w", id, err)
	}
	return l, nil
}

// fixImage makes one image's path and label follow its canonical path.
func (bw *batchWriter) fixImage(ctx context.Context, id int64) error {
	// Label of the canonical path, if it still shows this image.
	var label sql.NullString
	err := bw.tx.QueryRowContext(ctx, `SELECT p.label FROM images i JOIN image_paths p
		ON p.path = i.path AND p.image_id = i.id WHERE i.id = ?`, id).Scan(&label)
	if err == nil {
		if _, err := bw.tx.ExecContext(ctx, `UPDATE images SET label = ? WHERE id = ? AND label IS NOT ?`,
			label, id, label); err != nil {
			return fmt.Errorf("image %d: %w", id, err)
		}
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("image %d: %w", id, err)
	}
	// The canonical path moved to other bytes: the oldest remaining
	// path of this image takes over, if there is one.
	if _, err := bw.tx.ExecContext(ctx, `UPDATE images SET (path, label) =
		(SELECT path, label FROM image_paths WHERE image_id = images.id ORDER BY rowid LIMIT 1)
		WHERE id = ? AND EXISTS (SELECT 1 FROM image_paths WHERE image_id = images.id)`, id); err != nil {
		return fmt.Errorf("image %d: %w", id, err)
	}
	return nil
}

// VectorRow is one stored vector with what classifiers and exports need.
type VectorRow struct {
	ImageID int64
	SHA256  string
	Path    string // canonical path
	Label   string // "" = unlabeled
	Part    string // "train", "test", or "" = not in the split
	Vector  []float32
}

// Vectors calls fn for every vector of a feature set, in image id order,
// one row at a time (memory does not grow with the set). Row.Vector is
// freshly allocated and may be kept. An error from fn stops the iteration
// and is returned as is. The iteration reads one snapshot: batches committed
// meanwhile (by this or another process) are not seen, and fn may itself
// read or write through db.
func (db *DB) Vectors(ctx context.Context, setID int64, fn func(VectorRow) error) error {
	fs, err := db.FeatureSet(ctx, setID)
	if err != nil {
		return err
	}
	rows, err := db.reader().QueryContext(ctx, `SELECT i.id, i.sha256, i.path, COALESCE(i.label, ''),
		COALESCE(s.part, ''), f.vector
		FROM features f JOIN images i ON i.id = f.image_id LEFT JOIN splits s ON s.image_id = i.id
		WHERE f.feature_set_id = ? ORDER BY i.id`, setID)
	if err != nil {
		return fmt.Errorf("vectors of %s: %w", fs, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r VectorRow
		var blob sql.RawBytes
		if err := rows.Scan(&r.ImageID, &r.SHA256, &r.Path, &r.Label, &r.Part, &blob); err != nil {
			return fmt.Errorf("vectors of %s: %w", fs, err)
		}
		if len(blob) != 4*fs.Dim {
			return fmt.Errorf("vectors of %s: image %d: %w: %d bytes, want %d (run `pipeline check`)",
				fs, r.ImageID, ErrDimMismatch, len(blob), 4*fs.Dim)
		}
		if r.Vector, err = DecodeVector(blob); err != nil {
			return fmt.Errorf("vectors of %s: image %d: %w", fs, r.ImageID, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("vectors of %s: %w", fs, err)
	}
	return nil
}

// LabelConflict is an image content found at paths that give it different
// labels. images.label is the canonical path's.
type LabelConflict struct {
	ImageID int64
	SHA256  string
	Label   string       // images.label
	Paths   []PathRecord // every path of the image, with its label
}

// LabelConflicts lists images whose paths disagree on the label.
func (db *DB) LabelConflicts(ctx context.Context) ([]LabelConflict, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT i.id, i.sha256, COALESCE(i.label, ''), p.path, p.relpath,
		COALESCE(p.label, ''), p.size, p.mtime_ns
		FROM images i JOIN image_paths p ON p.image_id = i.id
		WHERE i.id IN (SELECT image_id FROM image_paths GROUP BY image_id
			HAVING count(DISTINCT COALESCE(label, '')) > 1)
		ORDER BY i.id, p.rowid`)
	if err != nil {
		return nil, fmt.Errorf("label conflicts: %w", err)
	}
	defer rows.Close()
	var out []LabelConflict
	for rows.Next() {
		var c LabelConflict
		var p PathRecord
		if err := rows.Scan(&c.ImageID, &c.SHA256, &c.Label, &p.Path, &p.RelPath, &p.Label, &p.Size, &p.MtimeNS); err != nil {
			return nil, fmt.Errorf("label conflicts: %w", err)
		}
		if n := len(out); n > 0 && out[n-1].ImageID == c.ImageID {
			out[n-1].Paths = append(out[n-1].Paths, p)
			continue
		}
		c.Paths = []PathRecord{p}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("label conflicts: %w", err)
	}
	return out, nil
}

// Vector returns the stored vector of an image in a feature set.
func (db *DB) Vector(ctx context.Context, imageID, setID int64) ([]float32, bool, error) {
	var blob []byte
	err := db.reader().QueryRowContext(ctx, `SELECT vector FROM features WHERE image_id = ? AND feature_set_id = ?`, imageID, setID).Scan(&blob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("vector of image %d in set %d: %w", imageID, setID, err)
	}
	v, err := DecodeVector(blob)
	if err != nil {
		return nil, false, fmt.Errorf("vector of image %d in set %d: %w", imageID, setID, err)
	}
	return v, true, nil
}
