package main

import "strings"

// cmdModels runs a subcommand of `pipeline models` (modelsCommands).
func cmdModels(e *env, args []string) error {
	sub := modelsCommands[0].name
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	for _, c := range modelsCommands {
		if c.name == sub {
			return c.run(e, args)
		}
	}
	e.cmdName, e.usageLine = "models", "pipeline models [list|pull|add|remove|gen] [flags] [args]"
	return usageError("models: unknown subcommand %q (want list, pull, add, remove or gen)", sub)
}
