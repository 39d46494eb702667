package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Redis is a Redis server started by [StartRedis] for one test. It is
// stopped when the test ends.
type Redis struct {
	// Addr is the server's address, "127.0.0.1:port".
	Addr string
	// Port is its TCP port.
	Port int
	// Dir is its working directory, which holds its log.
	Dir string

	p *process
}

// StartRedis starts the redis-server binary found in $PATH (Debian's
// redis-server package) as a child process on 127.0.0.1 and a free port,
// with a directory of its own under t.TempDir(), no persistence and no
// password, and waits until it answers PING. Without the binary the test
// is skipped, or fails when the environment variable CI is "true". The
// server is stopped by t.Cleanup.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin := lookBinary(t, "redis-server", redisInstall)
	r, err := startRedisIn(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("redis-server log:\n%s", r.Log())
		}
	})
	return r
}

const redisInstall = "apt-get install redis-server"

// StartRedisMain is [StartRedis] for a TestMain, which has no testing.TB:
// it returns the server and a function that stops it and removes its
// directory, or an error (saying how to install redis-server if it is
// missing).
func StartRedisMain() (r *Redis, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, nil, fmt.Errorf("no redis-server binary in $PATH; install it: %s", redisInstall)
	}
	dir, err := os.MkdirTemp("", "eventpipeline-redis-")
	if err != nil {
		return nil, nil, err
	}
	if r, err = startRedisIn(bin, dir); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return r, func() { r.Stop(); os.RemoveAll(dir) }, nil
}

// startRedisIn starts the server bin with its files in dir, trying again
// on other ports if it does not start.
func startRedisIn(bin, dir string) (*Redis, error) {
	var lastErr error
	for range 3 { // the free port may be taken before the server binds it
		r, err := startRedis(bin, dir)
		if err == nil {
			return r, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("redis-server did not start: %w", lastErr)
}

func startRedis(bin, dir string) (*Redis, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "yes",
		"--daemonize", "no", "--loglevel", "warning", "--databases", "16")
	p, err := startProcess("redis-server", cmd, filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log"), nil)
	if err != nil {
		return nil, err
	}
	r := &Redis{Addr: addr, Port: port, Dir: dir, p: p}
	// A PING answered on the port may come from a server that took it
	// before this one could: the port must be this process's.
	ready := func() error {
		if err := r.ping(); err != nil {
			return err
		}
		return checkListener(p.cmd.Process.Pid, port)
	}
	if err := p.waitFor(60*time.Second, ready); err != nil {
		p.stop(syscall.SIGTERM)
		return nil, fmt.Errorf("%w; its log:\n%s", err, p.Log())
	}
	return r, nil
}

// ping returns nil if the server answers PING with PONG.
func (r *Redis) ping() error {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("%w: PING answered %q", errNotReady, line)
	}
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 seconds) and
// waits for it to exit; a test can stop it early to see what its clients
// do without it. Stopping it again does nothing.
func (r *Redis) Stop() { r.p.stop(syscall.SIGTERM) }

// Log returns what the server has written to its log.
func (r *Redis) Log() string { return r.p.Log() }
