package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"pipeline/errclass"
)

// Classifier errors.
var (
	// ErrClassifierExists: SaveClassifier without replace on a taken name.
	ErrClassifierExists = errclass.New(errclass.Conflict, "classifier already exists")
	// ErrUnknownClassifier: no classifier with that name.
	ErrUnknownClassifier = errclass.New(errclass.NotFound, "unknown classifier")
)

// Classifier is a row of classifiers. JSON columns are kept as raw JSON:
// their shape belongs to package classify.
type Classifier struct {
	ID           int64           `json:"id"`
	Name         string          `json:"name"`
	Kind         string          `json:"kind"`
	Params       json.RawMessage `json:"params"`              // JSON object; empty means {}
	Transform    json.RawMessage `json:"transform,omitempty"` // nil = none
	Labels       []string        `json:"labels"`              // index = class id
	FeatureSetID int64           `json:"feature_set_id"`
	Dim          int             `json:"dim"`
	Metrics      json.RawMessage `json:"metrics,omitempty"` // nil = none
	Command      string          `json:"command"`
	CreatedAt    time.Time       `json:"created_at"` // zero: SaveClassifier uses now
	RunID        int64           `json:"run_id,omitempty"`
	Model        []byte          `json:"-"`          // nil in Classifiers' listing
	ModelSize    int64           `json:"model_size"` // length of the model BLOB
}

