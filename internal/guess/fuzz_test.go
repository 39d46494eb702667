package guess_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/eventpipeline/eventpipeline/internal/guess"
)

// FuzzClient checks that Client never panics; that an address counts as
// the same client in each of its forms (with a port or without, IPv4 or
// IPv4-mapped IPv6, with a zone or without); that an IPv4 client is the
// address and an IPv6 one its /64; and that Client keeps its own output
// as it is, so that a middleware that puts a client back into RemoteAddr
// does not move it to another budget.
func FuzzClient(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1:1234", "192.0.2.1", "[::ffff:192.0.2.1]:80", "::ffff:192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2:3:4:5:6", "[fe80::1%eth0]:80", "fe80::1%eth0",
		"[::1]:80", "::1", "2001:db8:1:2::/64", "", "not an address", "[::ffff:1.2.3.4%x]:1",
		"1.2.3.4:99999", "01.2.3.4", "[1.2.3.4]:80", "@", "/tmp/sock",
	} {
		f.Add(s)
	}
	client := func(remote string) string { return guess.Client(&http.Request{RemoteAddr: remote}) }
	f.Fuzz(func(t *testing.T, remote string) {
		got := client(remote)
		if again := client(got); again != got {
			t.Errorf("Client(%q) = %q, but Client(%q) = %q", remote, got, got, again)
		}
		var a netip.Addr
		if ap, err := netip.ParseAddrPort(remote); err == nil {
			a = ap.Addr()
		} else if a, err = netip.ParseAddr(remote); err != nil {
			if got != remote {
				t.Errorf("Client(%q) = %q, want it as it is: not an address", remote, got)
			}
			return
		}
		plain := a.WithZone("").Unmap()
		forms := []string{plain.String(), netip.AddrPortFrom(plain, 1).String(), a.String()}
		if plain.Is4() {
			if got != plain.String() {
				t.Errorf("Client(%q) = %q, want %q", remote, got, plain)
			}
			forms = append(forms, netip.AddrFrom16(plain.As16()).String(), netip.AddrPortFrom(netip.AddrFrom16(plain.As16()), 2).String())
		} else {
			p, err := netip.ParsePrefix(got)
			if want, _ := plain.Prefix(64); err != nil || p != want {
				t.Errorf("Client(%q) = %q, want %v", remote, got, want)
			}
			forms = append(forms, plain.WithZone("z").String())
		}
		for _, form := range forms {
			if c := client(form); c != got {
				t.Errorf("Client(%q) = %q, but Client(%q) = %q: the same address", remote, got, form, c)
			}
		}
	})
}
