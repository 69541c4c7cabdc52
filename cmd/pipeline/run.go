package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"

	"pipeline/errclass"
	"pipeline/store"
)

// env is what every command gets: I/O, logging and the command line.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	args   []string // the full command line, for the runs table
	log    *slog.Logger
	quiet  bool
	// jsonLog: --log-format json; every stderr line is one JSON object.
	jsonLog bool
	// tty is true when stderr is a terminal: progress bars are drawn only then.
	tty bool
	// cmdName and usageLine are the running command's ("models add",
	// "pipeline models add NAME --file PATH ..."), set by newFlags: a
	// usage error prints them.
	cmdName, usageLine string
}

// Main runs the command line args (without the program name), reports the
// error that ended it on stderr and returns the exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := newEnv(ctx, args, stdin, stdout, stderr)
	nc := e.captureNative(jsonLogRequested(args))
	err := e.dispatch(args)
	code := ExitCode(err)
	if err != nil && code != ExitOK {
		e.reportError(err, code)
	}
	nc.restore()
	return code
}

// Run runs the command line args (without the program name) and returns
// the error that ended it, unreported (tests drive it).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return newEnv(ctx, args, stdin, stdout, stderr).dispatch(args)
}

func newEnv(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) *env {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, args: append([]string{"pipeline"}, args...)}
	e.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// Notes on how the database was opened (read as immutable in a
	// read-only directory) go to the log like other notes.
	store.Notify = func(msg string) { e.infof("%s", msg) }
	if jsonLogRequested(args) {
		// JSON from the first line, even when the flags fail to parse.
		e.log = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		e.jsonLog = true
	}
	if f, ok := stderr.(*os.File); ok {
		e.tty = term.IsTerminal(int(f.Fd()))
	}
	return e
}

// reportError writes the final error: "pipeline: MESSAGE", the command's
// usage line after a usage error, and a hint line,
// or with --log-format json one object at level ERROR with the exit code,
// the error's class and the hint.
func (e *env) reportError(err error, code int) {
	hint := hintOf(err)
	usageLine := ""
	if isUsageError(err) && e.usageLine != "" {
		usageLine = "usage: " + e.usageLine
		if hint == "" {
			hint = fmt.Sprintf("run 'pipeline %s -h' for the flags", e.cmdName)
		}
	}
	if e.jsonLog {
		attrs := []any{"exit_code", code, "class", errclass.Of(err).String()}
		if usageLine != "" {
			attrs = append(attrs, "usage", usageLine)
		}
		if hint != "" {
			attrs = append(attrs, "hint", hint)
		}
		e.log.Error(err.Error(), attrs...)
		return
	}
	fmt.Fprintf(e.stderr, "pipeline: %v\n", err)
	if usageLine != "" {
		fmt.Fprintln(e.stderr, usageLine)
	}
	if hint != "" {
		fmt.Fprintf(e.stderr, "pipeline: hint: %s\n", hint)
	}
}

func (e *env) dispatch(args []string) error {
	ctx, stdin, stdout, stderr := e.ctx, e.stdin, e.stdout, e.stderr
	if len(args) == 0 {
		usage(stderr)
		return usageError("no command given")
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			return Run(ctx, []string{args[1], "--help"}, stdin, stdout, stderr)
		}
		usage(stdout)
		return nil
	case "--version", "-version":
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(e, args[1:])
		}
	}
	usage(stderr)
	return usageError("unknown command %q", name)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "pipeline: CNN codes of images into SQLite, and classical classifiers on them.")
	fmt.Fprintln(w, "\nUsage: pipeline COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n`pipeline COMMAND --help` describes a command's flags. Exit codes: see README.md.")
}

// newFlags makes a command's flag set with the flags every command has.
// usageLine is the command's synopsis after "pipeline ": a usage error
// prints it with a hint, `pipeline CMD -h` prints it with every flag.
func newFlags(e *env, name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	e.cmdName, e.usageLine = name, "pipeline "+usageLine
	// The flag package prints the whole flag list on every error; here only
	// -h does (parse turns the output on for it), and a usage error is
	// reported once, by Main, as its usage line and a hint.
	help := &helpOutput{w: e.stderr}
	if jsonLogRequested(e.args[1:]) {
		help.w = io.Discard // every stderr line is JSON
	}
	fs.SetOutput(help)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nFlags:\n", e.usageLine)
		fs.PrintDefaults()
	}
	fs.Func("log-format", "log format on stderr: text or json", func(v string) error {
		switch v {
		case "text":
			e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			e.jsonLog = false
		case "json":
			e.log = slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			e.jsonLog = true
		default:
			return errors.New("want text or json")
		}
		return nil
	})
	fs.BoolFunc("quiet", "only errors on stderr (no progress, no info logs)", func(string) error {
		e.quiet = true
		return nil
	})
	return fs
}

// helpOutput is a flag set's output: silent, except while parse prints
// the help that -h asked for.
type helpOutput struct {
	w  io.Writer
	on bool
}

func (h *helpOutput) Write(p []byte) (int, error) {
	if !h.on {
		return len(p), nil
	}
	return h.w.Write(p)
}

// parse parses flags that may come before, between or after the positional
// arguments (`pipeline predict clf a.jpg --json`); "--" ends flag parsing.
// -h prints the command's flags and returns flag.ErrHelp (exit 0); a bad
// flag or value is a usage error.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				if h, ok := fs.Output().(*helpOutput); ok {
					h.on = true
					fs.Usage()
					h.on = false
				}
				return nil, err
			}
			return nil, &cliError{class: errclass.Usage, err: fmt.Errorf("%s: %w", fs.Name(), err), usage: true}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		// fs.Parse stopped at a positional argument; was it after a "--"?
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// infof logs unless --quiet.
func (e *env) infof(format string, args ...any) {
	if !e.quiet {
		e.log.Info(fmt.Sprintf(format, args...))
	}
}

func (e *env) warnf(format string, args ...any) {
	e.log.Warn(fmt.Sprintf(format, args...))
}

// commaList splits "a,b, c" into its non-empty parts.
func commaList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func statOK(path string) (os.FileInfo, bool) {
	fi, err := os.Stat(path)
	return fi, err == nil
}