// SaveClassifier stores c under c.Name and returns its id. A taken name is
// ErrClassifierExists unless replace, in which case the old classifier and
// its predictions are deleted in the same transaction. c.Dim must equal its
// feature set's dim.
func (db *DB) SaveClassifier(ctx context.Context, c Classifier, replace bool) (int64, error) {
	w, err := db.writer("save classifier")
	if err != nil {
		return 0, err
	}
	if len(c.Params) == 0 {
		c.Params = json.RawMessage(`{}`)
	}
	switch {
	case strings.TrimSpace(c.Name) == "":
		return 0, fmt.Errorf("save classifier: empty name")
	case c.Kind == "":
		return 0, fmt.Errorf("save classifier %s: empty kind", c.Name)
	case len(c.Labels) == 0:
		return 0, fmt.Errorf("save classifier %s: no labels", c.Name)
	case len(c.Model) == 0:
		return 0, fmt.Errorf("save classifier %s: empty model", c.Name)
	}
	for col, j := range map[string]json.RawMessage{"params": c.Params, "transform": c.Transform, "metrics": c.Metrics} {
		if len(j) > 0 && !json.Valid(j) {
			return 0, fmt.Errorf("save classifier %s: %s is not valid JSON", c.Name, col)
		}
	}
	labels, err := json.Marshal(c.Labels)
	if err != nil {
		return 0, fmt.Errorf("save classifier %s: %w", c.Name, err)
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("save classifier %s: %w", c.Name, err)
	}
	defer rollback(tx)
	var dim int
	err = tx.QueryRowContext(ctx, `SELECT dim FROM feature_sets WHERE id = ?`, c.FeatureSetID).Scan(&dim)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("save classifier %s: feature set %d: %w", c.Name, c.FeatureSetID, ErrUnknownFeatureSet)
	}
	if err != nil {
		return 0, fmt.Errorf("save classifier %s: %w", c.Name, err)
	}
	if dim != c.Dim {
		return 0, fmt.Errorf("save classifier %s: %w: classifier dim %d, feature set %d has dim %d",
			c.Name, ErrDimMismatch, c.Dim, c.FeatureSetID, dim)
	}
	var oldID int64
	var oldCreated string
	err = tx.QueryRowContext(ctx, `SELECT id, created_at FROM classifiers WHERE name = ?`, c.Name).Scan(&oldID, &oldCreated)
	switch {
	case err == nil && !replace:
		return 0, fmt.Errorf("save classifier: %w: %q (fitted %s); choose another name or replace it",
			ErrClassifierExists, c.Name, oldCreated)
	case err == nil:
		// The cascade would do it with foreign_keys on; be explicit so a
		// connection without it cannot leave orphans.
		if _, err := tx.ExecContext(ctx, `DELETE FROM predictions WHERE classifier_id = ?`, oldID); err != nil {
			return 0, fmt.Errorf("save classifier %s: %w", c.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM classifiers WHERE id = ?`, oldID); err != nil {
			return 0, fmt.Errorf("save classifier %s: %w", c.Name, err)
		}
	case !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("save classifier %s: %w", c.Name, err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO classifiers (name, kind, params, transform, labels, feature_set_id,
		dim, metrics, command, created_at, run_id, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Name, c.Kind, string(c.Params), nullJSON(c.Transform), string(labels), c.FeatureSetID, c.Dim,
		nullJSON(c.Metrics), c.Command, formatTime(c.CreatedAt), nullInt(c.RunID), c.Model)
	if err != nil {
		return 0, fmt.Errorf("save classifier %s: %w", c.Name, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("save classifier %s: %w", c.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("save classifier %s: %w", c.Name, err)
	}
	return id, nil
}

func nullJSON(j json.RawMessage) sql.NullString {
	return sql.NullString{String: string(j), Valid: len(j) > 0}
}

const classifierCols = `id, name, kind, params, transform, labels, feature_set_id, dim, metrics, command,
	created_at, run_id, length(model)`

func scanClassifier(sc interface{ Scan(...any) error }, withModel bool) (Classifier, error) {
	var c Classifier
	var params, labels string
	var transform, metrics, created sql.NullString
	var runID sql.NullInt64
	dest := []any{&c.ID, &c.Name, &c.Kind, &params, &transform, &labels, &c.FeatureSetID, &c.Dim, &metrics,
		&c.Command, &created, &runID, &c.ModelSize}
	if withModel {
		dest = append(dest, &c.Model)
	}
	if err := sc.Scan(dest...); err != nil {
		return Classifier{}, err
	}
	c.Params = json.RawMessage(params)
	if transform.Valid {
		c.Transform = json.RawMessage(transform.String)
	}
	if metrics.Valid {
		c.Metrics = json.RawMessage(metrics.String)
	}
	if err := json.Unmarshal([]byte(labels), &c.Labels); err != nil {
		return Classifier{}, fmt.Errorf("classifier %s: labels: %w", c.Name, err)
	}
	c.CreatedAt, c.RunID = parseTime(created), runID.Int64
	return c, nil
}

// Classifier returns the classifier with that name, model included. An
// unknown name is ErrUnknownClassifier, with the existing names in the
// message.
func (db *DB) Classifier(ctx context.Context, name string) (Classifier, error) {
	row := db.reader().QueryRowContext(ctx, `SELECT `+classifierCols+`, model FROM classifiers WHERE name = ?`, name)
	c, err := scanClassifier(row, true)
	if errors.Is(err, sql.ErrNoRows) {
		all, lerr := db.Classifiers(ctx)
		if lerr != nil {
			return Classifier{}, lerr
		}
		if len(all) == 0 {
			return Classifier{}, fmt.Errorf("classifier %q: %w: the database has none yet (run `pipeline fit`)", name, ErrUnknownClassifier)
		}
		names := make([]string, len(all))
		for i, c := range all {
			names[i] = c.Name
		}
		return Classifier{}, fmt.Errorf("classifier %q: %w; have: %s", name, ErrUnknownClassifier, strings.Join(names, ", "))
	}
	if err != nil {
		return Classifier{}, fmt.Errorf("classifier %s: %w", name, err)
	}
	return c, nil
}

// Classifiers lists every classifier by name, without the model BLOBs
// (ModelSize tells their size).
func (db *DB) Classifiers(ctx context.Context) ([]Classifier, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT `+classifierCols+` FROM classifiers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("classifiers: %w", err)
	}
	defer rows.Close()
	var out []Classifier
	for rows.Next() {
		c, err := scanClassifier(rows, false)
		if err != nil {
			return nil, fmt.Errorf("classifiers: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("classifiers: %w", err)
	}
	return out, nil
}

// Prediction is what a classifier said about an image.
type Prediction struct {
	ImageID      int64
	ClassifierID int64
	Path         string   // the path it was read from; "" = none
	Label        string   // predicted class
	Probability  *float64 // nil when the model gives none
}

// WritePredictions stores predictions in one transaction. runID may be 0.
func (db *DB) WritePredictions(ctx context.Context, runID int64, ps []Prediction) error {
	w, err := db.writer("write predictions")
	if err != nil {
		return err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write predictions: %w", err)
	}
	defer rollback(tx)
	ins, err := tx.PrepareContext(ctx, `INSERT INTO predictions (image_id, classifier_id, path, label, probability, run_id, at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("write predictions: %w", err)
	}
	defer ins.Close()
	at := now()
	for _, p := range ps {
		var prob sql.NullFloat64
		if p.Probability != nil {
			prob = sql.NullFloat64{Float64: *p.Probability, Valid: true}
		}
		if _, err := ins.ExecContext(ctx, p.ImageID, p.ClassifierID, nullString(p.Path), p.Label, prob,
			nullInt(runID), at); err != nil {
			return fmt.Errorf("write predictions: image %d, classifier %d: %w", p.ImageID, p.ClassifierID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write predictions: %w", err)
	}
	return nil
}

// HasPrediction reports whether the classifier has predicted the image.
func (db *DB) HasPrediction(ctx context.Context, classifierID, imageID int64) (bool, error) {
	var ok bool
	err := db.reader().QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM predictions
		WHERE classifier_id = ? AND image_id = ?)`, classifierID, imageID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("has prediction: %w", err)
	}
	return ok, nil
}

// PredictedImages returns the ids of every image the classifier has
// predicted (for --new-only over many files).
func (db *DB) PredictedImages(ctx context.Context, classifierID int64) (map[int64]bool, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT DISTINCT image_id FROM predictions WHERE classifier_id = ?`, classifierID)
	if err != nil {
		return nil, fmt.Errorf("predicted images: %w", err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("predicted images: %w", err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("predicted images: %w", err)
	}
	return out, nil
}
