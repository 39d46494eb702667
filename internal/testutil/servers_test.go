package testutil

import (
	"bufio"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartRedis starts a server, talks to it, and checks that Stop ends
// it.
func TestStartRedis(t *testing.T) {
	r := StartRedis(t)
	c, err := net.DialTimeout("tcp", r.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(c)
	for _, step := range []struct{ send, want string }{
		{"SET k v\r\n", "+OK"},
		{"GET k\r\n", "$1"},
	} {
		if _, err := c.Write([]byte(step.send)); err != nil {
			t.Fatal(err)
		}
		line, err := rd.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != step.want {
			t.Fatalf("%q: got %q, %v; want %q", step.send, line, err, step.want)
		}
	}
	r.Stop()
	if err := r.ping(); err == nil {
		t.Error("the server still answers after Stop")
	}
}

// TestStartPostgres starts a server (as the user nobody when the test runs
// as root) and checks that it accepts connections on its port and that
// Stop ends it.
func TestStartPostgres(t *testing.T) {
	pg := StartPostgres(t)
	if !strings.HasPrefix(pg.URL, "postgres://postgres@127.0.0.1:") {
		t.Errorf("URL %q, want one on 127.0.0.1", pg.URL)
	}
	c, err := net.DialTimeout("tcp", pg.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	fi, err := os.Stat(pg.Dir + "/data")
	if err != nil {
		t.Fatal(err)
	}
	if owner := fi.Sys().(*syscall.Stat_t).Uid; owner == 0 {
		t.Error("the data directory belongs to root: PostgreSQL must run unprivileged")
	}
	pg.Stop()
	if c, err := net.DialTimeout("tcp", pg.Addr, time.Second); err == nil {
		c.Close()
		t.Error("the server still accepts connections after Stop")
	}
}
