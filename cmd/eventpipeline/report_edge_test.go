package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTemp writes content to a new file in a test directory and returns
// its path.
func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "records.jsonl")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReportByteTotalsDoNotOverflow reads two network operations of
// math.MaxInt64 bytes each: the section's totals are their exact sums,
// not a wrapped negative number.
func TestReportByteTotalsDoNotOverflow(t *testing.T) {
	const op = `{"metric_type":"network","task_id":"t","operation":"o","host":"h","port":1,"start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-01T00:00:01Z","status":"completed","bytes_sent":9223372036854775807,"bytes_received":9223372036854775807,"error":null}`
	path := writeTemp(t, op+"\n"+op+"\n"+op+"\n")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"report", path}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	want := "network operations (3: 3 completed, 0 failed; 27670116110564327421 B sent, 27670116110564327421 B received)"
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("the output lacks %q:\n%s", want, stdout.String())
	}
}

// TestReportQueryFlagSetFalse: a query flag given as false leaves its
// section out. With no other query, every other section is printed; it
// printed every section, that one included, as if no flag were given.
func TestReportQueryFlagSetFalse(t *testing.T) {
	path := writeTemp(t, okEvent+"\n"+okNetwork+"\n")
	for _, tc := range []struct {
		args       []string
		want, lack []string
	}{
		{[]string{"--failed=false"}, []string{"== events by status", "== slow events", "== retry statistics", "== failed network operations"}, []string{"== failed events"}},
		{[]string{"--retries=false", "--failed-network=false"}, []string{"== failed events", "== network operations"}, []string{"== retry statistics", "== failed network operations"}},
		{[]string{"--failed=false", "--retries"}, []string{"== retry statistics"}, []string{"== failed events", "== slow events", "== events by status"}},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"report", path}, tc.args...), &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit code %d; stderr:\n%s", tc.args, code, stderr.String())
		}
		for _, s := range tc.want {
			if !strings.Contains(stdout.String(), s) {
				t.Errorf("%v: the output lacks %q:\n%s", tc.args, s, stdout.String())
			}
		}
		for _, s := range tc.lack {
			if strings.Contains(stdout.String(), s) {
				t.Errorf("%v: the output has %q:\n%s", tc.args, s, stdout.String())
			}
		}
	}
}

// TestReportIPv6HostPort: the HOST:PORT column brackets an IPv6 host, as
// net.JoinHostPort does; "::1:8080" could be read as the address ::1:8080
// with no port.
func TestReportIPv6HostPort(t *testing.T) {
	op := strings.Replace(okNetwork, `"host":"h","port":80`, `"host":"::1","port":8080`, 1)
	path := writeTemp(t, op+"\n")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"report", path, "--slow-network", "0s"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), " [::1]:8080 ") {
		t.Errorf("the output lacks [::1]:8080:\n%s", stdout.String())
	}
}
