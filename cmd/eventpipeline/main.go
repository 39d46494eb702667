package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `eventpipeline runs an event pipeline with built-in telemetry and reports on it.

Usage:
  eventpipeline demo [flags]          run the sample pipeline, print a summary, write the records
  eventpipeline report [flags] FILE   answer queries about a JSON-lines telemetry file
  eventpipeline worker [flags]        serve the demo's remote events, for demo --worker
  eventpipeline help [COMMAND]        show this help, or a command's

Start with:
  go run ./cmd/eventpipeline demo
  go run ./cmd/eventpipeline report telemetry.jsonl --failed

Exit codes: 0 success, 1 runtime failure (unreadable or malformed file,
unwritable output, backend failure or records a backend did not take),
2 usage error (bad command, flag or argument).
Run 'eventpipeline COMMAND --help' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first interrupt, a second one ends the process at once
	// (demo, waiting for its backends after Ctrl-C, has written its files).
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "-h", "-help", "--help", "help":
		switch {
		case len(rest) == 0:
			fmt.Fprint(stdout, usage)
			return exitOK
		case len(rest) > 1:
			fmt.Fprintf(stderr, "eventpipeline: help takes one COMMAND, got %d\nRun 'eventpipeline --help' for usage.\n", len(rest))
			return exitUsage
		case rest[0] == "demo" || rest[0] == "report" || rest[0] == "worker":
			return run(ctx, []string{rest[0], "--help"}, stdout, stderr)
		}
		fmt.Fprintf(stderr, "eventpipeline: unknown command %q\nRun 'eventpipeline --help' for usage.\n", rest[0])
		return exitUsage
	case "demo":
		err = runDemo(ctx, rest, stdout, stderr)
	case "report":
		err = runReport(rest, os.Stdin, stdout, stderr)
	case "worker":
		err = runWorker(ctx, rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "eventpipeline: unknown command %q\nRun 'eventpipeline --help' for usage.\n", cmd)
		return exitUsage
	}
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "eventpipeline %s: %v\nRun 'eventpipeline %s --help' for usage.\n", cmd, err, cmd)
		return exitUsage
	default:
		// An error may quote recorded text (a remote worker's error): one
		// escaped line per joined error.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "eventpipeline %s: %s\n", cmd, printable(line))
		}
		return exitFailure
	}
}

// parseFlags parses args with fs, allowing flags after the positional
// arguments (`report FILE --failed`), and returns the positional ones. With
// -h or --help it prints the usage to stdout and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
