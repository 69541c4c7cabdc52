package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"pipeline/errclass"
)

// Feature-set errors.
var (
	// ErrDimMismatch: a feature set with the same key exists with another
	// dimension, or a vector's length does not match its set.
	ErrDimMismatch = errclass.New(errclass.Data, "dimension mismatch")
	// ErrUnknownFeatureSet: no feature set with that id.
	ErrUnknownFeatureSet = errclass.New(errclass.NotFound, "unknown feature set")
)

// Engine values (feature_sets.engine).
const (
	EngineOpenCV = "opencv"
	EngineOneDNN = "onednn"
)

// Pooling values (feature_sets.pooling).
const (
	PoolAvg  = "avg"
	PoolMax  = "max"
	PoolNone = "none"
)

// FeatureSet is a row of feature_sets: one way of turning an image into a
// vector. (ModelSHA256, Layer, Pooling, Preprocess, Precision, Engine) is its key.
type FeatureSet struct {
	ID          int64  `json:"id"`
	ModelSHA256 string `json:"model_sha256"`
	ModelName   string `json:"model"`
	// ModelPath is the model file's absolute path as last extracted ("" =
	// unknown): where to find the model when its name does not resolve.
	// Not part of the identity.
	ModelPath  string    `json:"model_path,omitempty"`
	Layer      string    `json:"layer"`           // OpenCV layer name
	Alias      string    `json:"alias,omitempty"` // "" = none
	Pooling    string    `json:"pooling"`
	Preprocess string    `json:"-"`         // canonical JSON; MarshalJSON writes it as an object
	Precision  string    `json:"precision"` // "" means fp32
	Engine     string    `json:"engine"`    // opencv or onednn; "" means opencv
	Shape      string    `json:"shape"`
	Dim        int       `json:"dim"`
	Encoding   string    `json:"encoding"`
	CreatedAt  time.Time `json:"created_at"`
	Vectors    int64     `json:"vectors"` // stored vectors; filled by FeatureSets and FindFeatureSets
}

// MarshalJSON writes Preprocess, the canonical JSON of feature_sets.preprocess,
// as the object it is rather than as a string holding JSON (docs/JSON.md).
func (fs FeatureSet) MarshalJSON() ([]byte, error) {
	type plain FeatureSet
	var pre json.RawMessage
	if json.Valid([]byte(fs.Preprocess)) {
		pre = json.RawMessage(fs.Preprocess)
	}
	return json.Marshal(struct {
		plain
		Preprocess json.RawMessage `json:"preprocess"` // null if the column is empty
	}{plain(fs), pre})
}

