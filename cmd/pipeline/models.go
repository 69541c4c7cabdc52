package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"pipeline/extract"
	"pipeline/extract/fetch"
)

func init() {
	register(command{"models", "list, pull, add or remove models; generate test architectures", cmdModels})
}

func cmdModels(e *env, args []string) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "list", "ls":
		return modelsList(e, args)
	case "pull":
		return modelsPull(e, args)
	case "add":
		return modelsAdd(e, args)
	case "remove", "rm":
		return modelsRemove(e, args)
	case "gen", "generate":
		return modelsGen(e, args)
	case "_load": // checkModelLoads's child
		return modelsLoad(e, args)
	}
	return usageError("models: unknown subcommand %q (want list, pull, add, remove or gen)", sub)
}

type modelRow struct {
	Name       string             `json:"name"`
	Kind       string             `json:"kind"` // builtin, local, generated
	Format     string             `json:"format"`
	Size       int64              `json:"size,omitempty"`
	SHA256     string             `json:"sha256,omitempty"`
	MD5        string             `json:"md5,omitempty"` // the upstream identity of a Keras file
	Input      string             `json:"input"`
	Preprocess extract.Preprocess `json:"preprocess"` // the object feature_sets.preprocess holds
	Aliases    string             `json:"aliases,omitempty"`
	Cached     bool               `json:"cached"`
	Path       string             `json:"path"`
	About      string             `json:"about,omitempty"`
}

func modelsList(e *env, args []string) error {
	fs := newFlags(e, "models list", "models [list] [--json]")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cat, err := extract.LoadCatalog("")
	if err != nil {
		return err
	}
	for _, w := range cat.Warnings() {
		e.warnf("%s", w)
	}
	var rows []modelRow
	for _, m := range cat.Entries() {
		path, cached := cat.Path(m)
		kind := "builtin"
		if m.Local {
			kind = "local"
		}
		in := "from graph"
		if m.InputDims != [4]int{} {
			in = fmt.Sprintf("%s %dx%dx%dx%d", m.Input, m.InputDims[0], m.InputDims[1], m.InputDims[2], m.InputDims[3])
		}
		sha := m.SHA256
		if sha == "" && cached { // known by MD5 upstream (Keras): the SHA-256 recorded when it verified
			sha = fetch.RecordedSHA256(path)
		}
		rows = append(rows, modelRow{Name: m.Name, Kind: kind, Format: m.Format, Size: m.Size, SHA256: sha, MD5: m.MD5, Input: in,
			Preprocess: m.Preprocess, Aliases: m.Aliases, Cached: cached, Path: path, About: m.Source})
	}
	for _, g := range extract.GeneratedModels() {
		path := extract.GeneratedPath(cat.Dir(), g.Name)
		_, cached := statOK(path)
		family := "vgg"
		if strings.HasPrefix(g.Name, "resnet") {
			family = "resnet"
		}
		rows = append(rows, modelRow{Name: g.Name, Kind: "generated", Format: "onnx", Input: "data Nx3x224x224",
			Preprocess: extract.Presets["torch"], Aliases: family, Cached: cached, Path: path, About: g.About})
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tFORMAT\tSIZE\tSHA256\tINPUT\tPREPROCESS\tLAYER NAMES\tCACHED")
	for _, r := range rows {
		size, sha := "-", "-"
		if r.Size > 0 {
			size = fmt.Sprintf("%.1f MB", float64(r.Size)/1e6)
		}
		if r.SHA256 != "" {
			sha = r.SHA256[:12] + "…"
		} else if r.MD5 != "" {
			sha = "md5:" + r.MD5[:8] + "…"
		}
		cached := "no"
		if r.Cached {
			cached = "yes"
		}
		pre := r.Preprocess.String()
		if i := strings.Index(pre, " ("); i > 0 {
			pre = pre[:i]
		}
		aliases := r.Aliases
		if aliases == "" {
			aliases = "found in graph"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, r.Format, size, sha, r.Input, pre, aliases, cached)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\ncache: %s\n`pipeline models pull NAME` downloads a builtin model; generated architectures have random weights (tests, benchmarks, demos) and are written on first use.\nLAYER NAMES is the family of --layer aliases the model answers to: vgg = block1_pool..block5_pool, flatten, fc1, fc2, predictions; resnet = conv1_relu, pool1_pool, convS_blockB_out, avg_pool, predictions; keras models answer to every Keras layer name (`pipeline layers --model NAME`).\nKeras: `pipeline models pull keras-vgg16` uses ~/.keras/models when the file is there; `pipeline models add NAME --file X.h5` converts your own Keras weights file.\n", cat.Dir())
	return nil
}

func modelsPull(e *env, args []string) error {
	fs := newFlags(e, "models pull", "models pull NAME [--url URL]")
	url := fs.String("url", "", "try this URL first (the file must still match the catalog's size and sha256)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("models pull: want one model name")
	}
	if g, ok := extract.LookupGenerated(pos[0]); ok {
		cat, err := extract.LoadCatalog("")
		if err != nil {
			return err
		}
		path, sha, err := g.Ensure(cat.Dir())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: generated %s (sha256 %s)\n", g.Name, path, sha)
		return nil
	}
	cat, err := extract.LoadCatalog("")
	if err != nil {
		return err
	}
	opts := extract.PullOptions{URL: *url, Fetch: fetch.Options{IsTTY: e.tty, Logf: func(f string, a ...any) { e.infof(f, a...) }}}
	if !e.quiet && !e.jsonLog {
		opts.Fetch.Progress = e.stderr
	}
	p, err := cat.Pull(e.ctx, pos[0], opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: %s (verified)\n", pos[0], p.Model)
	if p.Config != "" {
		fmt.Fprintf(e.stdout, "%s: %s (verified)\n", pos[0], p.Config)
	}
	return nil
}

func modelsAdd(e *env, args []string) error {
	fs := newFlags(e, "models add", "models add NAME --file PATH [--config PATH] [--preprocess caffe|torch|tf|keras] [--size ...]")
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

func modelsRemove(e *env, args []string) error {
	fs := newFlags(e, "models remove", "models remove NAME")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("models remove: want one model name")
	}
	cat, err := extract.LoadCatalog("")
	if err != nil {
		return err
	}
	if err := cat.Remove(pos[0]); err != nil {
		return orUsage(err)
	}
	fmt.Fprintf(e.stdout, "%s: removed from the registry (the file itself is untouched)\n", pos[0])
	return nil
}

func modelsGen(e *env, args []string) error {
	fs := newFlags(e, "models gen", "models gen NAME... (generated architectures: see `pipeline models`)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		var names []string
		for _, g := range extract.GeneratedModels() {
			names = append(names, g.Name)
		}
		return usageError("models gen: want one or more of %s", strings.Join(names, ", "))
	}
	cat, err := extract.LoadCatalog("")
	if err != nil {
		return err
	}
	for _, name := range pos {
		g, ok := extract.LookupGenerated(name)
		if !ok {
			return usageError("models gen: %q is not a generated architecture", name)
		}
		path, sha, err := g.Ensure(cat.Dir())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %s (sha256 %s)\n", name, path, sha)
	}
	return nil
}
