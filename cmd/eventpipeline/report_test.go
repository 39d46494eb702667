package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCmdInput runs the command with args as a subprocess, with stdin as its
// standard input.
func runCmdInput(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "EVENTPIPELINE_RUN_MAIN=1")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

const (
	okEvent   = `{"metric_type":"event","event_name":"load","task_id":"t1","start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:02Z","status":"failed","error":"boom","retry_count":2}`
	okNetwork = `{"metric_type":"network","task_id":"t1","operation":"remote_call","host":"h","port":80,"start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","status":"completed","bytes_sent":3,"bytes_received":4}`
)

func TestReportInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		file       string // contents of the file given as FILE, unless stdin is used
		stdin      string // given with FILE "-"
		useStdin   bool
		wantCode   int
		wantStdout string // a line of stdout; "" if stdout must be empty
		wantStderr string // all of stderr, with FILE for the file's path
	}{
		{name: "torn last line", file: okEvent + "\n" + okNetwork + "\n" + okEvent[:40],
			wantStdout: "FILE: 1 event runs, 1 network operations",
			wantStderr: "eventpipeline report: warning: FILE: telemetry: read JSON lines: line 3: torn last line: " +
				"40 bytes with no newline after them are not a complete record; ignored\n"},
		{name: "bad line in the middle", file: okEvent + "\n" + okEvent[:40] + "\n" + okNetwork + "\n", wantCode: exitFailure,
			wantStderr: "eventpipeline report: FILE: telemetry: read JSON lines: line 2: invalid record: " +
				"not a JSON document: unexpected end of JSON input\n"},
		{name: "negative byte count", file: okEvent + "\n" + strings.Replace(okNetwork, `"bytes_sent":3`, `"bytes_sent":-2`, 1) + "\n",
			wantCode: exitFailure,
			wantStderr: "eventpipeline report: FILE: telemetry: read JSON lines: line 2: invalid record: " +
				"bytes_sent is -2, want 0 or more\n"},
		{name: "year 10000", file: strings.Replace(okEvent, "2026-01-01T00:00:02Z", "10000-01-01T00:00:02Z", 1) + "\n",
			wantCode: exitFailure,
			wantStderr: "eventpipeline report: FILE: telemetry: read JSON lines: line 1: invalid record: " +
				`end_time "10000-01-01T00:00:02Z" is not an RFC 3339 time` + "\n"},
		{name: "standard input", useStdin: true, stdin: okEvent + "\n" + okNetwork + "\n",
			wantStdout: "standard input: 1 event runs, 1 network operations"},
		{name: "empty standard input", useStdin: true, wantStdout: "standard input: 0 event runs, 0 network operations"},
		{name: "torn standard input", useStdin: true, stdin: okEvent + "\n" + okNetwork[:10],
			wantStdout: "standard input: 1 event runs, 0 network operations",
			wantStderr: "eventpipeline report: warning: standard input: telemetry: read JSON lines: line 2: torn last line: " +
				"10 bytes with no newline after them are not a complete record; ignored\n"},
		{name: "bad standard input", useStdin: true, stdin: "hello\n", wantCode: exitFailure,
			wantStderr: "eventpipeline report: standard input: telemetry: read JSON lines: line 1: invalid record: not a JSON object\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arg := "-"
			if !tc.useStdin {
				arg = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".jsonl")
				if err := os.WriteFile(arg, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			stdout, stderr, code := runCmdInput(t, tc.stdin, "report", arg, "--failed", "--retries")
			if code != tc.wantCode {
				t.Errorf("got exit code %d, want %d", code, tc.wantCode)
			}
			if want := strings.ReplaceAll(tc.wantStderr, "FILE", arg); stderr != want {
				t.Errorf("got stderr\n%q\nwant\n%q", stderr, want)
			}
			wantOut := strings.ReplaceAll(tc.wantStdout, "FILE", arg)
			if gotLine, _, _ := strings.Cut(stdout, "\n"); gotLine != wantOut {
				t.Errorf("got first line of stdout %q, want %q\n%s", gotLine, wantOut, stdout)
			}
		})
	}
}

// TestReportTornFileKeepsRecords checks that the complete records of a
// torn file are all reported, in the tables as in JSON.
func TestReportTornFileKeepsRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "torn.jsonl")
	if err := os.WriteFile(path, []byte(okEvent+"\n"+okNetwork+"\n"+okEvent[:40]), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := runCmdInput(t, "", "report", path, "--failed", "--retries")
	if code != exitOK {
		t.Fatalf("got exit code %d, want 0", code)
	}
	contains(t, "stdout", stdout, "failed events (1)", "boom", "events with 2 retries")
	stdout, _, code = runCmdInput(t, "", "report", "--json", path)
	if code != exitOK {
		t.Fatalf("got exit code %d, want 0", code)
	}
	var doc struct {
		Failed []struct {
			TaskID string `json:"task_id"`
		} `json:"failed_events"`
		Network []struct {
			BytesSent int64 `json:"bytes_sent"`
		} `json:"network_operations"`
		RetryStats struct {
			TotalRetries int `json:"total_retries"`
		} `json:"retry_stats"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if len(doc.Failed) != 1 || doc.Failed[0].TaskID != "t1" || len(doc.Network) != 1 || doc.Network[0].BytesSent != 3 ||
		doc.RetryStats.TotalRetries != 2 {
		t.Errorf("got %+v, want the failed event t1, one network operation of 3 bytes sent, 2 retries", doc)
	}
}
