package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A process is a server started for one test, as a child of the test
// binary that dies with it (Pdeathsig), with its output in a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  string        // path of its output
}

// startProcess starts cmd with its output in logPath. If cred is not nil
// the process runs with those user and group ids.
func startProcess(name string, cmd *exec.Cmd, logPath string, cred *syscall.Credential) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, then SIGKILL after 10 seconds, and waits for the exit.
func (p *process) stop(sig syscall.Signal) {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Log returns what the process has written to stdout and stderr.
func (p *process) Log() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// waitFor calls ready every 50 ms until it returns nil, the process exits
// or timeout passes. An error wrapping errPortTaken ends the wait at once:
// the server cannot have its port.
func (p *process) waitFor(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if errors.Is(err, errPortTaken) {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if p.exited() {
			return fmt.Errorf("%s exited during start (%v)", p.name, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w", p.name, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lookBinary finds the program name in $PATH or in one of the directories
// matching the glob patterns (the last match first, so that the highest
// version wins). If it is missing, the test fails when the environment
// variable CI is "true" (CI installs it) and is skipped otherwise, with
// install, the command that installs it.
func lookBinary(t testing.TB, name, install string, globs ...string) string {
	t.Helper()
	p, err := lookPath(name, globs)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%v; install it: %s", err, install)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("skipping: " + msg)
	return ""
}

// lookPath finds the program name in $PATH or in one of the directories
// matching the glob patterns, the last match first.
func lookPath(name string, globs []string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, g := range globs {
		matches, _ := filepath.Glob(filepath.Join(g, name))
		for i := len(matches) - 1; i >= 0; i-- {
			if fi, err := os.Stat(matches[i]); err == nil && fi.Mode()&0o111 != 0 {
				return matches[i], nil
			}
		}
	}
	return "", fmt.Errorf("no %s binary in $PATH%s", name, strings.Join(append([]string{""}, globs...), " or "))
}

// errNotReady is the error of a readiness check that found the server not
// ready yet.
var errNotReady = errors.New("not ready")
