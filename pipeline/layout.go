package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"pipeline/store"
)

// splitFolders maps the first-level folder names of the split layout
// (Keras image_dataset_from_directory / flow_from_directory, torchvision
// ImageFolder) to parts of the split. Matched case-insensitively.
var splitFolders = map[string]string{
	"train":      store.PartTrain,
	"val":        store.PartTest,
	"validation": store.PartTest,
	"test":       store.PartTest,
}

// Layout is how --images DIR is read.
type Layout struct {
	// Splits: DIR/{train,val,validation,test}/<class>/...; else
	// DIR/<class>/...
	Splits bool `json:"splits"`
	// Parts maps each first-level folder to its part (split layout only).
	Parts map[string]string `json:"parts,omitempty"`
	// Note says how the folders were read when it could surprise: split
	// folders found, or folders named like splits read as classes.
	Note string `json:"note,omitempty"`
}

// DetectLayout decides how the folders under root are read. The layout is
// split-style exactly when every first-level folder (hidden ones aside) is
// named train, val, validation or test, and at least one of them holds a
// sub-folder (a class). Otherwise every first-level folder is a class, as
// before: so a class that happens to be named "train" next to classes
// "cats" and "dogs" stays a class, and so do train/ and test/ folders that
// hold images directly. Files directly in root are unlabeled either way.
func DetectLayout(root string) (Layout, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return Layout{}, fmt.Errorf("images %s: %w", root, unwrapPathErr(err))
	}
	var named, other []string
	parts := map[string]string{}
	classes := false
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !isDirEntry(root, e) {
			continue
		}
		part, ok := splitFolders[strings.ToLower(name)]
		if !ok {
			other = append(other, name)
			continue
		}
		named = append(named, name)
		parts[name] = part
		if !classes {
			classes = hasSubdir(filepath.Join(root, name))
		}
	}
	sort.Strings(named)
	sort.Strings(other)
	switch {
	case len(named) == 0:
		return Layout{}, nil
	case len(other) > 0:
		return Layout{Note: fmt.Sprintf("folders %s are named like split folders, but %s %s not: every first-level folder is a class (the split layout needs only train/val/validation/test at the first level)",
			strings.Join(named, ", "), strings.Join(other, ", "), map[bool]string{true: "is", false: "are"}[len(other) == 1])}, nil
	case !classes:
		return Layout{Note: fmt.Sprintf("folders %s hold no class folders: they are read as classes (the split layout is DIR/%s/<class>/...)",
			strings.Join(named, ", "), named[0])}, nil
	}
	var desc []string
	for _, n := range named {
		what := "held out"
		if parts[n] == store.PartTrain {
			what = "training split"
		}
		desc = append(desc, n+" → "+what)
	}
	return Layout{Splits: true, Parts: parts, Note: "split layout: the first-level folder is the split (" + strings.Join(desc, ", ") +
		"), the second the class; these images keep that split"}, nil
}

func isDirEntry(dir string, e os.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&os.ModeSymlink != 0 {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		return err == nil && fi.IsDir()
	}
	return false
}

func hasSubdir(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && isDirEntry(dir, e) {
			return true
		}
	}
	return false
}

// splitIf gives an input its folder's split only when it is labeled:
// unlabeled images are never in the split.
func splitIf(split string, labeled bool) string {
	if !labeled {
		return ""
	}
	return split
}

// checkSplitOption validates extract --split against the input.
func checkSplitOption(o ExtractOptions) error {
	switch o.Split {
	case "":
		return nil
	case store.PartTrain, store.PartTest:
	default:
		return usagef("split %q: want train or test", o.Split)
	}
	if o.Images != "" {
		lay, err := DetectLayout(o.Images)
		if err != nil {
			return err
		}
		if lay.Splits {
			return usageKindf(ErrSplitFolders, "split %s: %s has split folders (%s), which set each image's split already",
				o.Split, o.Images, strings.Join(sortedKeys(lay.Parts), ", "))
		}
	}
	return nil
}

// sortedKeys lists m's keys, sorted (nil for an empty map).
func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// withSplit gives every input of a run the split of extract --split.
func withSplit(emit func(Input) error, split string) func(Input) error {
	if split == "" {
		return emit
	}
	return func(in Input) error {
		in.Split = split
		return emit(in)
	}
}

// maxRelabelNotes bounds the per-image relabel lines of a run.
const maxRelabelNotes = 20

// relabeled reports the images whose label a batch changed: one note each
// up to maxRelabelNotes, then one saying the rest are only counted.
func (e *engine) relabeled(rs []store.Relabel) {
	for _, r := range rs {
		e.relabels++
		switch {
		case e.relabels <= maxRelabelNotes:
			e.note(fmt.Sprintf("relabeled %s: %s → %s", r.Path, labelName(r.Old), labelName(r.New)))
		case e.relabels == maxRelabelNotes+1:
			e.note(fmt.Sprintf("more than %d images relabeled: the rest are counted in the run summary, not listed", maxRelabelNotes))
		}
	}
}

func labelName(l string) string {
	if l == "" {
		return "(no label)"
	}
	return fmt.Sprintf("%q", l)
}

// layoutNote tells the user how --images was read, when it matters.
func (e *engine) layoutNote() {
	if e.o.Images == "" {
		return
	}
	if lay, err := DetectLayout(e.o.Images); err == nil && lay.Note != "" {
		e.note(lay.Note)
	}
}
