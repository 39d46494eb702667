package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// The servers the command starts (demo --ui, demo --prometheus, worker
// --addr) read their address the same way: a bare PORT means
// 127.0.0.1:PORT, this host only; HOST:PORT is Go's, so ":PORT" and
// "0.0.0.0:PORT" mean every network interface. Each prints one warning line
// on stderr when it listens beyond loopback (listenWarning).

// listenHelp is what the help of each address flag says about it.
const listenHelp = "a bare PORT means 127.0.0.1:PORT; :PORT or 0.0.0.0:PORT means every network interface, with a warning; port 0 picks a free one"

// listenAddr returns the address to listen on for the value v of the flag
// named flagName: 127.0.0.1:v if v is a bare port, else v, which must be
// HOST:PORT with a port of 0-65535. The error is a *usageError.
func listenAddr(flagName, v string) (string, error) {
	if _, err := strconv.ParseUint(v, 10, 16); err == nil {
		return net.JoinHostPort("127.0.0.1", v), nil // a bare port: this host only
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		return "", usagef("--%s must be PORT or HOST:PORT, got %q", flagName, v)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", usagef("--%s must be HOST:PORT with a port of 0-65535, got %q", flagName, v)
	}
	return v, nil
}

// listenWarning writes to w one warning line, "eventpipeline CMD: warning:
// WHAT listens on ADDR, ...; RISK", if the address addr that a server
// listens on (a listener's, whose host is an IP address) is not a loopback
// address; else nothing.
func listenWarning(w io.Writer, cmd, what string, addr net.Addr, risk string) {
	ap, err := netip.ParseAddrPort(addr.String())
	if err == nil && ap.Addr().IsLoopback() {
		return
	}
	where := "not a loopback address"
	if err == nil && ap.Addr().IsUnspecified() {
		where = "every network interface, not only loopback"
	}
	fmt.Fprintf(w, "eventpipeline %s: warning: %s listens on %s (%s): other machines may reach it; %s\n",
		cmd, what, addr, where, risk)
}

// isLoopbackHost reports whether host is localhost or a loopback IP
// address. An empty host (every interface) is not.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// trustedProxyHelp is what the help of each --trusted-proxy flag says
// about its value, after naming the server it is for.
const trustedProxyHelp = "whose X-Forwarded-For header names the client, for the budget of wrong tokens only:\n" +
	"an IP address (that address only) or a CIDR prefix such as 10.0.0.0/8; may be repeated; trust no address clients connect from"

// A proxyList is the value of a --trusted-proxy flag, which may be given
// more than once: the prefixes of the reverse proxies in front of a
// server whose X-Forwarded-For header it believes (the TrustedProxies of
// pipeline.WorkerConfig and webview.Config). Its zero value is empty.
type proxyList []netip.Prefix

// String returns the prefixes, separated by commas.
func (p *proxyList) String() string {
	if p == nil {
		return ""
	}
	s := make([]string, len(*p))
	for i, pr := range *p {
		s[i] = pr.String()
	}
	return strings.Join(s, ",")
}

// Set adds the prefix of v to p: v is a CIDR prefix, whose bits beyond its
// length are dropped (10.1.2.3/8 is 10.0.0.0/8), or an IP address, which
// means that address only (/32 for IPv4, /128 for IPv6). An address with
// an IPv6 zone is refused.
func (p *proxyList) Set(v string) error {
	var pr netip.Prefix
	if strings.Contains(v, "/") {
		var err error
		if pr, err = netip.ParsePrefix(v); err != nil {
			return errors.New("want an IP address or a CIDR prefix such as 10.0.0.0/8 or fd00::/8")
		}
		pr = pr.Masked()
	} else {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return errors.New("want an IP address (without a zone) or a CIDR prefix such as 10.0.0.0/8")
		}
		pr = netip.PrefixFrom(a, a.BitLen())
	}
	*p = append(*p, pr)
	return nil
}
