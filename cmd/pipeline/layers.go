package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"pipeline/pipeline"
)

type layerJSON struct {
	ID      int      `json:"id"`
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Shape   []int    `json:"shape"`
	Aliases []string `json:"aliases,omitempty"`
	Source  []string `json:"source_names,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// layerNoteJSON is a note on the layer an alias names (an array of these
// rather than an object keyed by alias: keys are field names, docs/JSON.md).
type layerNoteJSON struct {
	Alias string `json:"alias"`
	Note  string `json:"note"`
}

func cmdLayers(e *env, args []string) error {
	fs := newFlags(e, "layers", "layers [flags] --model NAME|PATH")
	var mf modelFlags
	addModelFlags(fs, &mf)
	onlyAliases := fs.Bool("aliases", false, "list only the layers that have an alias")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if mf.model == "" {
		return usageError("layers: --model is required")
	}
	model, err := mf.resolve(false)
	if err != nil {
		return err
	}
	net, g, err := pipeline.OpenNet(e.ctx, model)
	if err != nil {
		return err
	}
	defer net.Close()
	p := model.Preprocess
	if *asJSON {
		out := struct {
			Model  string          `json:"model"`
			Path   string          `json:"path"`
			SHA256 string          `json:"sha256"`
			Input  []int           `json:"input"`
			Family string          `json:"family"`
			Notes  []layerNoteJSON `json:"notes,omitempty"`
			Layers []layerJSON     `json:"layers"`
		}{Model: model.Name, Path: model.Path, SHA256: model.SHA256, Input: []int{1, 3, p.Height, p.Width}, Family: g.Family}
		for _, a := range slices.Sorted(maps.Keys(g.Notes)) {
			out.Notes = append(out.Notes, layerNoteJSON{a, g.Notes[a]})
		}
		for _, l := range g.Layers {
			if *onlyAliases && len(l.Aliases) == 0 {
				continue
			}
			out.Layers = append(out.Layers, layerJSON{l.ID, l.Name, l.Type, l.Shape, l.Aliases, l.Source, l.Note})
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	family := g.Family
	if family == "" {
		family = "none (no VGG or ResNet pattern: use layer names)"
	}
	fmt.Fprintf(e.stdout, "model %s (%s, %s)\nsha256 %s\ninput 1x3x%dx%d, alias family: %s\n\n",
		model.Name, model.Format, model.Path, model.SHA256, p.Height, p.Width, family)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLAYER (OpenCV name)\tTYPE\tOUTPUT\tALIAS\tNOTE")
	for _, l := range g.Layers {
		if *onlyAliases && len(l.Aliases) == 0 {
			continue
		}
		typ := l.Type
		if l.Pool != "" {
			typ += " (" + l.Pool + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Name, typ, l.ShapeString(), strings.Join(l.Aliases, ","), l.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range g.AliasNames() {
		if n, ok := g.Notes[a]; ok {
			fmt.Fprintf(e.stdout, "\nnote: %s: %s", a, n)
		}
	}
	for _, w := range g.Warnings {
		fmt.Fprintf(e.stdout, "\nwarning: %s", w)
	}
	if len(g.Notes)+len(g.Warnings) > 0 {
		fmt.Fprintln(e.stdout)
	}
	return nil
}
