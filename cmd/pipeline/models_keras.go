package main

import (
	"fmt"
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
func modelsAddKeras(e *env, name, file string, mf modelFlags) error {
	if mf.config != "" {
		return usageError("models add: a Keras .h5 file needs no --config")
	}
	cat, err := extract.LoadCatalog("")
	if err != nil {
		return err
	}
	entry, arch, err := cat.AddKeras(name, file, mf.pre)
	if err != nil {
		return orUsage(err) // ErrNotKerasModel and ErrModelExists carry their class; a missing --file is the command line's fault
	}
	fmt.Fprintf(e.stdout, "%s: registered %s (Keras %s, sha256 %s), preprocessing %s\n", entry.Name, entry.Path, arch, entry.SHA256, entry.Preprocess)
	return nil
}
