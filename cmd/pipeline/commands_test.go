package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// mainIn runs Main in this process (what the binary runs) with its own
// buffers and database.
func mainIn(t *testing.T, args ...string) result {
	t.Helper()
	t.Setenv("PIPELINE_DB", filepath.Join(t.TempDir(), "f.db"))
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// tableCommands is every command of the table with the words that run it:
// "fit", "models add", ... (aliases and the hidden _load left out).
func tableCommands() [][]string {
	var out [][]string
	for _, c := range commands {
		out = append(out, []string{c.name})
	}
	for _, c := range modelsCommands {
		if c.summary != "" {
			out = append(out, []string{"models", c.name})
		}
	}
	return out
}

// TestCommands_Table walks the command table: `pipeline help` lists every
// command in the table's order; each command's -h prints its usage line
// and all its flags (exit 0); a bad flag prints the error, the usage line
// and a one-line hint, not the flag list (exit 2).
func TestCommands_Table(t *testing.T) {
	help := mainIn(t, "help")
	help.want(t, 0)
	at := 0
	for _, c := range commands {
		i := strings.Index(help.stdout[at:], "\n  "+c.name+" ")
		if i < 0 {
			t.Errorf("pipeline help does not list %q after the commands before it in the table:\n%s", c.name, help.stdout)
			continue
		}
		at += i + 1
	}
	for _, words := range tableCommands() {
		name := strings.Join(words, " ")
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			usage, cmd := "usage: pipeline "+name, name
			if name == "models" || name == "models list" {
				// models without a subcommand is models list.
				usage, cmd = "usage: pipeline models [list]", "models list"
			}
			h := mainIn(t, append(words, "-h")...)
			h.want(t, 0, usage, "\nFlags:\n", "  -quiet\n", "  -log-format value\n")
			if n := strings.Count(h.stderr, "\n  -"); n < 2 {
				t.Errorf("pipeline %s -h lists %d flags, want all of them:\n%s", name, n, h.stderr)
			}

			bad := mainIn(t, append(words, "--no-such-flag")...)
			bad.want(t, 2, "pipeline: "+cmd+": flag provided but not defined: -no-such-flag\n",
				"\n"+usage, "\npipeline: hint: run 'pipeline "+cmd+" -h' for the flags\n")
			if strings.Contains(bad.stderr, "Flags:") || strings.Contains(bad.stderr, "-quiet") {
				t.Errorf("a bad flag prints the flag list:\n%s", bad.stderr)
			}
			if lines := strings.Count(bad.stderr, "\n"); lines != 3 {
				t.Errorf("a bad flag prints %d lines, want 3 (error, usage, hint):\n%s", lines, bad.stderr)
			}
			if bad.stdout != "" {
				t.Errorf("a bad flag writes on stdout: %q", bad.stdout)
			}
		})
	}
}

// TestCommands_UsageErrors: a missing argument or a bad value is reported
// with the command's usage line and the -h hint (exit 2); an error that is
// not the command line's fault gets neither.
func TestCommands_UsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"fit", "--layer", "fc2"}, "fit: --name is required"},
		{[]string{"eval"}, "eval: want one classifier name"},
		{[]string{"predict"}, "predict: want a classifier name"},
		{[]string{"similar"}, "similar: want one image"},
		{[]string{"merge", "a.db"}, "merge: --into is required"},
		{[]string{"extract", "--model", "m", "--layer", "fc2", "--batch", "0"}, "extract: --batch 0: want 1 or more"},
		{[]string{"predict", "x", "a.png", "--top", "0"}, "predict: --top 0: want 1 or more"},
		{[]string{"fit", "--name", "x", "--C", "NaN"}, "fit: --C NaN: want a finite number"},
		{[]string{"models", "add", "x"}, "models add: want NAME and --file PATH"},
		{[]string{"models", "frobnicate"}, `models: unknown subcommand "frobnicate"`},
	} {
		name := c.args[0]
		if name == "models" {
			name = "models " + c.args[1]
			if c.args[1] == "frobnicate" {
				name = "models"
			}
		}
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			r := mainIn(t, c.args...)
			r.want(t, 2, "pipeline: "+c.msg, "\nusage: pipeline "+strings.Fields(name)[0], "\npipeline: hint: run 'pipeline "+name+" -h' for the flags\n")
		})
	}
	// A hint the command gives replaces the -h one; the usage line stays.
	r := mainIn(t, "extract", "--model", "m", "--layer", "fc2", "--shard", "3/2")
	r.want(t, 2, "extract: --shard", "\nusage: pipeline extract [flags]")
	// Not the command line's fault: no usage line, no -h hint.
	r = mainIn(t, "eval", "nosuch", "--db", filepath.Join(t.TempDir(), "none.db"))
	if r.code == 0 || strings.Contains(r.stderr, "usage:") || strings.Contains(r.stderr, "-h' for the flags") {
		t.Errorf("eval of a missing database: exit %d, want no usage line:\n%s", r.code, r.stderr)
	}
}

// TestCommands_UsageErrorJSON: with --log-format json a usage error is one
// object carrying the usage line and the hint.
func TestCommands_UsageErrorJSON(t *testing.T) {
	r := mainIn(t, "fit", "--bogus", "--log-format", "json")
	r.want(t, 2)
	var obj map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stderr)), &obj); err != nil {
		t.Fatalf("stderr is not one JSON object: %v\n%s", err, r.stderr)
	}
	if obj["usage"] != "usage: pipeline fit [flags] --layer NAME --name NAME" || obj["hint"] != "run 'pipeline fit -h' for the flags" || obj["exit_code"] != float64(2) {
		t.Errorf("usage error object: %v", obj)
	}
}
