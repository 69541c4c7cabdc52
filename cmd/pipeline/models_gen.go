package main

import (
	"fmt"
	"strings"

	"pipeline/extract"
)

func modelsGen(e *env, args []string) error {
	fs := newFlags(e, "models gen", "models gen NAME...")
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
