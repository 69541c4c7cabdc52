package main

// command is one `pipeline` command: its name, the line `pipeline help`
// shows for it, and the function that runs it (in NAME.go).
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

// commands is the table of contents of the CLI, in the order `pipeline
// help` lists the commands: extract and inspect, train and use, query and
// maintain. Each command lives in its own file (fit.go, eval.go, ...).
var commands = []command{
	{"extract", "compute CNN codes of images into the database", cmdExtract},
	{"sweep", "compare layers x classifiers by cross-validation and recommend a fit", cmdSweep},
	{"merge", "copy shard databases into one (images, paths, vectors, runs; idempotent)", cmdMerge},
	{"fit", "train a classifier on stored CNN codes", cmdFit},
	{"eval", "score a classifier on the held-out split", cmdEval},
	{"predict", "classify image files with a stored classifier", cmdPredict},
	{"classifiers", "list the stored classifiers: kind, feature set, accuracy, date", cmdClassifiers},
	{"export", "write stored CNN codes as libsvm, CSV or .npy", cmdExport},
	{"similar", "find the stored images nearest to an image by CNN code", cmdSimilar},
	{"sql", "run SQL on the database (sqlite-vec loaded; examples: --list)", cmdSQL},
	{"runs", "list the latest runs: command, status, counts, duration", cmdRuns},
	{"check", "check the database's integrity and consistency (exit 6 if unhealthy)", cmdCheck},
	{"models", "list, pull, add or remove models; generate test architectures", cmdModels},
	{"layers", "list a model's layers, output shapes and aliases", cmdLayers},
	{"version", "tool, OpenCV and backend versions", cmdVersion},
}

// modelsCommands are the subcommands of `pipeline models` (models_NAME.go);
// the first is the default. Aliases share a run function.
var modelsCommands = []command{
	{"list", "list the catalog, registered and generated models (default)", modelsList},
	{"ls", "", modelsList},
	{"pull", "download a builtin model and verify it", modelsPull},
	{"add", "register a local model file (a Keras .h5 is converted)", modelsAdd},
	{"remove", "drop a registered model (the file stays)", modelsRemove},
	{"rm", "", modelsRemove},
	{"gen", "write a generated architecture (random weights)", modelsGen},
	{"generate", "", modelsGen},
	{"_load", "", modelsLoad}, // checkModelLoads's child process
}
