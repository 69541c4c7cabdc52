package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// SettingDatabaseID is the settings key of a database's identity: 32 random
// hex digits made by migration 0005. `pipeline merge` uses it to recognise
// runs it has already copied, whatever the file is called or where it is
// mounted. A copy of the file (cp) has the same identity.
const SettingDatabaseID = "database.id"

// DatabaseID returns the database's identity (settings 'database.id').
func (db *DB) DatabaseID(ctx context.Context) (string, error) {
	var id string
	err := db.reader().QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, SettingDatabaseID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("database %s has no identity (settings %q): was the row deleted by hand?", db.path, SettingDatabaseID)
	}
	if err != nil {
		return "", fmt.Errorf("database id of %s: %w", db.path, err)
	}
	return id, nil
}

// SetRunShard records which shard of its inputs a run works on ("I/N",
// 0-based), in runs.shard.
func (db *DB) SetRunShard(ctx context.Context, id int64, shard string) error {
	w, err := db.writer("run shard")
	if err != nil {
		return err
	}
	res, err := w.ExecContext(ctx, `UPDATE runs SET shard = ? WHERE id = ?`, nullString(shard), id)
	return checkRunUpdate("run shard", id, res, err)
}

// SameFeatureSet returns db's feature set with the identity of set setID of
// other: every column of feature_sets equal but id, created_at, model_name,
// alias and model_path (as PlanMerge matches sets), so that vectors read from the two
// databases can be compared. ok is false when db has none.
func (db *DB) SameFeatureSet(ctx context.Context, other *DB, setID int64) (fs FeatureSet, ok bool, err error) {
	theirs, err := readSets(ctx, other.reader(), other.path)
	if err != nil {
		return fs, false, err
	}
	mine, err := readSets(ctx, db.reader(), db.path)
	if err != nil {
		return fs, false, err
	}
	for _, t := range theirs {
		if t.id != setID {
			continue
		}
		for _, m := range mine {
			if m.identity == t.identity {
				fs, err := db.FeatureSet(ctx, m.id)
				return fs, err == nil, err
			}
		}
		return fs, false, nil
	}
	return fs, false, fmt.Errorf("feature set %d of %s: %w", setID, other.path, ErrUnknownFeatureSet)
}

// SplitCandidate is an image content that is not in db, for PlanSplit.
type SplitCandidate struct {
	SHA256 string
	Label  string
}

// PlanSplit says which part of db's split each candidate would get if it
// were added to db, without writing: the rule of AssignSplit (per label, in
// sha256 order, test while the label's test count is below round(f x n)),
// continuing from db's assigned images, with db's stored test fraction.
// Reading several databases as one (fit --db a --db b) splits the contents
// the first lacks this way, deterministically.
func (db *DB) PlanSplit(ctx context.Context, cands []SplitCandidate) (map[string]string, error) {
	fracS, ok, err := db.Setting(ctx, SettingTestFraction)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("plan split: %s has no split yet (assign one first)", db.path)
	}
	var frac float64
	if _, err := fmt.Sscan(fracS, &frac); err != nil {
		return nil, fmt.Errorf("plan split: test fraction %q: %w", fracS, err)
	}
	tallies, err := readSplitTallies(ctx, db.reader(), false)
	if err != nil {
		return nil, fmt.Errorf("plan split: %w", err)
	}
	sorted := slices.Clone(cands)
	slices.SortFunc(sorted, func(a, b SplitCandidate) int {
		if c := strings.Compare(a.Label, b.Label); c != 0 {
			return c
		}
		return strings.Compare(a.SHA256, b.SHA256)
	})
	out := map[string]string{}
	for _, c := range sorted {
		if c.Label == "" {
			continue
		}
		if _, done := out[c.SHA256]; done {
			continue
		}
		out[c.SHA256] = tallies.next(c.Label, frac)
	}
	return out, nil
}
