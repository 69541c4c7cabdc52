package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"

	"pipeline/errclass"
)

// Split parts (splits.part).
const (
	PartTrain = "train"
	PartTest  = "test"
)

// Who chose an image's split (splits.source).
const (
	SplitAuto = "auto" // AssignSplit's stratified split
	SplitUser = "user" // the user: a split-style folder layout or extract --split
)

// SettingTestFraction is the settings key of the split's test fraction.
const SettingTestFraction = "split.test_fraction"

// ErrSplitFrac: AssignSplit was asked for another test fraction than the one
// the existing split was made with.
var ErrSplitFrac = errclass.New(errclass.Data, "split test fraction differs from the stored one")

// AssignSplit puts every labeled image that has no split row yet into train
// or test and returns how many it assigned. Existing rows never move, and
// the user's (source 'user') are neither moved nor counted: the automatic
// split is stratified among the images it assigns.
//
// The split is stratified and deterministic: per label, the new images are
// taken in sha256 order, and each goes to test exactly when the label's test
// count is below round(testFrac x (images of the label assigned so far,
// this one included)). So at every step each label's test count is within
// one image of testFrac of its size, whatever order images arrived in over
// the runs, and two databases with the same images get the same split.
// Unlabeled images are never assigned. testFrac is stored on first use; a
// later call with another value fails with ErrSplitFrac.
func (db *DB) AssignSplit(ctx context.Context, testFrac float64) (int, error) {
	w, err := db.writer("assign split")
	if err != nil {
		return 0, err
	}
	if !(testFrac >= 0 && testFrac < 1) {
		return 0, fmt.Errorf("assign split: test fraction %v: want 0 <= f < 1", testFrac)
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("assign split: %w", err)
	}
	defer rollback(tx)
	if err := checkSplitFrac(ctx, tx, strconv.FormatFloat(testFrac, 'g', -1, 64)); err != nil {
		return 0, fmt.Errorf("assign split: %w", err)
	}
	tallies, err := readSplitTallies(ctx, tx, true)
	if err != nil {
		return 0, fmt.Errorf("assign split: %w", err)
	}
	todo, err := unsplitImages(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("assign split: %w", err)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO splits (image_id, part, assigned_at, source) VALUES (?, ?, ?, 'auto')`)
	if err != nil {
		return 0, fmt.Errorf("assign split: %w", err)
	}
	defer ins.Close()
	at := now()
	for _, p := range todo {
		if _, err := ins.ExecContext(ctx, p.id, tallies.next(p.label, testFrac), at); err != nil {
			return 0, fmt.Errorf("assign split: image %d: %w", p.id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("assign split: %w", err)
	}
	return len(todo), nil
}

// checkSplitFrac stores the test fraction frac on first use and fails with
// ErrSplitFrac when the stored one differs.
func checkSplitFrac(ctx context.Context, tx *sql.Tx, frac string) error {
	var stored string
	err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, SettingTestFraction).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)`, SettingTestFraction, frac)
		return err
	case err != nil:
		return err
	case stored != frac:
		return fmt.Errorf("%w: the split was made with test fraction %s (settings %q), not %s; existing assignments never move",
			ErrSplitFrac, stored, SettingTestFraction, frac)
	}
	return nil
}

// splitTally is one label's images in the split, and how many of them are
// test.
type splitTally struct{ n, test int }

// splitTallies are the split's tallies by label.
type splitTallies map[string]*splitTally

// readSplitTallies counts the split's labelled images per label; with
// autoOnly, only the automatic split's (source 'auto').
func readSplitTallies(ctx context.Context, q queryer, autoOnly bool) (splitTallies, error) {
	query := `SELECT i.label, count(*), sum(s.part = 'test') FROM splits s
		JOIN images i ON i.id = s.image_id WHERE i.label IS NOT NULL`
	if autoOnly {
		query += ` AND s.source = 'auto'`
	}
	rows, err := q.QueryContext(ctx, query+` GROUP BY i.label`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tallies := splitTallies{}
	for rows.Next() {
		var label string
		var t splitTally
		if err := rows.Scan(&label, &t.n, &t.test); err != nil {
			return nil, err
		}
		tallies[label] = &t
	}
	return tallies, rows.Err()
}

// next is the part of the label's next image (in sha256 order), counted
// in: test exactly when the label's test count is below
// round(testFrac x its images, this one included).
func (ts splitTallies) next(label string, testFrac float64) string {
	t := ts[label]
	if t == nil {
		t = &splitTally{}
		ts[label] = t
	}
	t.n++
	if float64(t.test) < math.Round(testFrac*float64(t.n)) {
		t.test++
		return PartTest
	}
	return PartTrain
}

// unsplitImage is a labeled image without a split row.
type unsplitImage struct {
	id    int64
	label string
}

// unsplitImages lists the labeled images without a split row, by label,
// then sha256.
func unsplitImages(ctx context.Context, tx *sql.Tx) ([]unsplitImage, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, label FROM images
		WHERE label IS NOT NULL AND id NOT IN (SELECT image_id FROM splits)
		ORDER BY label, sha256`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var todo []unsplitImage
	for rows.Next() {
		var p unsplitImage
		if err := rows.Scan(&p.id, &p.label); err != nil {
			return nil, err
		}
		todo = append(todo, p)
	}
	return todo, rows.Err()
}

// Split returns the part ("train" or "test") of every assigned image by id.
func (db *DB) Split(ctx context.Context) (map[int64]string, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT image_id, part FROM splits`)
	if err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var id int64
		var part string
		if err := rows.Scan(&id, &part); err != nil {
			return nil, fmt.Errorf("split: %w", err)
		}
		out[id] = part
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("split: %w", err)
	}
	return out, nil
}

// ResetSplit deletes the automatic split and its stored test fraction, so
// that the next AssignSplit starts over (possibly with another fraction).
// The user's split rows stay. It returns how many rows it deleted.
func (db *DB) ResetSplit(ctx context.Context) (int, error) {
	w, err := db.writer("reset split")
	if err != nil {
		return 0, err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("reset split: %w", err)
	}
	defer rollback(tx)
	res, err := tx.ExecContext(ctx, `DELETE FROM splits WHERE source = 'auto'`)
	if err != nil {
		return 0, fmt.Errorf("reset split: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("reset split: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, SettingTestFraction); err != nil {
		return 0, fmt.Errorf("reset split: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("reset split: %w", err)
	}
	return int(n), nil
}

// Setting returns a value from settings.
func (db *DB) Setting(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := db.reader().QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("setting %s: %w", key, err)
	}
	return v, true, nil
}

// SetSetting stores a value in settings, replacing any previous one.
func (db *DB) SetSetting(ctx context.Context, key, value string) error {
	w, err := db.writer("set setting")
	if err != nil {
		return err
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	return nil
}
