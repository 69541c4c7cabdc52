package pipeline

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"pipeline/classify"
	"pipeline/store"
)

// smallPerClass is cs231n's line between a small and a large dataset, in
// training images per class (the Keras tutorial's "very little data" is
// 1000 per class): below it, fine-tuning the network overfits and a
// classifier on frozen codes is the advice.
const smallPerClass = 1000

// linearKinds are the classifiers that are a linear head on the codes.
var linearKinds = map[string]bool{"softmax": true, classify.LogReg: true, classify.Linear: true}

// Recommendation applies the cs231n transfer-learning rules to what a
// sweep measured (the --json contract's "recommendation").
type Recommendation struct {
	Layer        string `json:"layer"`
	Classifier   string `json:"classifier"`
	FeatureSetID int64  `json:"feature_set_id"`
	Command      string `json:"command"` // the fit to run
	// The facts the advice rests on.
	MinPerClass    int    `json:"min_per_class"`
	MedianPerClass int    `json:"median_per_class"`
	Small          bool   `json:"small_dataset"` // median per class < 1000
	PeakLayer      string `json:"peak_layer"`
	TopLayer       string `json:"top_layer"`
	// PeakEarly: the best layer is before the top one by more than one
	// standard deviation (the data looks unlike ImageNet).
	PeakEarly bool `json:"peak_early"`
	// LinearTopWithinNoise: the best linear head on the top layer is
	// within one standard deviation of the best score.
	LinearTopWithinNoise bool `json:"linear_top_within_noise"`
	NearChance           bool `json:"near_chance"`
	// Text is the advice in plain words, one paragraph per line.
	Text []string `json:"text"`
}

// RecommendInput is what Recommend needs besides the results.
type RecommendInput struct {
	Rows        []SweepRow
	Classes     []string
	ClassCounts []int // training images per class
	Model       string
	Pool        string // the sweep's --pool
	Folds       int
	Params      classify.Params // the template the sweep used (for the fit flags)
	DB          string          // --db to write into the command; "" = leave out
}

// withinNoise: b's accuracy is at most one standard deviation (the larger
// of the two) below a's.
func withinNoise(a, b SweepRow) bool {
	return a.Accuracy-b.Accuracy <= math.Max(a.AccuracyStd, b.AccuracyStd)+1e-12
}

// better orders rows for "best": accuracy, then macro-F1, then a linear
// head, then the shallower layer, then the faster fit.
func better(a, b SweepRow) bool {
	if a.Accuracy != b.Accuracy {
		return a.Accuracy > b.Accuracy
	}
	if a.MacroF1 != b.MacroF1 {
		return a.MacroF1 > b.MacroF1
	}
	if linearKinds[a.Classifier] != linearKinds[b.Classifier] {
		return linearKinds[a.Classifier]
	}
	if a.Depth != b.Depth {
		return a.Depth < b.Depth
	}
	return a.FitSeconds < b.FitSeconds
}

