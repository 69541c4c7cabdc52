package main

import "encoding/json"

// writeJSON prints v as indented JSON on stdout (--json).
func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
