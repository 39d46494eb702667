package elasticsearch

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Defaults of the zero fields of [Config].
const (
	// DefaultIndexPrefix is the index prefix when Config.IndexPrefix is "".
	DefaultIndexPrefix = "event-pipeline-metrics"
	// DefaultHost is the node used when neither Hosts nor CloudID is set.
	DefaultHost = "http://localhost:9200"
	// DefaultTimeout limits one HTTP request when Config.Timeout is 0.
	DefaultTimeout = 10 * time.Second
	// DefaultFlushBytes is the largest bulk request body when
	// Config.FlushBytes is 0.
	DefaultFlushBytes = 5 << 20
)

// ErrInsecure is wrapped by the error of [NewPublisher] when a Config has
// credentials (Username, Password or APIKey) and a host reached over plain
// http:// that is not a loopback address, so the credentials would cross
// the network in clear text. Use https://, or set Config.AllowInsecure.
var ErrInsecure = errors.New("elasticsearch: credentials over plain http")

// Config configures a [Publisher]. The zero Config is valid: it publishes
// to http://localhost:9200 under [DefaultIndexPrefix], without
// authentication. Every zero field means its documented default.
//
// The credentials are of type [telemetry.Secret], so printing a Config with
// any fmt verb, logging it with slog or encoding it to JSON shows REDACTED
// instead.
type Config struct {
	// Hosts are the URLs of the Elasticsearch nodes, such as
	// "https://es1:9200". A host without a scheme, such as
	// "localhost:9200", gets "http://". URLs must not hold credentials:
	// use Username and Password. With credentials set, an http:// host must
	// be a loopback address (127.0.0.0/8, ::1 or localhost) unless
	// AllowInsecure is set. Empty means [DefaultHost], unless CloudID is
	// set; Hosts and CloudID cannot both be set.
	Hosts []string

	// AllowInsecure allows, at the risk of sending credentials in clear
	// text or to an impostor, credentials over plain http:// to a host
	// other than loopback, where anyone on the network path can read them,
	// and a TLSConfig with InsecureSkipVerify, which accepts any
	// certificate. false means that NewPublisher refuses the first with an
	// error wrapping [ErrInsecure], and the second with an error naming
	// InsecureSkipVerify.
	AllowInsecure bool

	// IndexPrefix starts the name of every index written:
	// <prefix>-event-YYYY.MM.DD and <prefix>-network-YYYY.MM.DD. It must be a
	// valid part of an index name: lower case, no spaces nor any of
	// \ / * ? " < > | , # :, not starting with - _ or +, at most 200 bytes.
	// Empty means [DefaultIndexPrefix].
	IndexPrefix string

	// Username and Password authenticate with HTTP basic authentication.
	// Empty means none. Each requires the other.
	Username string
	Password telemetry.Secret

	// APIKey authenticates with an Elasticsearch API key: the base64
	// "encoded" value that the create API key call returns, sent as
	// "Authorization: ApiKey <APIKey>". Empty means none. It cannot be
	// combined with Username.
	APIKey telemetry.Secret

	// CloudID is the Cloud ID of an Elastic Cloud deployment; it gives the
	// host to use, over https. Empty means none.
	CloudID telemetry.Secret

	// CACert holds PEM-encoded certificate authorities trusted for
	// HTTPS, instead of the system pool. nil means the system pool (or
	// TLSConfig's RootCAs).
	CACert []byte

	// TLSConfig configures HTTPS: client certificates, server name, minimum
	// version. nil means Go's defaults, which verify the server's
	// certificate. CACert, if set, replaces its RootCAs. InsecureSkipVerify
	// requires AllowInsecure. It is cloned.
	TLSConfig *tls.Config

	// Transport sends the HTTP requests, for example one instrumented for
	// tracing. nil means a clone of [http.DefaultTransport] configured with
	// TLSConfig and CACert; a Transport of your own cannot be combined with
	// them: configure TLS on it instead.
	Transport http.RoundTripper

	// Timeout limits each HTTP request (a bulk request, the template
	// installation), within the deadline of the caller's context. Zero
	// means [DefaultTimeout]. A Publisher makes one attempt per request:
	// retries are the [telemetry.Recorder]'s (see [telemetry.WithRetry]).
	Timeout time.Duration

	// FlushBytes is the largest body of one bulk request, in bytes: a batch
	// that encodes to more is sent in several requests. A single document
	// larger than that is sent alone. Zero means [DefaultFlushBytes].
	FlushBytes int

	// SkipTemplate, if true, skips installing the index template: use it
	// when the template is managed elsewhere, or the credentials may not
	// manage templates. False means the template is installed before the
	// first bulk request (and by [Publisher.InstallTemplate]).
	SkipTemplate bool

	// Logger receives the publisher's own log lines: the index template
	// installed, and the first rejection of each kind of document error.
	// nil means [slog.Default] at the time of logging.
	Logger *slog.Logger
}