// UnmarshalJSON reads what MarshalJSON writes (bench reads extract --json).
func (fs *FeatureSet) UnmarshalJSON(b []byte) error {
	type plain FeatureSet
	var v struct {
		plain
		Preprocess json.RawMessage `json:"preprocess"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*fs = FeatureSet(v.plain)
	if len(v.Preprocess) > 0 && string(v.Preprocess) != "null" {
		fs.Preprocess = string(v.Preprocess)
	}
	return nil
}

// String names the set for messages and listings, e.g.
// "#3 vgg16 fc2 (fc2/fc7, avg, fp32, 4096-d)".
func (fs FeatureSet) String() string {
	layer := fs.Layer
	name := fs.Layer
	if fs.Alias != "" {
		name = fs.Alias
		layer = fs.Alias + "/" + fs.Layer
	}
	prec := fs.Precision
	if fs.Engine != "" && fs.Engine != EngineOpenCV {
		prec += " " + fs.Engine
	}
	return fmt.Sprintf("#%d %s %s (%s, %s, %s, %d-d)", fs.ID, fs.ModelName, name, layer, fs.Pooling, prec, fs.Dim)
}

// EnsureFeatureSet returns the feature set with fs's key, creating it if
// needed. An existing set with the same key but another Dim is an error
// (ErrDimMismatch): the same model, layer and preprocessing cannot give
// vectors of two lengths, so one of them is wrong. An existing set without
// an alias gets fs.Alias.
func (db *DB) EnsureFeatureSet(ctx context.Context, fs FeatureSet) (FeatureSet, error) {
	w, err := db.writer("feature set")
	if err != nil {
		return FeatureSet{}, err
	}
	if fs.Precision == "" {
		fs.Precision = "fp32"
	}
	if fs.Encoding == "" {
		fs.Encoding = "float32le"
	}
	if fs.Engine == "" {
		fs.Engine = EngineOpenCV
	}
	switch {
	case fs.ModelSHA256 == "" || fs.ModelName == "" || fs.Layer == "" || fs.Preprocess == "" || fs.Shape == "":
		return FeatureSet{}, fmt.Errorf("feature set %s/%s: model_sha256, model name, layer, preprocess and shape are required", fs.ModelName, fs.Layer)
	case fs.Dim <= 0:
		return FeatureSet{}, fmt.Errorf("feature set %s/%s: dim %d must be positive", fs.ModelName, fs.Layer, fs.Dim)
	case fs.Pooling != PoolAvg && fs.Pooling != PoolMax && fs.Pooling != PoolNone:
		return FeatureSet{}, fmt.Errorf("feature set %s/%s: pooling %q: want avg, max or none", fs.ModelName, fs.Layer, fs.Pooling)
	case fs.Engine != EngineOpenCV && fs.Engine != EngineOneDNN:
		return FeatureSet{}, fmt.Errorf("feature set %s/%s: engine %q: want opencv or onednn", fs.ModelName, fs.Layer, fs.Engine)
	case fs.Encoding != "float32le":
		return FeatureSet{}, fmt.Errorf("feature set %s/%s: encoding %q: only float32le is supported", fs.ModelName, fs.Layer, fs.Encoding)
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return FeatureSet{}, fmt.Errorf("feature set: %w", err)
	}
	defer rollback(tx)
	_, err = tx.ExecContext(ctx, `INSERT INTO feature_sets
		(model_sha256, model_name, layer, alias, pooling, preprocess, precision, shape, dim, encoding, created_at, engine, model_path)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (model_sha256, layer, pooling, preprocess, precision, engine) DO NOTHING`,
		fs.ModelSHA256, fs.ModelName, fs.Layer, nullString(fs.Alias), fs.Pooling, fs.Preprocess, fs.Precision,
		fs.Shape, fs.Dim, fs.Encoding, now(), fs.Engine, nullString(fs.ModelPath))
	if err != nil {
		return FeatureSet{}, fmt.Errorf("feature set %s/%s: %w", fs.ModelName, fs.Layer, err)
	}
	got, err := scanFeatureSets(tx.QueryContext(ctx, featureSetSelect+`
		WHERE model_sha256 = ? AND layer = ? AND pooling = ? AND preprocess = ? AND precision = ? AND engine = ?`,
		fs.ModelSHA256, fs.Layer, fs.Pooling, fs.Preprocess, fs.Precision, fs.Engine))
	if err != nil {
		return FeatureSet{}, err
	}
	if len(got) != 1 {
		return FeatureSet{}, fmt.Errorf("feature set %s/%s: not found after insert", fs.ModelName, fs.Layer)
	}
	have := got[0]
	if have.Dim != fs.Dim {
		return FeatureSet{}, fmt.Errorf("feature set %s: %w: stored with dim %d (shape %s), now %d (shape %s)",
			have, ErrDimMismatch, have.Dim, have.Shape, fs.Dim, fs.Shape)
	}
	if have.Alias == "" && fs.Alias != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE feature_sets SET alias = ? WHERE id = ?`, fs.Alias, have.ID); err != nil {
			return FeatureSet{}, fmt.Errorf("feature set %s: %w", have, err)
		}
		have.Alias = fs.Alias
	}
	if fs.ModelPath != "" && have.ModelPath != fs.ModelPath {
		// The file's latest known place (same content: same model_sha256).
		if _, err := tx.ExecContext(ctx, `UPDATE feature_sets SET model_path = ? WHERE id = ?`, fs.ModelPath, have.ID); err != nil {
			return FeatureSet{}, fmt.Errorf("feature set %s: %w", have, err)
		}
		have.ModelPath = fs.ModelPath
	}
	if err := tx.Commit(); err != nil {
		return FeatureSet{}, fmt.Errorf("feature set %s: %w", have, err)
	}
	return have, nil
}