// Recommend turns a sweep's results into advice; ok is false when no row
// has a score.
func Recommend(in RecommendInput) (rec Recommendation, ok bool) {
	var rows []SweepRow
	for _, r := range in.Rows {
		if r.Error == "" && !math.IsNaN(r.Accuracy) {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return rec, false
	}
	counts, total := rec.sizeAdvice(in.ClassCounts)

	// Where accuracy peaks along the depth.
	best := rows[0]
	for _, r := range rows[1:] {
		if better(r, best) {
			best = r
		}
	}
	top := topRow(rows)
	rec.PeakLayer, rec.TopLayer = best.Layer, top.Layer
	var bestTop *SweepRow
	var linTop *SweepRow
	for i, r := range rows {
		if r.Layer != top.Layer {
			continue
		}
		if bestTop == nil || better(r, *bestTop) {
			bestTop = &rows[i]
		}
		if linearKinds[r.Classifier] && (linTop == nil || better(r, *linTop)) {
			linTop = &rows[i]
		}
	}
	rec.depthAdvice(len(distinctLayers(rows)), best, top, *bestTop)
	choice := rec.linearAdvice(best, linTop, top)

	// A sanity check against the majority class.
	if total > 0 {
		majority := float64(counts[len(counts)-1]) / float64(total)
		if best.Accuracy <= majority+math.Max(best.AccuracyStd, 0.01) {
			rec.NearChance = true
			rec.Text = append(rec.Text, fmt.Sprintf("Warning: the best accuracy (%.3f) is within noise of always answering the largest class (%.3f): these codes do not separate the classes (a model with random weights, or one unrelated to these images); the advice above is then about noise.",
				best.Accuracy, majority))
		}
	}
	rec.Layer, rec.Classifier, rec.FeatureSetID = choice.Layer, choice.Classifier, choice.FeatureSetID
	rec.Command = fitCommand(in, choice)
	rec.Text = append(rec.Text, fmt.Sprintf("Recommended: %s on %s. Fit it with cross-validation on the training split, then on every labelled image (--final):", choice.Classifier, choice.Layer))
	return rec, true
}

// sizeAdvice says whether the training split (images per class) is small
// by cs231n's rule, and returns the counts sorted and their total.
func (rec *Recommendation) sizeAdvice(classCounts []int) (counts []int, total int) {
	counts = append([]int(nil), classCounts...)
	sort.Ints(counts)
	for _, c := range counts {
		total += c
	}
	if len(counts) > 0 {
		rec.MinPerClass, rec.MedianPerClass = counts[0], counts[len(counts)/2]
	}
	rec.Small = rec.MedianPerClass < smallPerClass
	size := fmt.Sprintf("The training split has %d images in %d classes (%d to %d per class, median %d): ",
		total, len(counts), rec.MinPerClass, counts[len(counts)-1], rec.MedianPerClass)
	if rec.Small {
		size += fmt.Sprintf("a small dataset by cs231n's rule (well under ~%d per class), so keep the network frozen and train a classifier on its codes, as this sweep did.", smallPerClass)
	} else {
		size += fmt.Sprintf("a large dataset by cs231n's rule (~%d or more per class): fine-tuning the network itself (outside this tool) would likely beat frozen codes; among frozen codes, the numbers below still hold.", smallPerClass)
	}
	rec.Text = append(rec.Text, size)
	return counts, total
}

// depthAdvice says where accuracy peaks along the depth: best is the best
// row, bestTop the best on the top layer (top's), of layers swept.
func (rec *Recommendation) depthAdvice(layers int, best, top, bestTop SweepRow) {
	switch {
	case layers == 1:
		rec.Text = append(rec.Text, fmt.Sprintf("Only one layer was swept (%s): there is no depth to compare; sweep more layers to see whether the data is like ImageNet.", top.Layer))
	case best.Layer == top.Layer || bestTop.Accuracy >= best.Accuracy:
		rec.PeakLayer = top.Layer
		rec.Text = append(rec.Text, fmt.Sprintf("Accuracy peaks at the top layer %s (%s %s): the data looks similar enough to ImageNet for the deepest codes.",
			top.Layer, bestTop.Classifier, score(bestTop)))
	case withinNoise(best, bestTop):
		rec.Text = append(rec.Text, fmt.Sprintf("Accuracy peaks at %s (%s %s), but the top layer %s is within one standard deviation of it (%s %s): no clear sign that the data is unlike ImageNet.",
			best.Layer, best.Classifier, score(best), top.Layer, bestTop.Classifier, score(bestTop)))
	default:
		rec.PeakEarly = true
		rec.Text = append(rec.Text, fmt.Sprintf("Accuracy peaks at %s (%s %s), %.3f above the best on the top layer %s (%s %s), more than one standard deviation: a peak at an earlier layer means the data is unlike ImageNet, whose most specific features sit in the last layers; use the earlier layer's codes (cs231n: small and different, a classifier on earlier activations).",
			best.Layer, best.Classifier, score(best), best.Accuracy-bestTop.Accuracy, top.Layer, bestTop.Classifier, score(bestTop)))
	}
}

// linearAdvice compares the best linear head on the top layer (linTop,
// nil when none was swept) with the best row, and returns the row to
// recommend: the linear head when it is within noise of the best.
func (rec *Recommendation) linearAdvice(best SweepRow, linTop *SweepRow, top SweepRow) SweepRow {
	switch {
	case linTop == nil:
		rec.Text = append(rec.Text, fmt.Sprintf("No linear head (softmax, logreg or linear) was swept on the top layer %s, so the simplest model could not be compared.", top.Layer))
	case linTop.Accuracy >= best.Accuracy:
		rec.LinearTopWithinNoise = true
		rec.Text = append(rec.Text, fmt.Sprintf("A linear head on the top layer (%s on %s, %s) scores as well as anything swept: the tutorial's simplest model is the one to use.",
			linTop.Classifier, linTop.Layer, score(*linTop)))
		return *linTop
	case withinNoise(best, *linTop):
		rec.LinearTopWithinNoise = true
		rec.Text = append(rec.Text, fmt.Sprintf("A linear head on the top layer (%s on %s, %s) is within one standard deviation of the best (%s on %s, %s): take the simpler model (cs231n: small and similar, a linear classifier on the top codes).",
			linTop.Classifier, linTop.Layer, score(*linTop), best.Classifier, best.Layer, score(best)))
		return *linTop
	default:
		rec.Text = append(rec.Text, fmt.Sprintf("A linear head on the top layer (%s on %s, %s) is %.3f below the best, more than one standard deviation: the best model (%s on %s) is worth its extra cost.",
			linTop.Classifier, linTop.Layer, score(*linTop), best.Accuracy-linTop.Accuracy, best.Classifier, best.Layer))
	}
	return best
}

// topRow is a row of the deepest swept layer, "predictions" (the
// network's own classifier output) aside unless it is all there is.
func topRow(rows []SweepRow) SweepRow {
	var top *SweepRow
	for i, r := range rows {
		if r.Layer == "predictions" {
			continue
		}
		if top == nil || r.Depth > top.Depth {
			top = &rows[i]
		}
	}
	if top == nil {
		return rows[0]
	}
	return *top
}

func distinctLayers(rows []SweepRow) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		if !seen[r.Layer] {
			seen[r.Layer] = true
			out = append(out, r.Layer)
		}
	}
	return out
}

