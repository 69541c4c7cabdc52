package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Problem kinds found by Check.
const (
	ProblemIntegrity    = "integrity"     // PRAGMA integrity_check
	ProblemForeignKey   = "foreign_key"   // a row refers to a missing row (orphan)
	ProblemVectorLength = "vector_length" // length(vector) != 4 x dim, or not a BLOB
	ProblemNonFinite    = "non_finite"    // a vector holds NaN or ±Inf
	ProblemCanonical    = "canonical"     // images.path is not one of the image's paths although it has some
)

// maxPerKind caps how many problems of one kind Check lists; Counts has the
// full numbers.
const maxPerKind = 100

// Problem is one thing Check found wrong.
type Problem struct {
	Kind         string `json:"kind"`
	Table        string `json:"table,omitempty"`
	RowID        int64  `json:"rowid,omitempty"`
	ImageID      int64  `json:"image_id,omitempty"`
	FeatureSetID int64  `json:"feature_set_id,omitempty"`
	Message      string `json:"message"`
}

func (p Problem) String() string { return p.Kind + ": " + p.Message }

// Report is the result of Check.
type Report struct {
	Problems []Problem      `json:"problems"` // at most maxPerKind per kind
	Counts   map[string]int `json:"counts"`   // problems per kind, all of them
	Images   int64          `json:"images"`
	Vectors  int64          `json:"vectors"`
	// Pathless counts images no longer found at any path (their file
	// changed or was replaced). Not a problem: their vectors stay valid.
	Pathless int64 `json:"pathless"`
}

// Healthy reports whether Check found nothing wrong.
func (r Report) Healthy() bool { return len(r.Problems) == 0 }

func (r *Report) add(p Problem) {
	if r.Counts == nil {
		r.Counts = map[string]int{}
	}
	r.Counts[p.Kind]++
	if r.Counts[p.Kind] <= maxPerKind {
		r.Problems = append(r.Problems, p)
	}
}

// Check verifies the database: SQLite's integrity_check and
// foreign_key_check, every vector's length against its set's dim, every
// vector value finite (streaming over all vectors), and each image's
// canonical path. It only reads.
//
// Damage to the file comes first: PRAGMA quick_check walks every b-tree
// page and names the page and cell of what is wrong; when it finds
// nothing, integrity_check adds the index-content checks. Their findings
// are integrity problems, and so is a SQLITE_CORRUPT error on the way
// (with what the header says about the file's size). A damaged file ends
// the check there: the other steps would read the same broken pages.
func (db *DB) Check(ctx context.Context) (Report, error) {
	r := Report{Counts: map[string]int{}} // {} rather than null in --json when healthy
	q := db.reader()
	if err := db.checkIntegrity(ctx, q, &r); err != nil {
		return r, fmt.Errorf("check %s: %w", db.path, err)
	}
	if !r.Healthy() {
		return r, nil
	}
	for _, step := range []func(context.Context, *sql.DB, *Report) error{
		checkForeignKeys, checkVectors, checkCanonical,
	} {
		if err := step(ctx, q, &r); err != nil {
			if isCorrupt(err) {
				r.add(Problem{Kind: ProblemIntegrity, Message: newCorruptError(db.path, err).(*corruptError).detail})
				return r, nil
			}
			return r, fmt.Errorf("check %s: %w", db.path, err)
		}
	}
	if err := q.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM features),
		(SELECT count(*) FROM images i WHERE NOT EXISTS (SELECT 1 FROM image_paths p WHERE p.image_id = i.id))`).
		Scan(&r.Images, &r.Vectors, &r.Pathless); err != nil {
		return r, fmt.Errorf("check %s: %w", db.path, err)
	}
	return r, nil
}

// checkIntegrity runs quick_check, then (if it is clean) integrity_check.
func (db *DB) checkIntegrity(ctx context.Context, q *sql.DB, r *Report) error {
	for _, pragma := range []string{`PRAGMA quick_check`, `PRAGMA integrity_check`} {
		found, err := quickCheck(ctx, q, pragma)
		for _, msg := range found {
			r.add(Problem{Kind: ProblemIntegrity, Message: msg})
		}
		switch {
		case err != nil && isCorrupt(err) && len(found) > 0:
			r.add(Problem{Kind: ProblemIntegrity, Message: "the check stopped early: " + err.Error()})
		case err != nil && isCorrupt(err):
			r.add(Problem{Kind: ProblemIntegrity, Message: newCorruptError(db.path, err).(*corruptError).detail})
		case err != nil:
			return err
		}
		if !r.Healthy() {
			return nil
		}
	}
	return nil
}

func checkForeignKeys(ctx context.Context, q *sql.DB, r *Report) error {
	rows, err := q.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return err
		}
		r.add(Problem{Kind: ProblemForeignKey, Table: table, RowID: rowid.Int64,
			Message: fmt.Sprintf("%s row %d refers to a missing %s row", table, rowid.Int64, parent)})
	}
	return rows.Err()
}

// checkVectors streams every vector once: the length against the set's dim
// in SQL, the values in Go.
func checkVectors(ctx context.Context, q *sql.DB, r *Report) error {
	rows, err := q.QueryContext(ctx, `SELECT f.image_id, f.feature_set_id, typeof(f.vector), length(f.vector),
		fs.dim, f.vector FROM features f LEFT JOIN feature_sets fs ON fs.id = f.feature_set_id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var img, set int64
		var typ string
		var n int
		var dim sql.NullInt64
		var blob sql.RawBytes
		if err := rows.Scan(&img, &set, &typ, &n, &dim, &blob); err != nil {
			return err
		}
		if !dim.Valid {
			continue // no feature set: foreign_key_check reports it
		}
		if typ != "blob" || int64(n) != 4*dim.Int64 {
			r.add(Problem{Kind: ProblemVectorLength, Table: "features", ImageID: img, FeatureSetID: set,
				Message: fmt.Sprintf("vector of image %d in feature set %d is a %s of %d bytes, want a blob of %d (dim %d)",
					img, set, typ, n, 4*dim.Int64, dim.Int64)})
			continue
		}
		if k := nonFinite(blob); k >= 0 {
			v, _ := DecodeVector(blob[4*k : 4*k+4])
			r.add(Problem{Kind: ProblemNonFinite, Table: "features", ImageID: img, FeatureSetID: set,
				Message: fmt.Sprintf("vector of image %d in feature set %d has %v at index %d", img, set, v[0], k)})
		}
	}
	return rows.Err()
}

// checkCanonical finds images whose images.path is not among their paths
// although they have paths: WriteBatch never leaves that state.
func checkCanonical(ctx context.Context, q *sql.DB, r *Report) error {
	rows, err := q.QueryContext(ctx, `SELECT i.id, i.path FROM images i
		WHERE EXISTS (SELECT 1 FROM image_paths p WHERE p.image_id = i.id)
		AND NOT EXISTS (SELECT 1 FROM image_paths p WHERE p.image_id = i.id AND p.path = i.path)`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var path string
		if err := rows.Scan(&id, &path); err != nil {
			return err
		}
		r.add(Problem{Kind: ProblemCanonical, Table: "images", ImageID: id,
			Message: fmt.Sprintf("image %d has canonical path %s, which is not one of its paths", id, path)})
	}
	return rows.Err()
}
