package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"pipeline/extract"
	"pipeline/extract/fetch"
)

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
	fs := newFlags(e, "models list", "models [list] [flags] (or: models pull|add|remove|gen ...; pipeline models SUB -h)")
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
