package metricpush

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
)

// IsLoopback reports whether host is localhost or a loopback IP address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseURL parses the URL of the setting name, which must be http or
// https with a host, no credentials and no fragment. Its errors show the
// URL as safetext.URL does, never a password, query value or fragment it
// holds.
func ParseURL(name, s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("%s is required", name)
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the input, which may hold credentials: say
		// only what is wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s is not a valid URL: %v", name, err)
	}
	switch {
	case u.User != nil:
		return nil, fmt.Errorf("%s %q must not contain credentials", name, safetext.URL(u))
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%s %q must be an http(s) URL", name, safetext.URL(u))
	case u.Host == "":
		return nil, fmt.Errorf("%s %q has no host", name, safetext.URL(u))
	case u.Fragment != "":
		return nil, fmt.Errorf("%s %q must not have a #fragment", name, safetext.URL(u))
	}
	return u, nil
}

// DefaultInstance returns "<hostname>:<pid>", unique per process.
func DefaultInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return strings.ToValidUTF8(host, "\uFFFD") + ":" + strconv.Itoa(os.Getpid())
}

// CheckHeader returns a message if name is not a valid HTTP header name or
// value holds a line break or another control character. The value is
// never quoted: it may be a credential.
func CheckHeader(setting, name, value string) string {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r)
	}) {
		return fmt.Sprintf("%s: %q is not a valid header name", setting, name)
	}
	if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return fmt.Sprintf("%s[%q] holds a control character", setting, name)
	}
	return ""
}

// SameOriginRedirect is the CheckRedirect of the clients of pushes: it
// follows a redirect only to the scheme and host (and port) of the
// original request, and otherwise returns [http.ErrUseLastResponse], so
// that the push fails with the redirect's status. net/http would follow a
// redirect elsewhere with every header but Authorization, and with
// Authorization too to the same host name over plain http: the
// credentials of a push (custom headers, or the Authorization header on a
// downgrade from https) would reach a server the user never configured,
// or cross the network in clear text.
func SameOriginRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// NewClient returns an HTTP client of its own for pushes, with the TLS
// configuration tlsConfig (cloned; nil means Go's defaults, verification
// on) and, if caPEM is not empty, its certificate authorities as the only
// trusted roots. It follows redirects only within the origin of a request
// (see [SameOriginRedirect]). It returns an error if caPEM holds no
// certificate.
func NewClient(tlsConfig *tls.Config, caPEM []byte) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	if tlsConfig != nil {
		tr.TLSClientConfig = tlsConfig.Clone()
	}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("CACert holds no PEM certificate")
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, CheckRedirect: SameOriginRedirect}, nil
}
