package main

import (
	"fmt"

	"pipeline/extract"
	"pipeline/extract/fetch"
)

func modelsPull(e *env, args []string) error {
	fs := newFlags(e, "models pull", "models pull [flags] NAME")
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
