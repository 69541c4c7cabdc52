package main

import (
	"fmt"

	"pipeline/extract"
)

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
