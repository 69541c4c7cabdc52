package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"pipeline/errclass"
	"pipeline/store"
)

// checkJSON is `pipeline check --json`: the store's report, whether it is
// healthy, and the canonical path of each problem's image.
type checkJSON struct {
	DB      string `json:"db"`
	Healthy bool   `json:"healthy"`
	store.Report
	Problems []problemJSON `json:"problems"`
}

type problemJSON struct {
	store.Problem
	Path string `json:"path,omitempty"`
}

func cmdCheck(e *env, args []string) error {
	fs := newFlags(e, "check", "check [flags]")
	db := addDBFlag(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("check: unexpected argument %q (the database is --db)", pos[0])
	}
	d, err := store.Open(*db, store.Options{ReadOnly: true})
	if errors.Is(err, store.ErrCorrupt) {
		// Too damaged to open (say, half of it is gone): that is the
		// check's finding, reported like the others.
		return reportCheck(e, *asJSON, checkJSON{DB: *db, Report: store.Report{Counts: map[string]int{store.ProblemIntegrity: 1}},
			Problems: []problemJSON{{Problem: store.Problem{Kind: store.ProblemIntegrity, Message: err.Error()}}}})
	}
	if err != nil {
		return err
	}
	defer d.Close()
	rep, err := d.Check(e.ctx)
	if err != nil {
		return err
	}
	out := checkJSON{DB: d.Path(), Healthy: rep.Healthy(), Report: rep, Problems: []problemJSON{}}
	for _, p := range rep.Problems {
		pj := problemJSON{Problem: p}
		if p.ImageID != 0 {
			// Best effort: the image row may itself be what is missing.
			if im, ok, err := d.Image(e.ctx, p.ImageID); err == nil && ok {
				pj.Path = im.Path
			}
		}
		out.Problems = append(out.Problems, pj)
	}
	return reportCheck(e, *asJSON, out)
}

// reportCheck prints the report and returns exit 6 when it has problems.
func reportCheck(e *env, asJSON bool, out checkJSON) error {
	if asJSON {
		if err := writeJSON(e, out); err != nil {
			return err
		}
	} else {
		printCheck(e, out)
	}
	if !out.Healthy {
		total := 0
		for _, n := range out.Counts {
			total += n
		}
		return errclass.Errorf(errclass.Integrity, "check: %s: %d problems found", out.DB, total)
	}
	return nil
}

func printCheck(e *env, c checkJSON) {
	w := e.stdout
	fmt.Fprintf(w, "database %s: %d images, %d vectors", c.DB, c.Images, c.Vectors)
	if c.Pathless > 0 {
		fmt.Fprintf(w, ", %d images no longer at any path (their vectors stay valid)", c.Pathless)
	}
	fmt.Fprintln(w)
	if c.Healthy {
		fmt.Fprintln(w, "ok: integrity, foreign keys, vector lengths and values, canonical paths")
		return
	}
	kinds := make([]string, 0, len(c.Counts))
	for k := range c.Counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, c.Counts[k]))
	}
	fmt.Fprintf(w, "UNHEALTHY: %s\n", strings.Join(parts, ", "))
	for _, p := range c.Problems {
		where := ""
		if p.Path != "" {
			where = " (" + p.Path + ")"
		}
		fmt.Fprintf(w, "  %s: %s%s\n", p.Kind, p.Message, where)
	}
	for _, k := range kinds {
		if shown := countKind(c.Problems, k); shown < c.Counts[k] {
			fmt.Fprintf(w, "  ... and %d more %s problems (at most %d per kind are listed)\n", c.Counts[k]-shown, k, shown)
		}
	}
}

func countKind(ps []problemJSON, kind string) int {
	n := 0
	for _, p := range ps {
		if p.Kind == kind {
			n++
		}
	}
	return n
}
