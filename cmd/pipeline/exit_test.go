package main

import (
	"pipeline/extract/keras"

	"context"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"pipeline/classify"
	"pipeline/errclass"
	"pipeline/extract"
	"pipeline/extract/fetch"
	"pipeline/extract/onnx"
	"pipeline/pipeline"
	"pipeline/store"
)

// sentinels is every exported sentinel error of the repository and the exit
// code it must give, wrapped or not. TestExitCode_EverySentinelListed keeps
// the list complete.
var sentinels = map[string]struct {
	err  error
	code int
}{
	"classify.ErrBadData":           {classify.ErrBadData, 5},
	"classify.ErrBadModel":          {classify.ErrBadModel, 6},
	"classify.ErrBadParam":          {classify.ErrBadParam, 2},
	"classify.ErrDimMismatch":       {classify.ErrDimMismatch, 5},
	"classify.ErrTooFewClasses":     {classify.ErrTooFewClasses, 5},
	"classify.ErrTooFewSamples":     {classify.ErrTooFewSamples, 5},
	"classify.ErrDiverged":          {classify.ErrDiverged, 5},
	"classify.ErrUnknownClassifier": {classify.ErrUnknownClassifier, 2},
	"classify.ErrUnknownKernel":     {classify.ErrUnknownKernel, 2},
	"extract.ErrBackendUnavailable": {extract.ErrBackendUnavailable, 2},
	"extract.ErrCorrupt":            {extract.ErrCorrupt, 5},
	"extract.ErrEmptyFile":          {extract.ErrEmptyFile, 5},
	"extract.ErrLoadMemory":         {extract.ErrLoadMemory, 1},
	"extract.ErrModelChanged":       {extract.ErrModelChanged, 1},
	"extract.ErrModelExists":        {extract.ErrModelExists, 2},
	"extract.ErrNotCached":          {extract.ErrNotCached, 1},
	"extract.ErrNotImage":           {extract.ErrNotImage, 5},
	"extract.ErrTooLarge":           {extract.ErrTooLarge, 5},
	"extract.ErrUnknownLayer":       {extract.ErrUnknownLayer, 2},
	"extract.ErrUnknownModel":       {extract.ErrUnknownModel, 2},
	"extract.ErrModelSpec":          {extract.ErrModelSpec, 2},
	"extract.ErrPreprocess":         {extract.ErrPreprocess, 5},
	"keras.ErrNotKeras":             {keras.ErrNotKeras, 2},
	"keras.ErrNotHDF5":              {keras.ErrNotHDF5, 2},
	"extract.ErrUnsupported":        {extract.ErrUnsupported, 5},
	"fetch.ErrMismatch":             {fetch.ErrMismatch, 1},
	"onnx.ErrUnknownTensor":         {onnx.ErrUnknownTensor, 1},
	"onnx.ErrUnsupported":           {onnx.ErrUnsupported, 1},
	"pipeline.ErrAmbiguous":         {pipeline.ErrAmbiguous, 2},
	"pipeline.ErrInterrupted":       {pipeline.ErrInterrupted, 130},
	"pipeline.ErrNoFeatures":        {pipeline.ErrNoFeatures, 5},
	"pipeline.ErrNoVector":          {pipeline.ErrNoVector, 5},
	"pipeline.ErrPartial":           {pipeline.ErrPartial, 3},
	"pipeline.ErrUnknownImage":      {pipeline.ErrUnknownImage, 2},
	"pipeline.ErrUsage":             {pipeline.ErrUsage, 2},
	"store.ErrBadMetric":            {store.ErrBadMetric, 2},
	"store.ErrClassifierExists":     {store.ErrClassifierExists, 2},
	"store.ErrDimMismatch":          {store.ErrDimMismatch, 5},
	"store.ErrLocked":               {store.ErrLocked, 4},
	"store.ErrNoDatabase":           {store.ErrNoDatabase, 2},
	"store.ErrNonFinite":            {store.ErrNonFinite, 5},
	"store.ErrNotDatabase":          {store.ErrNotDatabase, 1},
	"store.ErrNotLocked":            {store.ErrNotLocked, 1},
	"store.ErrParams":               {store.ErrParams, 2},
	"store.ErrReadOnly":             {store.ErrReadOnly, 2},
	"store.ErrSchemaNew":            {store.ErrSchemaNew, 1},
	"store.ErrSchemaMismatch":       {store.ErrSchemaMismatch, 6},
	"store.ErrHardLinked":           {store.ErrHardLinked, 1},
	"store.ErrSchemaOld":            {store.ErrSchemaOld, 1},
	"store.ErrSplitFrac":            {store.ErrSplitFrac, 5},
	"store.ErrUnknownClassifier":    {store.ErrUnknownClassifier, 2},
	"store.ErrUnknownFeatureSet":    {store.ErrUnknownFeatureSet, 2},
	"store.ErrUnknownRun":           {store.ErrUnknownRun, 2},
	"store.ErrVectorConflict":       {store.ErrVectorConflict, 6},
	"pipeline.ErrNoHeldOut":         {pipeline.ErrNoHeldOut, 5},
	"pipeline.ErrLabelConflicts":    {pipeline.ErrLabelConflicts, 5},
	"store.ErrIncomparable":         {store.ErrIncomparable, 5},
	"store.ErrSameDatabase":         {store.ErrSameDatabase, 2},
	"store.ErrCorrupt":              {store.ErrCorrupt, 6},
	"extract.ErrUnsupportedOp":      {extract.ErrUnsupportedOp, 2},
	"extract.ErrEngine":             {extract.ErrEngine, 2},
	"extract.ErrNoBF16":             {extract.ErrNoBF16, 2},
	"store.ErrZeroVector":           {store.ErrZeroVector, 5},
	"extract.ErrNoPreprocess":       {extract.ErrNoPreprocess, 2},
	"extract.ErrNoNetworkDef":       {extract.ErrNoNetworkDef, 2},
	"extract.ErrKerasFile":          {extract.ErrKerasFile, 2},
	"pipeline.ErrNotDir":            {pipeline.ErrNotDir, 1},
	"pipeline.ErrListIsDir":         {pipeline.ErrListIsDir, 2},
	"pipeline.ErrNoSetQuery":        {pipeline.ErrNoSetQuery, 2},
	"pipeline.ErrSetModel":          {pipeline.ErrSetModel, 2},
	"pipeline.ErrNoAliases":         {pipeline.ErrNoAliases, 2},
	"pipeline.ErrSplitFolders":      {pipeline.ErrSplitFolders, 2},
}

