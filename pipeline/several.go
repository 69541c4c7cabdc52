package pipeline

import (
	"context"

	"pipeline/classify"
	"pipeline/store"
)

// loadSplitMany is loadSplit over the first database and the further ones
// in more, read as one: each content counts once (the first database that
// has it gives its label and vector); contents the first database lacks get
// the part its split rule would give them (store.DB.PlanSplit), without
// writing anything to the other databases.
func loadSplitMany(ctx context.Context, db *store.DB, fs store.FeatureSet, more []string, part string) (*classify.Dataset, splitCounts, error) {
	var c splitCounts
	type row struct {
		label, part string
		v           []float32
	}
	var rows []row
	have := map[string]bool{}
	if err := db.Vectors(ctx, fs.ID, func(r store.VectorRow) error {
		have[r.SHA256] = true
		rows = append(rows, row{r.Label, r.Part, r.Vector})
		return nil
	}); err != nil {
		return nil, c, err
	}
	type extra struct {
		sha, label string
		v          []float32
	}
	var extras []extra
	for _, path := range more {
		other, set, err := openSameSet(ctx, path, db, fs)
		if err != nil {
			return nil, c, err
		}
		err = other.Vectors(ctx, set.ID, func(r store.VectorRow) error {
			if have[r.SHA256] {
				return nil
			}
			have[r.SHA256] = true
			extras = append(extras, extra{r.SHA256, r.Label, r.Vector})
			return nil
		})
		other.Close()
		if err != nil {
			return nil, c, err
		}
	}
	cands := make([]store.SplitCandidate, len(extras))
	for i, x := range extras {
		cands[i] = store.SplitCandidate{SHA256: x.sha, Label: x.label}
	}
	parts, err := db.PlanSplit(ctx, cands)
	if err != nil {
		return nil, c, err
	}
	for _, x := range extras {
		rows = append(rows, row{x.label, parts[x.sha], x.v})
	}
	seen := map[string]bool{}
	var keep []row
	for _, r := range rows {
		if c.count(r.label, r.part) && r.part == part {
			keep = append(keep, r)
			seen[r.label] = true
		}
	}
	classes := sortedKeys(seen)
	index := classIndex(classes)
	ds := &classify.Dataset{Classes: classes}
	for _, r := range keep {
		ds.X = append(ds.X, r.v)
		ds.Y = append(ds.Y, index[r.label])
	}
	return ds, c, nil
}
