package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
)

// SweepResult is a row of sweeps: one classifier cross-validated on one
// feature set by a sweep run.
type SweepResult struct {
	FeatureSetID int64
	Layer        string // as the sweep named it
	Depth        int    // OpenCV layer id: larger is deeper
	Classifier   string
	Params       []byte // JSON
	Folds        int
	Train        int
	Accuracy     float64 // NaN is stored as NULL
	AccuracyStd  float64
	MacroF1      float64
	MacroF1Std   float64
	FitSeconds   float64
	Recommended  bool
}

// SaveSweep stores a sweep run's results in one transaction.
func (db *DB) SaveSweep(ctx context.Context, runID int64, rows []SweepResult) error {
	w, err := db.writer("save sweep")
	if err != nil {
		return err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save sweep: %w", err)
	}
	defer rollback(tx)
	ins, err := tx.PrepareContext(ctx, `INSERT INTO sweeps (run_id, feature_set_id, layer, depth, classifier, params, folds, train,
		accuracy, accuracy_std, macro_f1, macro_f1_std, fit_seconds, recommended, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("save sweep: %w", err)
	}
	defer ins.Close()
	at := now()
	for _, r := range rows {
		params := string(r.Params)
		if params == "" {
			params = "{}"
		}
		if _, err := ins.ExecContext(ctx, runID, r.FeatureSetID, r.Layer, r.Depth, r.Classifier, params, r.Folds, r.Train,
			nullFloat(r.Accuracy), nullFloat(r.AccuracyStd), nullFloat(r.MacroF1), nullFloat(r.MacroF1Std), nullFloat(r.FitSeconds),
			r.Recommended, at); err != nil {
			return fmt.Errorf("save sweep: %s %s: %w", r.Layer, r.Classifier, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save sweep: %w", err)
	}
	return nil
}

func nullFloat(v float64) sql.NullFloat64 {
	return sql.NullFloat64{Float64: v, Valid: !math.IsNaN(v) && !math.IsInf(v, 0)}
}
