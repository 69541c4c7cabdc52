package main

import (
	"fmt"

	"pipeline/extract"
)

func modelsAdd(e *env, args []string) error {
	fs := newFlags(e, "models add", "models add [flags] NAME --file PATH")
	file := fs.String("file", "", "the model file (.onnx, .caffemodel, .pb, or a Keras .h5 weights file of VGG16/VGG19/ResNet50)")
	var mf modelFlags
	fs.StringVar(&mf.config, "config", "", "Caffe .prototxt or TensorFlow .pbtxt")
	pool1Pad := fs.String("pool1-pad", "", "Keras legacy ResNet50 (res2a_branch2a naming) only: true = pad before the first max pool (Keras 2.2.3 and later), false = not (Keras 2.0 to 2.2.2); default: what the file's layer list says")
	addPreprocessFlags(fs, &mf.pre, "torch for ONNX, caffe for Caffe, tf for TensorFlow")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *file == "" {
		return usageError("models add: want NAME and --file PATH")
	}
	if isKerasFile(*file) {
		return modelsAddKeras(e, pos[0], *file, mf, *pool1Pad)
	}
	if *pool1Pad != "" {
		return usageError("models add: --pool1-pad is for Keras .h5 files")
	}
	entry, err := extract.NewLocalModel(pos[0], *file, mf.config, mf.pre)
	if err != nil {
		return orUsage(err) // a --file that is missing or not a model: the command line is wrong
	}
	config := ""
	if entry.Config != nil {
		config = entry.Config.Path
	}
	if err := checkModelLoads(e, entry.Path, config); err != nil {
		return err
	}
	cat, err := extract.LoadCatalog("")
	if err != nil {
		return err
	}
	if err := cat.Add(entry); err != nil {
		return err // ErrModelExists: a conflict (exit 2); an unwritable registry is fatal
	}
	fmt.Fprintf(e.stdout, "%s: registered %s (%s, sha256 %s), preprocessing %s\n", entry.Name, entry.Path, entry.Format, entry.SHA256, entry.Preprocess)
	return nil
}