func TestExitCode_Sentinels(t *testing.T) {
	for name, s := range sentinels {
		t.Run(name, func(t *testing.T) {
			for _, err := range []error{s.err, fmt.Errorf("context: %w", s.err), fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", s.err))} {
				if got := ExitCode(err); got != s.code {
					t.Errorf("ExitCode(%v) = %d, want %d", err, got, s.code)
				}
			}
		})
	}
}

// TestExitCode_Types: the error types that stand for a sentinel have its code.
func TestExitCode_Types(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{&store.LockedError{Path: "/x/f.db"}, 4},
		{&extract.UnknownModelError{Name: "vgg17"}, 2},
		{&extract.NotCachedError{Name: "vgg16"}, 1},
		{&fetch.MismatchError{}, 1},
		{&store.QueryError{Err: store.ErrParams}, 2},
		{&store.QueryError{Err: errors.New("disk I/O error")}, 1},
		{usageError("bad"), 2},
		{withHint(store.ErrLocked, "wait"), 4},
		{errclass.Wrap(errclass.Usage, store.ErrNotDatabase), 2}, // the outermost class wins
		{context.Canceled, 130},
		{fmt.Errorf("x: %w", context.Canceled), 130},
		{flag.ErrHelp, 0},
		{errors.New("anything else"), 1},
		{nil, 0},
	} {
		if got := ExitCode(c.err); got != c.code {
			t.Errorf("ExitCode(%#v) = %d, want %d", c.err, got, c.code)
		}
	}
}

// TestExitCode_EverySentinelListed: every exported package-level Err* of the
// non-test code is made with errclass.New (so it has a class) and is in the
// table above (so its exit code is pinned).
func TestExitCode_EverySentinelListed(t *testing.T) {
	root := "../.."
	var found []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bench") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "Err") || i >= len(vs.Values) {
						continue
					}
					name := f.Name.Name + "." + n.Name
					found = append(found, name)
					if alias, ok := vs.Values[i].(*ast.SelectorExpr); ok && strings.HasPrefix(alias.Sel.Name, "Err") {
						// Another package's sentinel under this package's name
						// (extract.ErrNotKerasModel = keras.ErrNotKeras): the
						// original carries the class and must be listed.
						if target := fmt.Sprint(alias.X) + "." + alias.Sel.Name; sentinels[target].err == nil {
							t.Errorf("%s (%s) aliases %s, which is not in the exit-code table of this test", name, path, target)
						}
						continue
					}
					call, ok := vs.Values[i].(*ast.CallExpr)
					sel, ok2 := func() (*ast.SelectorExpr, bool) {
						if !ok {
							return nil, false
						}
						s, ok := call.Fun.(*ast.SelectorExpr)
						return s, ok
					}()
					if !ok2 || fmt.Sprint(sel.X) != "errclass" || sel.Sel.Name != "New" {
						t.Errorf("%s (%s) is not made with errclass.New: it has no class", name, path)
					}
					if _, ok := sentinels[name]; !ok {
						t.Errorf("%s (%s) is not in the exit-code table of this test", name, path)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(found)
	if len(found) < len(sentinels) {
		t.Errorf("found %d sentinels in the source, the table has %d: %v", len(found), len(sentinels), found)
	}
}
