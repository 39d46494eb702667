package guess_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/internal/guess"
)

// TestClientBehind checks which address ClientBehind takes a request's
// client from: the rightmost X-Forwarded-For entry that is not a trusted
// proxy, when the request comes from a trusted proxy; its own address
// otherwise, or when the header is missing or malformed.
func TestClientBehind(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:aaaa::/48"),
		netip.MustParsePrefix("::ffff:172.16.0.0/108"), // 172.16.0.0/12, IPv4-mapped
	}
	many := strings.Repeat("10.1.1.1, ", 100) + "10.1.1.2"
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string // lines of X-Forwarded-For
		trusted []netip.Prefix
		want    string
	}{
		{"no header", "10.0.0.1:4000", nil, trusted, "10.0.0.1"},
		{"one proxy", "10.0.0.1:4000", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"forged entries left of the proxy's", "10.0.0.1:4000", []string{"192.0.2.1, 192.0.2.2, 198.51.100.7"}, trusted, "198.51.100.7"},
		{"forged trusted address left of the proxy's", "10.0.0.1:4000", []string{"10.9.9.9, 198.51.100.7"}, trusted, "198.51.100.7"},
		{"chain of proxies", "10.0.0.1:4000", []string{"192.0.2.1, 198.51.100.7, 10.0.0.3, 10.0.0.2"}, trusted, "198.51.100.7"},
		{"all trusted: the farthest proxy", "10.0.0.1:4000", []string{"10.0.0.3, 10.0.0.2"}, trusted, "10.0.0.3"},
		{"lines in order", "10.0.0.1:4000", []string{"192.0.2.1", "198.51.100.7, 10.0.0.2"}, trusted, "198.51.100.7"},
		{"the last line first", "10.0.0.1:4000", []string{"192.0.2.1, 10.0.0.5", "10.0.0.2"}, trusted, "192.0.2.1"},
		{"no spaces", "10.0.0.1:4000", []string{"192.0.2.1,198.51.100.7,10.0.0.2"}, trusted, "198.51.100.7"},
		{"spaces and tabs", "10.0.0.1:4000", []string{" 192.0.2.1 ,\t198.51.100.7 \t"}, trusted, "198.51.100.7"},
		{"IPv4 with a port", "10.0.0.1:4000", []string{"198.51.100.7:55000"}, trusted, "198.51.100.7"},
		{"IPv6", "10.0.0.1:4000", []string{"2001:db8:1:2::7"}, trusted, "2001:db8:1:2::/64"},
		{"IPv6 in brackets", "10.0.0.1:4000", []string{"[2001:db8:1:2::7]"}, trusted, "2001:db8:1:2::/64"},
		{"IPv6 in brackets with a port", "10.0.0.1:4000", []string{"[2001:db8:1:2::7]:443"}, trusted, "2001:db8:1:2::/64"},
		{"IPv6 with a zone", "10.0.0.1:4000", []string{"fe80::1%eth0"}, trusted, "fe80::/64"},
		{"IPv4-mapped", "10.0.0.1:4000", []string{"::ffff:198.51.100.7"}, trusted, "198.51.100.7"},
		{"IPv4-mapped trusted proxy", "10.0.0.1:4000", []string{"198.51.100.7, ::ffff:10.0.0.2"}, trusted, "198.51.100.7"},
		{"IPv4 in an IPv4-mapped prefix", "172.16.0.1:4000", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"IPv6 proxy", "[2001:db8:aaaa::1]:4000", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"IPv6 proxy with a zone", "[2001:db8:aaaa::1%eth0]:4000", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"IPv4-mapped proxy", "[::ffff:10.0.0.1]:4000", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"proxy address without a port", "10.0.0.1", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"garbage: the proxy", "10.0.0.1:4000", []string{"unknown"}, trusted, "10.0.0.1"},
		{"garbage right of an address", "10.0.0.1:4000", []string{"198.51.100.7, garbage"}, trusted, "10.0.0.1"},
		{"garbage left of the client", "10.0.0.1:4000", []string{"garbage, 198.51.100.7"}, trusted, "198.51.100.7"},
		{"garbage behind a second proxy", "10.0.0.1:4000", []string{"198.51.100.7, _hidden, 10.0.0.2"}, trusted, "10.0.0.2"},
		{"empty header", "10.0.0.1:4000", []string{""}, trusted, "10.0.0.1"},
		{"empty entry", "10.0.0.1:4000", []string{"198.51.100.7, "}, trusted, "10.0.0.1"},
		{"quoted", "10.0.0.1:4000", []string{`"198.51.100.7"`}, trusted, "10.0.0.1"},
		{"IPv4 in brackets", "10.0.0.1:4000", []string{"[198.51.100.7]"}, trusted, "10.0.0.1"},
		{"IPv6 with a port, no brackets", "10.0.0.1:4000", []string{"2001:db8:1:2::7:443"}, trusted, "2001:db8:1:2::/64"},
		{"Forwarded syntax is not read", "10.0.0.1:4000", []string{"for=198.51.100.7"}, trusted, "10.0.0.1"},
		{"overlong entry", "10.0.0.1:4000", []string{strings.Repeat("1", 10000)}, trusted, "10.0.0.1"},
		{"many entries, all trusted: stops after 32", "10.0.0.1:4000", []string{"198.51.100.7, " + many}, trusted, "10.1.1.1"},
		{"many forged entries", "10.0.0.1:4000", []string{many + ", 198.51.100.7"}, trusted, "198.51.100.7"},
		{"31 proxies", "10.0.0.1:4000", []string{"198.51.100.7" + strings.Repeat(", 10.0.0.2", 31)}, trusted, "198.51.100.7"},
		{"direct client: header ignored", "192.0.2.9:4000", []string{"198.51.100.7"}, trusted, "192.0.2.9"},
		{"direct client claiming a trusted proxy", "192.0.2.9:4000", []string{"198.51.100.7, 10.0.0.2"}, trusted, "192.0.2.9"},
		{"direct IPv6 client", "[2001:db8:1:2::9]:4000", []string{"198.51.100.7"}, trusted, "2001:db8:1:2::/64"},
		{"no trusted proxies", "10.0.0.1:4000", []string{"198.51.100.7"}, nil, "10.0.0.1"},
		{"not an address", "pipe", []string{"198.51.100.7"}, trusted, "pipe"},
		{"empty RemoteAddr", "", []string{"198.51.100.7"}, trusted, ""},
		{"all addresses trusted", "10.0.0.1:4000", []string{"198.51.100.7"}, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, "198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := guess.ClientBehind(r, tc.trusted); got != tc.want {
				t.Errorf("ClientBehind(RemoteAddr %q, X-Forwarded-For %q) = %q, want %q", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
}

// TestClientBehindAsClient checks that without a trusted proxy in front,
// ClientBehind is Client, whatever the headers.
func TestClientBehindAsClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, remote := range []string{"192.0.2.1:1234", "[2001:db8:1:2:3:4:5:6]:1", "[::ffff:192.0.2.1]:1", "::ffff:192.0.2.1", "fe80::1%eth0", "", "not an address"} {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {"198.51.100.7"}, "Forwarded": {"for=198.51.100.7"}}}
		for _, tr := range [][]netip.Prefix{nil, trusted} {
			if got, want := guess.ClientBehind(r, tr), guess.Client(r); got != want {
				t.Errorf("ClientBehind(%q, %v) = %q, want Client's %q", remote, tr, got, want)
			}
		}
	}
}

func ExampleClientBehind() {
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:41000" // the reverse proxy
	// The client sent a forged entry; the proxy appended the client's address.
	r.Header.Set("X-Forwarded-For", "192.0.2.1, 198.51.100.7")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}
	fmt.Println(guess.ClientBehind(r, trusted))
	fmt.Println(guess.ClientBehind(r, nil))
	// Output:
	// 198.51.100.7
	// 10.0.0.1
}
