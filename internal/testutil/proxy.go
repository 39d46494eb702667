package testutil

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// ClientHeader is the request header from which [ForwardingProxy] takes
// the address of the client it forwards for.
const ClientHeader = "X-Test-Client"

// ForwardingProxy starts a reverse proxy on 127.0.0.1 in front of target,
// stopped when the test ends, and returns its URL: an
// httputil.ReverseProxy, which appends the address it was reached from to
// X-Forwarded-For. The client's address is faked: the proxy takes it from
// the request's [ClientHeader] (and drops that header), as if the client
// had connected from there.
func ForwardingProxy(t testing.TB, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := r.Header.Get(ClientHeader); c != "" {
			r.RemoteAddr = net.JoinHostPort(c, "50000")
			r.Header.Del(ClientHeader)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// StatusAs sends req through hc with the bearer token token, as the client
// at address client (for a [ForwardingProxy]; none if empty), with the
// further headers hdr (name, value, ...), and returns the status of the
// answer, whose body it discards.
func StatusAs(t testing.TB, hc *http.Client, req *http.Request, client, token string, hdr ...string) int {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+token)
	if client != "" {
		req.Header.Set(ClientHeader, client)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
