package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"pipeline/pipeline"
	"pipeline/store"
)

func cmdMerge(e *env, args []string) error {
	fs := newFlags(e, "merge", "merge [flags] --into ALL.db SHARD.db...")
	into := fs.String("into", "", "the database to merge into (created if missing)")
	allow := fs.Bool("allow-label-conflicts", false, "list label conflicts (same content, different labels) but exit 0")
	wait := addWaitFlag(fs, "")
	asJSON := fs.Bool("json", false, "print the summary as JSON on stdout")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *into == "" {
		return usageError("merge: --into is required (the database to merge into)")
	}
	var sources []string
	for _, p := range pos {
		// A pattern the shell did not expand (quoted, or sh without
		// matches) is expanded here, so manifests may quote it.
		if m, err := filepath.Glob(p); err == nil && len(m) > 0 && m[0] != p {
			sources = append(sources, m...)
			continue
		}
		if _, ok := statOK(p); !ok {
			return usageError("merge: %s: no such database", p)
		}
		sources = append(sources, p)
	}
	if len(sources) == 0 {
		return usageError("merge: give the databases to merge (e.g. shard-*.db)")
	}
	opts := pipeline.MergeOptions{Into: *into, Sources: sources, AllowLabelConflicts: *allow, Wait: *wait, Args: e.args,
		Progress: func(src string, st store.MergeStats) {
			if !e.quiet && e.tty {
				fmt.Fprintf(e.stderr, "\r%s: %d images, %d vectors   ", filepath.Base(src), st.Images, st.Vectors)
			}
		}}
	sum, err := pipeline.Merge(e.ctx, opts)
	if e.tty && !e.quiet {
		fmt.Fprintln(e.stderr)
	}
	if sum.RunID == 0 && err != nil {
		return err
	}
	if *asJSON {
		if jerr := writeJSON(e, sum); jerr != nil {
			return jerr
		}
		return err
	}
	printMergeSummary(e, sum)
	return err
}

func printMergeSummary(e *env, s pipeline.MergeSummary) {
	w := e.stdout
	t := s.Totals
	fmt.Fprintf(w, "run %d %s: %d databases into %s: %d images (%d new), %d paths, %d vectors, %d runs, %d failures, %d split rows copied (%.1fs)\n",
		s.RunID, s.Status, len(s.Sources), s.Into, t.Images, t.NewImages, t.Paths, t.Vectors, t.Runs, t.Failures, t.Splits, s.WallSeconds)
	for _, src := range s.Sources {
		st := src.Stats
		fmt.Fprintf(w, "  %s: %d images (%d new), %d vectors\n", src.Path, st.Images, st.NewImages, st.Vectors)
	}
	for _, n := range s.NewFeatureSets {
		fmt.Fprintf(w, "  new feature set %s\n", n)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(s.LabelConflicts) > 0 {
		fmt.Fprintf(w, "%d label conflicts (same content, different labels; the image keeps its canonical path's label):\n", len(s.LabelConflicts))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SHA256\tKEPT\tLABEL\tPATH")
		for _, c := range s.LabelConflicts {
			for i, p := range c.Paths {
				sha, kept := "", ""
				if i == 0 {
					sha, kept = c.SHA256[:12], c.Label
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", sha, kept, p.Label, p.Path)
			}
		}
		tw.Flush()
	}
}