const featureSetSelect = `SELECT id, model_sha256, model_name, layer, COALESCE(alias, ''), pooling, preprocess,
	precision, shape, dim, encoding, created_at, engine, COALESCE(model_path, ''),
	(SELECT count(*) FROM features f WHERE f.feature_set_id = feature_sets.id)
	FROM feature_sets`

func scanFeatureSets(rows *sql.Rows, err error) ([]FeatureSet, error) {
	if err != nil {
		return nil, fmt.Errorf("feature sets: %w", err)
	}
	defer rows.Close()
	var out []FeatureSet
	for rows.Next() {
		var fs FeatureSet
		var created sql.NullString
		if err := rows.Scan(&fs.ID, &fs.ModelSHA256, &fs.ModelName, &fs.Layer, &fs.Alias, &fs.Pooling, &fs.Preprocess,
			&fs.Precision, &fs.Shape, &fs.Dim, &fs.Encoding, &created, &fs.Engine, &fs.ModelPath, &fs.Vectors); err != nil {
			return nil, fmt.Errorf("feature sets: %w", err)
		}
		fs.CreatedAt = parseTime(created)
		out = append(out, fs)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("feature sets: %w", err)
	}
	return out, nil
}

// FeatureSets lists every feature set, oldest first, with its vector count.
func (db *DB) FeatureSets(ctx context.Context) ([]FeatureSet, error) {
	return scanFeatureSets(db.reader().QueryContext(ctx, featureSetSelect+` ORDER BY id`))
}

// FeatureSet returns the feature set with that id.
func (db *DB) FeatureSet(ctx context.Context, id int64) (FeatureSet, error) {
	got, err := scanFeatureSets(db.reader().QueryContext(ctx, featureSetSelect+` WHERE id = ?`, id))
	if err != nil {
		return FeatureSet{}, err
	}
	if len(got) == 0 {
		return FeatureSet{}, fmt.Errorf("feature set %d: %w", id, ErrUnknownFeatureSet)
	}
	return got[0], nil
}

// FindFeatureSets returns the sets whose OpenCV layer name or alias (of any
// set of the same model file and layer) is layer and whose model name is
// model, case-insensitively; an empty argument matches anything. Sets with vectors come first (most vectors first), so
// callers that want "the" set for `--layer fc2` can take the first when it is
// the only one with vectors, and list the rest with FeatureSet.String when
// not.
func (db *DB) FindFeatureSets(ctx context.Context, layer, model string) ([]FeatureSet, error) {
	var where []string
	var args []any
	if layer != "" {
		// An alias names the (model, layer) pair: it matches every set of
		// that pair, including those created before the alias was known.
		where = append(where, `(layer = ? COLLATE NOCASE OR EXISTS (SELECT 1 FROM feature_sets o
			WHERE o.model_sha256 = feature_sets.model_sha256 AND o.layer = feature_sets.layer
			AND o.alias = ? COLLATE NOCASE))`)
		args = append(args, layer, layer)
	}
	if model != "" {
		where = append(where, `model_name = ? COLLATE NOCASE`)
		args = append(args, model)
	}
	q := featureSetSelect
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	sets, err := scanFeatureSets(db.reader().QueryContext(ctx, q+` ORDER BY id`, args...))
	if err != nil {
		return nil, err
	}
	// Stable: equal counts keep id order.
	slices.SortStableFunc(sets, func(a, b FeatureSet) int { return cmp.Compare(b.Vectors, a.Vectors) })
	return sets, nil
}
