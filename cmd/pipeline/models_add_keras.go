package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"pipeline/extract"
)

// isKerasFile: Keras 2 saves weights and models as HDF5 (.h5, .hdf5,
// .keras before Keras 3).
func isKerasFile(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".h5", ".hdf5":
		return true
	}
	return false
}

// modelsAddKeras registers a Keras weights file: the network is recognised
// from the file's layers, converted to ONNX into the cache, and registered
// with Keras's input convention.
func modelsAddKeras(e *env, name, file string, mf modelFlags, pool1Pad string) error {
	if mf.config != "" {
		return usageError("models add: a Keras .h5 file needs no --config")
	}
	switch pool1Pad {
	case "", "true", "false":
	default:
		return usageError("models add: --pool1-pad %q: want true or false", pool1Pad)
	}
	cat, err := extract.LoadCatalog("")
	if err != nil {
		return err
	}
	entry, arch, err := cat.AddKeras(name, file, mf.pre, pool1Pad)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return orUsage(err) // a --file that names nothing: the command line's fault
	case err != nil:
		return err // ErrNotKerasModel and ErrModelExists carry their class (exit 2); a damaged file is exit 1
	}
	fmt.Fprintf(e.stdout, "%s: registered %s (Keras %s, sha256 %s), preprocessing %s\n", entry.Name, entry.Path, arch, entry.SHA256, entry.Preprocess)
	return nil
}