// LogValue shows the hosts (without credentials, query values or
// fragments) and the index prefix, and whether each credential is set,
// never their values.
func (c Config) LogValue() slog.Value {
	hosts := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		hosts[i] = redactHost(h)
	}
	return slog.GroupValue(
		slog.Any("hosts", hosts),
		slog.String("index_prefix", c.IndexPrefix),
		slog.Bool("basic_auth", c.Username != ""),
		slog.Bool("api_key", !c.APIKey.IsZero()),
		slog.Bool("cloud_id", !c.CloudID.IsZero()),
	)
}

// redactHost returns h for messages, as safetext.URL shows a URL: its
// credentials (the user name too), query values and fragment replaced.
func redactHost(h string) string {
	u, err := url.Parse(withScheme(h))
	if err != nil {
		return safetext.URLString(h)
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	s := safetext.URL(u)
	if !strings.Contains(h, "://") {
		s = strings.TrimPrefix(s, "http://")
	}
	return s
}

// withScheme adds "http://" to a host given without a scheme.
func withScheme(h string) string {
	if strings.Contains(h, "://") {
		return h
	}
	return "http://" + h
}

// settings is a validated Config with its defaults applied.
type settings struct {
	Config
	hosts     []string   // the URLs of Hosts, for messages; none with CloudID
	urls      []*url.URL // the nodes to send requests to
	transport http.RoundTripper
}

// validate checks every field of c and returns c with defaults applied, or
// all the problems found joined in one error. Its errors never quote a
// credential.
func (c Config) validate() (settings, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("elasticsearch: "+format, args...))
	}
	s := settings{Config: c}
	hasCreds := c.Username != "" || !c.Password.IsZero() || !c.APIKey.IsZero()

	if len(c.Hosts) > 0 && !c.CloudID.IsZero() {
		bad("Hosts and CloudID are both set; set one of them")
	}
	for i, h := range c.Hosts {
		u, err := url.Parse(withScheme(strings.TrimSpace(h)))
		switch {
		case strings.TrimSpace(h) == "":
			bad("Hosts[%d] is empty", i)
			continue
		case err != nil:
			bad("Hosts[%d] %q is not a valid URL", i, redactHost(h))
			continue
		case u.User != nil:
			bad("Hosts[%d] %q holds credentials; set Username and Password instead", i, redactHost(h))
			continue
		case u.Scheme != "http" && u.Scheme != "https":
			bad("Hosts[%d] %q: scheme must be http or https", i, redactHost(h))
			continue
		case u.Host == "" || u.Hostname() == "":
			bad("Hosts[%d] %q has no host", i, redactHost(h))
			continue
		case u.RawQuery != "" || u.Fragment != "":
			bad("Hosts[%d] %q must not have a query or fragment", i, redactHost(h))
			continue
		}
		if p := u.Port(); p != "" {
			if n, err := parsePort(p); err != nil || n == 0 {
				bad("Hosts[%d] %q: invalid port %q", i, redactHost(h), p)
				continue
			}
		}
		u.Path = strings.TrimRight(u.Path, "/")
		if u.Scheme == "http" && hasCreds && !c.AllowInsecure && !isLoopback(u.Hostname()) {
			errs = append(errs, fmt.Errorf("%w: Hosts[%d] %q is not https, so the credentials would be sent in clear text; use https://, or set AllowInsecure to allow it",
				ErrInsecure, i, u.String()))
			continue
		}
		s.hosts = append(s.hosts, u.String())
		s.urls = append(s.urls, u)
	}
	switch {
	case !c.CloudID.IsZero():
		u, err := cloudURL(c.CloudID.Reveal())
		if err != nil {
			bad("CloudID is invalid: %v", err)
		} else {
			s.urls = []*url.URL{u}
		}
	case len(c.Hosts) == 0:
		u, _ := url.Parse(DefaultHost)
		s.hosts, s.urls = []string{DefaultHost}, []*url.URL{u}
	}

	if c.IndexPrefix == "" {
		s.IndexPrefix = DefaultIndexPrefix
	} else if err := checkIndexPrefix(c.IndexPrefix); err != nil {
		errs = append(errs, err)
	}

	if !c.Password.IsZero() && c.Username == "" {
		bad("Password is set without Username")
	}
	// The transport sends basic authentication only with both: a Username
	// alone (say, the password's environment variable unset) would send
	// no credentials at all.
	if c.Username != "" && c.Password.IsZero() {
		bad("Username is set without Password")
	}
	if !c.APIKey.IsZero() && c.Username != "" {
		bad("APIKey and Username are both set; use one way to authenticate")
	}
	// The key is sent as it is in a header, where a control character
	// makes every request fail before it leaves, as if the cluster were
	// unreachable.
	if strings.ContainsFunc(c.APIKey.Reveal(), func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		bad("APIKey must not contain spaces, line breaks or other control characters (use the base64 \"encoded\" key)")
	}
	if strings.Contains(c.Username, ":") {
		bad("Username must not contain ':'")
	}

	if c.Transport != nil && (c.TLSConfig != nil || len(c.CACert) > 0) {
		bad("TLSConfig and CACert configure the default transport; with a Transport of your own, configure TLS on it")
	}
	if c.TLSConfig != nil && c.TLSConfig.InsecureSkipVerify && !c.AllowInsecure {
		bad("TLSConfig.InsecureSkipVerify is set: the server's certificate would not be verified (set AllowInsecure to allow it)")
	}
	var pool *x509.CertPool
	if len(c.CACert) > 0 {
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CACert) {
			bad("CACert holds no PEM certificate")
		}
	}

	switch {
	case c.Timeout < 0:
		bad("Timeout must not be negative, got %v", c.Timeout)
	case c.Timeout == 0:
		s.Timeout = DefaultTimeout
	}
	switch {
	case c.FlushBytes < 0:
		bad("FlushBytes must not be negative, got %d", c.FlushBytes)
	case c.FlushBytes == 0:
		s.FlushBytes = DefaultFlushBytes
	}
	if len(errs) > 0 {
		return settings{}, errors.Join(errs...)
	}

	if c.Transport != nil {
		s.transport = c.Transport
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		if c.TLSConfig != nil {
			t.TLSClientConfig = c.TLSConfig.Clone()
		}
		if pool != nil {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			t.TLSClientConfig.RootCAs = pool
		}
		s.transport = t
	}
	return s, nil
}

