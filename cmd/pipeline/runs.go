package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"pipeline/store"
)

// runJSON is a run in `pipeline runs --json`: the store's row plus its
// duration.
type runJSON struct {
	store.Run
	DurationSeconds *float64 `json:"duration_seconds"` // nil while running
}

func cmdRuns(e *env, args []string) error {
	fs := newFlags(e, "runs", "runs [flags]")
	db := addDBFlag(fs)
	limit := fs.Int("limit", 20, "show the latest N runs (0 = all)")
	status := fs.String("status", "", "only runs with these statuses: running, ok, partial, interrupted, failed, abandoned (comma-separated)")
	command := fs.String("command", "", "only runs of this command (extract, merge, predict, fit, sql)")
	asJSON := fs.Bool("json", false, "print a JSON array, newest first")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("runs: unexpected argument %q (the failures of a run: pipeline sql -f last_failures --param run=ID)", pos[0])
	}
	if *limit < 0 {
		return usageError("runs: --limit %d must be 0 (all) or more", *limit)
	}
	want := map[string]bool{}
	for _, s := range commaList(*status) {
		switch s {
		case store.RunRunning, store.RunOK, store.RunPartial, store.RunInterrupted, store.RunFailed, store.RunAbandoned:
			want[s] = true
		default:
			return usageError("runs: --status %q: want running, ok, partial, interrupted, failed or abandoned", s)
		}
	}
	d, err := store.Open(*db, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer d.Close()
	// Filters apply before the limit, so read them all when filtering;
	// runs tables are small (one row per command).
	n := *limit
	if len(want) > 0 || *command != "" {
		n = 0
	}
	all, err := d.Runs(e.ctx, n)
	if err != nil {
		return err
	}
	var runs []store.Run
	for _, r := range all {
		if (len(want) > 0 && !want[r.Status]) || (*command != "" && r.Command != *command) {
			continue
		}
		if *limit > 0 && len(runs) == *limit {
			break
		}
		runs = append(runs, r)
	}
	if *asJSON {
		out := make([]runJSON, 0, len(runs))
		for _, r := range runs {
			j := runJSON{Run: r}
			if !r.EndedAt.IsZero() {
				s := r.EndedAt.Sub(r.StartedAt).Seconds()
				j.DurationSeconds = &s
			}
			out = append(out, j)
		}
		return writeJSON(e, out)
	}
	if len(runs) == 0 {
		fmt.Fprintln(e.stdout, "no runs")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCOMMAND\tSTATUS\tSTARTED\tDURATION\tSEEN\tEXTRACTED\tPRESENT\tDUPLICATES\tFAILED\tEXIT\tMESSAGE")
	for _, r := range runs {
		exit := "-"
		if r.ExitCode != nil {
			exit = strconv.Itoa(*r.ExitCode)
		}
		cmd := r.Command
		if r.Shard != "" {
			cmd += " " + r.Shard // the shard of the inputs it took
		}
		if r.Merged {
			cmd += " (merged)" // copied from another database by pipeline merge
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", r.ID, cmd, r.Status,
			r.StartedAt.Local().Format("2006-01-02 15:04:05"), runDuration(r), r.Seen, r.Extracted, r.Present,
			r.Duplicates, r.Failed, exit, oneLine(r.Message, 80))
	}
	return tw.Flush()
}

// runDuration is how long a run took, or has been running.
func runDuration(r store.Run) string {
	if r.StartedAt.IsZero() {
		return "-"
	}
	if r.EndedAt.IsZero() {
		if r.Status == store.RunRunning {
			return "running " + fmtDuration(time.Since(r.StartedAt))
		}
		return "-"
	}
	d := r.EndedAt.Sub(r.StartedAt)
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmtDuration(d)
}

// oneLine shortens a message for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-3]) + "..."
	}
	return s
}
