package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a PostgreSQL server started by [StartPostgres] for one test.
// It is stopped, and its files removed, when the test ends.
type Postgres struct {
	// URL is the connection string of its database "postgres" for the
	// superuser "postgres", who needs no password from 127.0.0.1:
	// postgres://postgres@127.0.0.1:port/postgres?sslmode=disable.
	URL string
	// Addr is the server's address, "127.0.0.1:port".
	Addr string
	// Port is its TCP port.
	Port int
	// Dir holds its data directory, its Unix socket and its log.
	Dir string

	p *process
}

// postgresGlobs are where Debian's postgresql package puts its programs,
// which are not in $PATH.
var postgresGlobs = []string{"/usr/lib/postgresql/*/bin"}

// StartPostgres makes a new database cluster with initdb and starts its
// postgres server as a child process on 127.0.0.1 and a free port, with a
// directory of its own (durability off: fsync, synchronous_commit and
// full_page_writes, as befits a test), and waits until it accepts
// connections. PostgreSQL refuses to run as root: when the test runs as
// root, initdb and the server run as the user nobody, in a directory that
// user owns. The programs come from $PATH or from /usr/lib/postgresql/*/bin
// (Debian's postgresql package); without them the test is skipped, or fails
// when the environment variable CI is "true".
//
// The server is started directly rather than with pg_ctl start, which
// would detach it: as a child it dies with a test binary that is killed.
// t.Cleanup stops it (a fast shutdown, SIGINT) and removes its directory.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	initdb := lookBinary(t, "initdb", postgresInstall, postgresGlobs...)
	server := lookBinary(t, "postgres", postgresInstall, filepath.Dir(initdb))
	pg, stop, err := startPostgresIn(initdb, server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres log:\n%s", pg.Log())
		}
		stop()
	})
	return pg
}

const postgresInstall = "apt-get install postgresql"

// StartPostgresMain is [StartPostgres] for a TestMain, which has no
// testing.TB: it returns the server and a function that stops it and
// removes its directory, or an error (saying how to install PostgreSQL if
// it is missing).
func StartPostgresMain() (pg *Postgres, stop func(), err error) {
	initdb, err := lookPath("initdb", postgresGlobs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w; install it: %s", err, postgresInstall)
	}
	return startPostgresIn(initdb, filepath.Join(filepath.Dir(initdb), "postgres"))
}

// startPostgresIn makes a cluster with initdb in a new directory and
// starts server on it.
func startPostgresIn(initdb, server string) (pg *Postgres, stop func(), err error) {
	dir, err := os.MkdirTemp("", "eventpipeline-postgres-")
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	cred, err := postgresCredential()
	if err != nil {
		return nil, nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, nil, fmt.Errorf("giving %s to the postgres user: %w", dir, err)
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	var lastErr error
	for range 3 { // the free port may be taken before the server binds it
		if pg, lastErr = startPostgres(server, dir, data, cred); lastErr == nil {
			return pg, func() { pg.Stop(); os.RemoveAll(dir) }, nil
		}
	}
	return nil, nil, fmt.Errorf("postgres did not start: %w", lastErr)
}

// postgresCredential returns the user and group the PostgreSQL programs
// run as: nil (the test's own) unless the test runs as root, else those of
// the user nobody.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs an unprivileged user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user nobody has uid %q and gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func startPostgres(bin, dir, data string, cred *syscall.Credential) (*Postgres, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=60", "-c", "log_min_messages=warning")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Dir = dir
	p, err := startProcess("postgres", cmd, filepath.Join(dir, "postgres-"+strconv.Itoa(port)+".log"), cred)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	pg := &Postgres{
		URL:  "postgres://postgres@" + addr + "/postgres?sslmode=disable",
		Addr: addr, Port: port, Dir: dir, p: p,
	}
	if err := p.waitFor(60*time.Second, func() error { return pg.ready(data, port) }); err != nil {
		p.stop(syscall.SIGINT)
		return nil, fmt.Errorf("%w; its log:\n%s", err, p.Log())
	}
	return pg, nil
}

// ready returns nil once the server of data, on port, accepts
// connections: the status line of postmaster.pid (its 8th) says "ready",
// and the port takes a connection.
func (pg *Postgres) ready(data string, port int) error {
	f, err := os.Open(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 8 || lines[3] != strconv.Itoa(port) || lines[7] != "ready" {
		return fmt.Errorf("%w: postmaster.pid says %q", errNotReady, lines)
	}
	c, err := net.DialTimeout("tcp", pg.Addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// Stop stops the server with a fast shutdown (SIGINT, then SIGKILL after
// 10 seconds) and waits for it to exit. Stopping it again does nothing.
func (pg *Postgres) Stop() { pg.p.stop(syscall.SIGINT) }

// Log returns what the server has written to its log.
func (pg *Postgres) Log() string { return pg.p.Log() }
