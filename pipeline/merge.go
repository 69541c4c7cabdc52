package pipeline

import (
	"pipeline/errclass"

	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"pipeline/store"
)

// ErrLabelConflicts: after a merge, some image content has paths that give
// it different labels.
var ErrLabelConflicts = errclass.New(errclass.Data, "label conflicts")

// MergeOptions configure one `pipeline merge` run.
type MergeOptions struct {
	Into    string   // the target database (created if missing)
	Sources []string // databases to copy from, in this order
	// AllowLabelConflicts: report label conflicts without failing.
	AllowLabelConflicts bool
	Wait                time.Duration // wait for the target's writer lock this long
	Args                []string      // the command line, for the runs table
	// Progress, if set, is called after every committed chunk.
	Progress func(source string, st store.MergeStats)
}

// MergeSource is what the merge of one source did.
type MergeSource struct {
	Path  string           `json:"path"`
	Stats store.MergeStats `json:"stats"`
}

// LabelConflict is one content whose paths disagree on its label.
type LabelConflict struct {
	SHA256 string              `json:"sha256"`
	Label  string              `json:"label"` // the label the image keeps: its canonical path's
	Path   string              `json:"path"`  // the canonical path
	Paths  []LabelConflictPath `json:"paths"`
}

// LabelConflictPath is one path of a conflicting content.
type LabelConflictPath struct {
	Path  string `json:"path"`
	Label string `json:"label"`
}

// MergeSummary is the outcome of a merge (the --json contract).
type MergeSummary struct {
	RunID          int64            `json:"run_id"`
	Status         string           `json:"status"` // ok, interrupted, failed
	Into           string           `json:"into"`
	Sources        []MergeSource    `json:"sources"`
	Totals         store.MergeStats `json:"totals"`
	NewFeatureSets []string         `json:"new_feature_sets,omitempty"`
	LabelConflicts []LabelConflict  `json:"label_conflicts"`
	Notes          []string         `json:"notes,omitempty"`
	WallSeconds    float64          `json:"wall_seconds"`
	Error          string           `json:"error,omitempty"`
}

// Merge copies the source databases into o.Into under its writer lock, as
// one run of its runs table: see store.DB.PlanMerge for what is refused and
// store.DB.Merge for how rows are matched. Every source is checked before
// anything is written. Afterwards the target's label conflicts are listed;
// unless allowed, they make the merge fail with ErrLabelConflicts (the data
// was merged and is kept: the conflicts are for the user to resolve).
func Merge(ctx context.Context, o MergeOptions) (sum MergeSummary, err error) {
	start := time.Now()
	sum.Into, sum.Status, sum.LabelConflicts = o.Into, store.RunFailed, []LabelConflict{}
	if len(o.Sources) == 0 {
		return sum, usagef("nothing to merge: give the shard databases")
	}
	into, err := filepath.Abs(o.Into)
	if err != nil {
		return sum, err
	}
	for _, s := range o.Sources {
		if a, err := filepath.Abs(s); err == nil && a == into {
			return sum, usagef("%s is both the target and a source", s)
		}
	}
	db, err := store.Open(o.Into, store.Options{})
	if err != nil {
		return sum, err
	}
	defer db.Close()
	sum.Into = db.Path()
	bg := context.WithoutCancel(ctx)
	release, err := db.Lock(ctx, o.Wait, store.Holder{Command: "merge"})
	if err != nil {
		return sum, err
	}
	defer release()
	if _, err := db.AbandonStaleRuns(bg); err != nil {
		return sum, err
	}
	runID, err := db.StartRun(bg, "merge", o.Args)
	if err != nil {
		return sum, err
	}
	sum.RunID = runID
	runErr := merge(ctx, db, runID, o, &sum)
	sum.WallSeconds = time.Since(start).Seconds()
	status, code, msg := store.RunOK, 0, ""
	switch {
	case runErr == nil:
	case errors.Is(runErr, ErrInterrupted):
		status, code, msg = store.RunInterrupted, 130, runErr.Error()
	case errors.Is(runErr, ErrLabelConflicts):
		code, msg = 5, runErr.Error()
	case errors.Is(runErr, store.ErrIncomparable), errors.Is(runErr, store.ErrSplitFrac):
		status, code, msg = store.RunFailed, 5, runErr.Error()
	case errors.Is(runErr, ErrUsage), errors.Is(runErr, store.ErrSameDatabase):
		status, code, msg = store.RunFailed, 2, runErr.Error()
	default:
		status, code, msg = store.RunFailed, 1, runErr.Error()
	}
	if runErr != nil {
		sum.Error = runErr.Error()
	}
	sum.Status = status
	t := sum.Totals
	c := store.Counts{Seen: t.Images, Present: t.Images - t.NewImages, Extracted: t.Vectors}
	if ferr := db.FinishRun(bg, runID, status, code, c, msg); ferr != nil && runErr == nil {
		runErr = ferr
	}
	return sum, runErr
}

func merge(ctx context.Context, db *store.DB, runID int64, o MergeOptions, sum *MergeSummary) error {
	plan, err := db.PlanMerge(ctx, o.Sources)
	if err != nil {
		if errors.Is(err, store.ErrSameDatabase) {
			return fmt.Errorf("%w (%w)", err, ErrUsage)
		}
		return err
	}
	sum.NewFeatureSets = plan.NewSets
	for i, src := range plan.Sources {
		progress := func(st store.MergeStats) {
			if o.Progress != nil {
				o.Progress(src.Path, st)
			}
		}
		st, err := db.Merge(ctx, plan, i, runID, progress)
		sum.Sources = append(sum.Sources, MergeSource{Path: src.Path, Stats: st})
		sum.Totals = sum.Totals.Add(st)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: what was merged is committed; run the same merge again to finish", ErrInterrupted)
			}
			return err
		}
		if st.VectorsDiffer > 0 {
			sum.Notes = append(sum.Notes, fmt.Sprintf("%s: %d vectors of contents already in the target differ from the target's (kept the target's; extraction on another CPU or library build gives slightly different floats)", src.Path, st.VectorsDiffer))
		}
		if st.SplitsDiffer > 0 {
			sum.Notes = append(sum.Notes, fmt.Sprintf("%s: %d contents are on the other side of the target's train/test split (kept the target's)", src.Path, st.SplitsDiffer))
		}
	}
	conflicts, err := db.LabelConflicts(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	for _, c := range conflicts {
		lc := LabelConflict{SHA256: c.SHA256, Label: c.Label}
		im, ok, err := db.Image(context.WithoutCancel(ctx), c.ImageID)
		if err != nil {
			return err
		}
		if ok {
			lc.Path = im.Path
		}
		for _, p := range c.Paths {
			lc.Paths = append(lc.Paths, LabelConflictPath{Path: p.Path, Label: p.Label})
		}
		sum.LabelConflicts = append(sum.LabelConflicts, lc)
	}
	if len(conflicts) > 0 && !o.AllowLabelConflicts {
		return fmt.Errorf("%w: %d image contents have paths with different labels (each keeps its canonical path's label); everything was merged", ErrLabelConflicts, len(conflicts))
	}
	return nil
}
