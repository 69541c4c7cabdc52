package pipeline

import (
	"context"
	"encoding/json"
	"time"

	"pipeline/store"
)

// ClassifierSummary is one stored classifier as `pipeline classifiers`
// lists it.
type ClassifierSummary struct {
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	FeatureSet int64     `json:"feature_set_id"`
	Model      string    `json:"model"`
	Layer      string    `json:"layer"` // the alias when there is one
	Pooling    string    `json:"pooling"`
	Precision  string    `json:"precision"`
	Dim        int       `json:"dim"`
	Train      int       `json:"train"`       // training images it was fitted on
	Test       int       `json:"test"`        // held-out images `pipeline eval` scores it on; 0 with final
	Final      bool      `json:"final"`       // fit --final: refitted on every labelled image, no held-out estimate
	CVAccuracy *float64  `json:"cv_accuracy"` // mean over the CV folds of the training split; null without --cv
	CVStd      *float64  `json:"cv_std"`
	CVFolds    int       `json:"cv_folds,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Classifiers lists the stored classifiers by name.
func Classifiers(ctx context.Context, dbPath string) ([]ClassifierSummary, error) {
	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return classifierSummaries(ctx, db)
}

func classifierSummaries(ctx context.Context, db *store.DB) ([]ClassifierSummary, error) {
	rows, err := db.Classifiers(ctx)
	if err != nil {
		return nil, err
	}
	sets := map[int64]store.FeatureSet{}
	out := []ClassifierSummary{}
	for _, c := range rows {
		fs, ok := sets[c.FeatureSetID]
		if !ok {
			if fs, err = db.FeatureSet(ctx, c.FeatureSetID); err != nil {
				return nil, err
			}
			sets[c.FeatureSetID] = fs
		}
		s := ClassifierSummary{Name: c.Name, Kind: c.Kind, FeatureSet: fs.ID, Model: fs.ModelName, Layer: fs.Layer,
			Pooling: fs.Pooling, Precision: fs.Precision, Dim: c.Dim, CreatedAt: c.CreatedAt}
		if fs.Alias != "" {
			s.Layer = fs.Alias
		}
		if s.Precision == "" {
			s.Precision = "fp32"
		}
		var m storedMetrics
		if len(c.Metrics) > 0 && json.Unmarshal(c.Metrics, &m) == nil {
			s.Train, s.Test = m.Train, m.Test
			if m.Final {
				s.Train, s.Test, s.Final = m.FinalTrain, 0, true
			}
			if m.CV != nil && m.CV.Folds > 0 {
				acc, std := m.CV.MeanAccuracy, m.CV.StdAccuracy
				s.CVAccuracy, s.CVStd, s.CVFolds = &acc, &std, m.CV.Folds
			}
		}
		out = append(out, s)
	}
	return out, nil
}