// isLoopback reports whether host, a URL's host name without port, is
// localhost or a loopback address (127.0.0.0/8, ::1).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parsePort(p string) (int, error) {
	n := 0
	for _, c := range p {
		// url.Parse accepts only digits after the host's colon, so this
		// cannot happen; it keeps parsePort correct on its own.
		if c < '0' || c > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return 0, errors.New("out of range")
		}
	}
	return n, nil
}

// cloudURL returns the URL of the Elasticsearch endpoint of a Cloud ID,
// "<name>:<base64 of host$es-uuid[$kibana-uuid]>": https://<es-uuid>.<host>.
// Its errors do not quote the value.
func cloudURL(id string) (*url.URL, error) {
	name, enc, ok := strings.Cut(id, ":")
	if !ok || name == "" || strings.Contains(enc, ":") {
		return nil, errors.New(`want the form "<name>:<base64 data>"`)
	}
	data, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, errors.New("its data is not valid base64")
	}
	parts := strings.Split(string(data), "$")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return nil, errors.New("its data does not name a host and a cluster")
	}
	u, err := url.Parse("https://" + parts[1] + "." + parts[0])
	if err != nil || u.Hostname() == "" || u.User != nil || u.Path != "" || u.RawQuery != "" {
		return nil, errors.New("its host is not valid")
	}
	return u, nil
}

// IndexPrefixError reports an IndexPrefix that cannot start an
// Elasticsearch index name.
type IndexPrefixError struct {
	Prefix string // the prefix given
	Reason string // what is wrong with it
}

// Error returns a message naming the prefix and the reason.
func (e *IndexPrefixError) Error() string {
	return fmt.Sprintf("elasticsearch: invalid IndexPrefix %q: %s", e.Prefix, e.Reason)
}

// checkIndexPrefix reports whether p can start an index name, following the
// rules Elasticsearch applies to index names.
func checkIndexPrefix(p string) error {
	bad := func(reason string) error { return &IndexPrefixError{Prefix: p, Reason: reason} }
	switch {
	case p == "":
		return bad("empty")
	case p == "." || p == "..":
		return bad(`"." and ".." are not index names`)
	case len(p) > 200:
		// Elasticsearch allows 255 bytes; leave room for "-network-YYYY.MM.DD".
		return bad("longer than 200 bytes")
	case strings.ToLower(p) != p:
		return bad("must be lower case")
	case strings.HasPrefix(p, "-"), strings.HasPrefix(p, "_"), strings.HasPrefix(p, "+"):
		return bad("must not start with '-', '_' or '+'")
	}
	if i := strings.IndexAny(p, "\\/*?\"<>|, #:"); i >= 0 {
		return bad(fmt.Sprintf("must not contain %q", p[i]))
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return bad("must not contain control characters")
		}
	}
	return nil
}