func score(r SweepRow) string {
	return fmt.Sprintf("%.3f ± %.3f", r.Accuracy, r.AccuracyStd)
}

var nameUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fitCommand is the `pipeline fit` line that trains the chosen row's
// classifier with the sweep's parameters.
func fitCommand(in RecommendInput, r SweepRow) string {
	args := []string{"pipeline", "fit"}
	add := func(flag, value string) { args = append(args, flag, shellQuote(value)) }
	if in.DB != "" {
		add("--db", in.DB)
	}
	if in.Model != "" {
		add("--model", in.Model)
	}
	add("--layer", r.Layer)
	switch {
	case r.Pooling == store.PoolAvg || r.Pooling == store.PoolMax:
		add("--pool", r.Pooling)
	case r.Pooling == store.PoolNone && r.Spatial:
		add("--pool", store.PoolNone)
	}
	add("--clf", r.Classifier)
	p, d := rowParams(in.Params, r.Classifier), classify.DefaultParams(r.Classifier)
	if (r.Classifier == classify.SVM || r.Classifier == classify.Linear || linearKinds[r.Classifier]) && p.C != d.C {
		add("--C", strconv.FormatFloat(p.C, 'g', -1, 64))
	}
	if r.Classifier == classify.SVM {
		if p.Kernel != d.Kernel {
			add("--kernel", p.Kernel)
		}
		if p.Gamma != d.Gamma {
			add("--gamma", p.Gamma.String())
		}
	}
	if p.Transform.Scale != "" && p.Transform.Scale != d.Transform.Scale {
		add("--scale", p.Transform.Scale)
	}
	if p.Transform.L2 {
		args = append(args, "--l2")
	}
	if p.Transform.PCA > 0 {
		add("--pca", strconv.Itoa(p.Transform.PCA))
	}
	if p.Balanced {
		args = append(args, "--balanced")
	}
	if p.Seed != d.Seed {
		add("--seed", strconv.FormatInt(p.Seed, 10))
	}
	add("--cv", strconv.Itoa(max(in.Folds, 2)))
	name := strings.Trim(nameUnsafe.ReplaceAllString(r.Layer+"-"+r.Classifier, "-"), "-.")
	if len(name) > 100 {
		name = name[:100]
	}
	add("--name", name)
	args = append(args, "--final")
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/:=,+@%", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
