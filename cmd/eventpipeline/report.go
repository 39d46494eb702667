package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

const reportUsage = `Usage: eventpipeline report [flags] FILE

Reads FILE, a JSON-lines telemetry file (as written by demo or by
telemetry.JSONLinesPublisher), or standard input if FILE is -, and answers
the queries about it (failed, slow, retries, network). With no query flag it prints every section,
with slow thresholds of 1s, but those whose flag is given as false (--failed=false).
Flags may come before or after FILE.

A last line cut short (a process killed while writing) is left out with a
warning on stderr naming the line; every other line must be a valid record,
or the report fails naming the first line that is not. Texts are shown
with their control characters escaped, and cut to 200 characters in the
tables (--json gives them whole).

Queries:
  --failed             failed events, with their errors (Recorder.FailedEvents)
  --slow DURATION      events that took longer than DURATION, e.g. 2s (Recorder.SlowEvents)
  --retries            retry statistics (Recorder.RetryStats)
  --failed-network     failed network operations (Network.FailedOperations)
  --slow-network DURATION
                       network operations slower than DURATION (Network.SlowOperations)
Output:
  --json               one JSON document instead of tables

Exit codes: 0 success (also with a warning), 1 FILE unreadable or with an
invalid line, 2 usage error.
`

// runReport runs `report`, reading stdin for the FILE "-".
func runReport(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), reportUsage) }
	failed := fs.Bool("failed", false, "")
	slow := fs.Duration("slow", 0, "")
	retries := fs.Bool("retries", false, "")
	failedNet := fs.Bool("failed-network", false, "")
	slowNet := fs.Duration("slow-network", 0, "")
	asJSON := fs.Bool("json", false, "")
	files, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	switch {
	case len(files) == 0:
		return usagef("missing FILE, the JSON-lines file to read")
	case len(files) > 1:
		return usagef("one FILE expected, got %d: %q", len(files), files)
	case *slow < 0:
		return usagef("--slow must not be negative, got %v", *slow)
	case *slowNet < 0:
		return usagef("--slow-network must not be negative, got %v", *slowNet)
	}

	// The queries given (a true bool flag or a duration) are printed; with
	// none, every section but those whose flag is given as false.
	s := sections{slow: -1, slowNetwork: -1}
	all := allSections(telemetry.DefaultSlowThreshold)
	queried := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "failed":
			s.failed, all.failed = *failed, *failed
			queried = queried || *failed
		case "retries":
			s.retries, all.retries = *retries, *retries
			queried = queried || *retries
		case "failed-network":
			s.failedNetwork, all.failedNetwork = *failedNet, *failedNet
			queried = queried || *failedNet
		case "slow":
			s.slow, queried = *slow, true
		case "slow-network":
			s.slowNetwork, queried = *slowNet, true
		}
	})
	if !queried {
		s = all
	}

	name := files[0]
	if name == "-" {
		name = "standard input"
	}
	rs, err := readRecords(files[0], name, stdin)
	if errors.Is(err, telemetry.ErrTornLine) {
		fmt.Fprintf(stderr, "eventpipeline report: warning: %s\n", printable(err.Error()))
	} else if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rs, s)
	}
	fmt.Fprintf(stdout, "%s: %d event runs, %d network operations\n", printable(name), len(rs.events), len(rs.network))
	return writeTable(stdout, rs, s)
}

// readRecords reads the JSON-lines file at path, or stdin if path is "-";
// a read error starts with name. With an error wrapping
// telemetry.ErrTornLine, it also returns the records of every complete line.
func readRecords(path, name string, stdin io.Reader) (*records, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	events, network, err := telemetry.ReadJSONLines(r)
	if err != nil {
		err = fmt.Errorf("%s: %w", name, err)
	}
	return &records{events: events, network: network}, err
}
