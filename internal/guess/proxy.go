package guess

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxHops is how many X-Forwarded-For entries [ClientBehind] reads at
// most, from the right, so that a header of many trusted addresses costs
// little.
const maxHops = 32

// ClientBehind returns the client of r that a [Budget] counts wrong
// tokens for, as [Client] does, but believing the X-Forwarded-For header
// of the reverse proxies whose addresses are in trusted. If r.RemoteAddr
// is in trusted, the client is the rightmost address of X-Forwarded-For
// (its lines taken in order, its entries separated by commas) that is
// not itself in trusted: the proxies append the address they were
// reached from, so the entries left of it could have been sent by the
// client, forged. If every entry read is in trusted, the client is the
// leftmost of them; if the header is missing, or an entry is malformed
// (not an IP address, with or without a port, an IPv6 address in
// brackets), or more than 32 entries are in trusted, the client is the
// last trusted proxy reached (r.RemoteAddr if none other). Entries may
// have spaces and tabs around them. The address found is made a client
// as Client does: an IPv4-mapped IPv6 address as its IPv4 address, an
// IPv6 address by its /64.
//
// If r.RemoteAddr is not in trusted (or trusted is empty), no header is
// read: ClientBehind returns Client(r). An IPv4-mapped IPv6 address is in
// an IPv4 prefix, and an IPv4 address in an IPv4-mapped prefix (such as
// ::ffff:10.0.0.0/104). The Forwarded header (RFC 7239) is not read: a
// proxy that sets X-Forwarded-For may pass on a Forwarded header that the
// client forged.
func ClientBehind(r *http.Request, trusted []netip.Prefix) string {
	if len(trusted) == 0 {
		return Client(r)
	}
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok || !inPrefixes(peer, trusted) {
		return Client(r)
	}
	client := peer
	lines := r.Header.Values("X-Forwarded-For")
	hops := 0
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for more := true; more; {
			j := strings.LastIndexByte(rest, ',')
			entry := strings.Trim(rest[j+1:], " \t")
			more = j >= 0
			rest = rest[:max(j, 0)]
			if hops++; hops > maxHops {
				return addrClient(client)
			}
			a, ok := parseAddr(entry)
			if !ok {
				return addrClient(client)
			}
			client = a
			if !inPrefixes(a, trusted) {
				return addrClient(client)
			}
		}
	}
	return addrClient(client)
}

// parseAddr parses s as an IP address, an IP address and port, or an
// IPv6 address in brackets.
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// inPrefixes reports whether a is in one of prefixes, IPv4-mapped IPv6
// addresses and prefixes taken as IPv4 ones.
func inPrefixes(a netip.Addr, prefixes []netip.Prefix) bool {
	a = a.WithZone("").Unmap()
	for _, p := range prefixes {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrClient returns the client of the address a, as [Client] makes it.
func addrClient(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}
