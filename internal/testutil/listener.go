package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// freePort is the function the launchers call to pick a port: FreePort,
// replaced by tests of the launchers.
var freePort = FreePort

// errPortTaken is the error of a readiness check that was answered on the
// port by a process other than the server started: one that took the
// port between FreePort and the server's bind (such as a server started
// at the same time by a test of another package).
var errPortTaken = errors.New("the port is held by another process")

// checkListener returns nil if the process pid holds a listening TCP
// socket of port, and an error wrapping errPortTaken if only other
// processes do: a readiness check that a server on a port found free
// passes could have been answered by another server that took the port
// meanwhile, while the one started fails to bind it and exits. Where
// /proc cannot tell (another system, or a process of another user), it
// returns nil.
func checkListener(pid, port int) error {
	inodes, err := listeningInodes(port)
	if err != nil || len(inodes) == 0 {
		return nil // not known: /proc/net/tcp unreadable, or the listener already gone
	}
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if errors.Is(err, fs.ErrNotExist) { // /proc/net/tcp was there: the process is gone
		return fmt.Errorf("%w: 127.0.0.1:%d answers, but process %d has exited", errPortTaken, port, pid)
	}
	if err != nil {
		return nil // not known: no right to look
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name()))
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			return nil
		}
	}
	return fmt.Errorf("%w: 127.0.0.1:%d answers, but process %d does not listen on it", errPortTaken, port, pid)
}

// listeningInodes returns the inodes of the TCP sockets listening on port,
// from /proc/net/tcp and /proc/net/tcp6, whatever their address: another
// process's socket on [::]:port also answers at 127.0.0.1:port.
func listeningInodes(port int) (map[string]bool, error) {
	hexPort := fmt.Sprintf("%04X", port)
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			if table == "/proc/net/tcp6" { // a system without IPv6
				continue
			}
			return nil, err
		}
		lines := bufio.NewScanner(f)
		for lines.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
			fields := strings.Fields(lines.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			if _, p, ok := strings.Cut(fields[1], ":"); ok && p == hexPort {
				inodes[fields[9]] = true
			}
		}
		err = lines.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return inodes, nil
}
