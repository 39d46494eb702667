package elasticsearch_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/internal/esfake"
	"github.com/eventpipeline/eventpipeline/telemetry"
	"github.com/eventpipeline/eventpipeline/telemetry/elasticsearch"
)

func TestNewPublisherValidation(t *testing.T) {
	cloudID := "my-deployment:" + base64.StdEncoding.EncodeToString([]byte("us-east-1.aws.found.io$abc123$def456"))
	tests := []struct {
		name string
		cfg  elasticsearch.Config
		want []string // substrings of the error; none means valid
	}{
		{"zero config", elasticsearch.Config{}, nil},
		{"documented example", elasticsearch.Config{Hosts: []string{"localhost:9200"}, IndexPrefix: "pipeline-metrics"}, nil},
		{"https and path", elasticsearch.Config{Hosts: []string{"https://es.example.com:443/proxy/"}}, nil},
		{"cloud id", elasticsearch.Config{CloudID: telemetry.NewSecret(cloudID), APIKey: telemetry.NewSecret("a2V5")}, nil},
		{"tls config", elasticsearch.Config{TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13}}, nil},
		{"empty host", elasticsearch.Config{Hosts: []string{" "}}, []string{"Hosts[0] is empty"}},
		{"bad scheme", elasticsearch.Config{Hosts: []string{"ftp://es:21"}}, []string{"scheme must be http or https"}},
		{"bad port", elasticsearch.Config{Hosts: []string{"localhost:99999"}}, []string{"invalid port"}},
		{"credentials in URL", elasticsearch.Config{Hosts: []string{"https://elastic:hunter2@es:9200"}}, []string{"holds credentials"}},
		{"query in URL", elasticsearch.Config{Hosts: []string{"http://es:9200/?x=1"}}, []string{"query or fragment"}},
		{"hosts and cloud id", elasticsearch.Config{Hosts: []string{"es:9200"}, CloudID: telemetry.NewSecret(cloudID)}, []string{"Hosts and CloudID are both set"}},
		{"bad cloud id", elasticsearch.Config{CloudID: telemetry.NewSecret("no-colon")}, []string{"CloudID is invalid"}},
		{"bad cloud id base64", elasticsearch.Config{CloudID: telemetry.NewSecret("name:%%%")}, []string{"not valid base64"}},
		{"cloud id without cluster", elasticsearch.Config{CloudID: telemetry.NewSecret("name:" + base64.StdEncoding.EncodeToString([]byte("found.io")))},
			[]string{"does not name a host and a cluster"}},
		{"cloud id with a bad host", elasticsearch.Config{CloudID: telemetry.NewSecret("name:" + base64.StdEncoding.EncodeToString([]byte("found io$abc")))},
			[]string{"its host is not valid"}},
		{"upper-case prefix", elasticsearch.Config{IndexPrefix: "Pipeline"}, []string{"must be lower case"}},
		{"prefix with space", elasticsearch.Config{IndexPrefix: "pipe line"}, []string{`must not contain ' '`}},
		{"prefix with star", elasticsearch.Config{IndexPrefix: "pipe*"}, []string{`must not contain '*'`}},
		{"prefix starting with _", elasticsearch.Config{IndexPrefix: "_pipe"}, []string{"must not start with"}},
		{"prefix too long", elasticsearch.Config{IndexPrefix: strings.Repeat("a", 201)}, []string{"longer than 200 bytes"}},
		{"password without user", elasticsearch.Config{Password: telemetry.NewSecret("x")}, []string{"Password is set without Username"}},
		{"user without password", elasticsearch.Config{Username: "elastic"}, []string{"Username is set without Password"}},
		{"user with a colon", elasticsearch.Config{Username: "ela:stic", Password: telemetry.NewSecret("p")}, []string{"Username must not contain ':'"}},
		{"api key and user", elasticsearch.Config{Username: "u", APIKey: telemetry.NewSecret("k")}, []string{"APIKey and Username are both set"}},
		{"api key with a control character", elasticsearch.Config{APIKey: telemetry.NewSecret("a2V5\x01")}, []string{"APIKey must not contain"}},
		{"api key with DEL", elasticsearch.Config{APIKey: telemetry.NewSecret("a2V5\x7f")}, []string{"APIKey must not contain"}},
		{"transport and tls", elasticsearch.Config{Transport: http.DefaultTransport, TLSConfig: &tls.Config{}}, []string{"configure TLS on it"}},
		{"bad CA", elasticsearch.Config{CACert: []byte("not a pem")}, []string{"CACert holds no PEM certificate"}},
		{"negative timeout", elasticsearch.Config{Timeout: -1}, []string{"Timeout must not be negative"}},
		{"negative flush bytes", elasticsearch.Config{FlushBytes: -1}, []string{"FlushBytes must not be negative"}},
		{"every problem at once", elasticsearch.Config{Hosts: []string{"ftp://x"}, IndexPrefix: "UP", Password: telemetry.NewSecret("p")}, []string{"scheme", "lower case", "Password is set"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := elasticsearch.NewPublisher(tc.cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				p.Close(context.Background())
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "elasticsearch: ") {
				t.Errorf("error %q does not start with the package name", err)
			}
		})
	}
}

func TestIndexPrefixErrorAs(t *testing.T) {
	_, err := elasticsearch.NewPublisher(elasticsearch.Config{IndexPrefix: "a|b"})
	var pe *elasticsearch.IndexPrefixError
	if !errors.As(err, &pe) || pe.Prefix != "a|b" {
		t.Fatalf("got %v, want an *IndexPrefixError for a|b", err)
	}
}

// TestInsecureHosts checks that credentials are never sent over plain
// http to a host other than loopback, unless AllowInsecure says so.
func TestInsecureHosts(t *testing.T) {
	pass := telemetry.NewSecret("pa55")
	key := telemetry.NewSecret("a2V5")
	tests := []struct {
		name     string
		cfg      elasticsearch.Config
		insecure bool // want an error wrapping ErrInsecure
	}{
		{"password over http", elasticsearch.Config{Hosts: []string{"http://es.example.com:9200"}, Username: "elastic", Password: pass}, true},
		{"api key over http", elasticsearch.Config{Hosts: []string{"http://10.0.0.7:9200"}, APIKey: key}, true},
		{"username alone over http", elasticsearch.Config{Hosts: []string{"http://es:9200"}, Username: "elastic"}, true},
		{"no scheme means http", elasticsearch.Config{Hosts: []string{"es.example.com:9200"}, APIKey: key}, true},
		{"one of several hosts", elasticsearch.Config{Hosts: []string{"https://es1:9200", "http://es2:9200"}, APIKey: key}, true},
		{"ipv6 not loopback", elasticsearch.Config{Hosts: []string{"http://[2001:db8::1]:9200"}, APIKey: key}, true},
		{"looks like localhost", elasticsearch.Config{Hosts: []string{"http://localhost.example.com:9200"}, APIKey: key}, true},
		{"opt-out", elasticsearch.Config{Hosts: []string{"http://es.example.com:9200"}, Username: "elastic", Password: pass, AllowInsecure: true}, false},
		{"https", elasticsearch.Config{Hosts: []string{"https://es.example.com:9200"}, Username: "elastic", Password: pass}, false},
		{"no credentials", elasticsearch.Config{Hosts: []string{"http://es.example.com:9200"}}, false},
		{"localhost", elasticsearch.Config{Hosts: []string{"http://localhost:9200"}, APIKey: key}, false},
		{"LOCALHOST without scheme", elasticsearch.Config{Hosts: []string{"LOCALHOST:9200"}, APIKey: key}, false},
		{"127.0.0.1", elasticsearch.Config{Hosts: []string{"127.0.0.1:9200"}, Username: "elastic", Password: pass}, false},
		{"127.8.9.10", elasticsearch.Config{Hosts: []string{"http://127.8.9.10:9200"}, APIKey: key}, false},
		{"::1", elasticsearch.Config{Hosts: []string{"http://[::1]:9200"}, APIKey: key}, false},
		{"default host", elasticsearch.Config{Username: "elastic", Password: pass}, false},
		{"cloud id is https", elasticsearch.Config{CloudID: telemetry.NewSecret("d:" + base64.StdEncoding.EncodeToString([]byte("example.com$abc$def"))), APIKey: key}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := elasticsearch.NewPublisher(tc.cfg)
			if got := errors.Is(err, elasticsearch.ErrInsecure); got != tc.insecure {
				t.Fatalf("NewPublisher: got error %v, want ErrInsecure %v", err, tc.insecure)
			}
			if !tc.insecure {
				if err != nil {
					t.Fatalf("NewPublisher: %v", err)
				}
				p.Close(context.Background())
				return
			}
			for _, want := range []string{"elasticsearch: credentials over plain http", "is not https", "AllowInsecure"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "pa55") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

// TestInsecureSkipVerify checks that a TLSConfig that turns off the
// verification of the server's certificate is refused unless
// AllowInsecure says so, as in the module's other publishers.
func TestInsecureSkipVerify(t *testing.T) {
	skip := &tls.Config{InsecureSkipVerify: true}
	tests := []struct {
		name string
		cfg  elasticsearch.Config
		want string // substring of the error; empty means valid
	}{
		{"refused", elasticsearch.Config{Hosts: []string{"https://es.example.com:9200"}, TLSConfig: skip},
			"TLSConfig.InsecureSkipVerify is set: the server's certificate would not be verified (set AllowInsecure to allow it)"},
		{"refused without credentials nor hosts", elasticsearch.Config{TLSConfig: skip}, "InsecureSkipVerify"},
		{"refused with a CA", elasticsearch.Config{TLSConfig: skip, CACert: testCA(t)}, "InsecureSkipVerify"},
		{"opt-out", elasticsearch.Config{Hosts: []string{"https://es.example.com:9200"}, TLSConfig: skip, AllowInsecure: true}, ""},
		{"verification on", elasticsearch.Config{TLSConfig: &tls.Config{ServerName: "es"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := elasticsearch.NewPublisher(tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				p.Close(context.Background())
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "elasticsearch: ") {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// testCA returns the PEM certificate of a TLS test server.
func testCA(t *testing.T) []byte {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// TestSecretsNeverPrinted prints every exported type that holds a
// credential (Config, *Config, *Publisher, and the Secrets themselves) with
// every fmt verb, logs them with slog, encodes the Config to JSON and
// looks for the credentials, in clear or hex, in the output.
func TestSecretsNeverPrinted(t *testing.T) {
	const (
		password = "pa55-PLAIN-word"
		apiKey   = "QVBJLUtFWS1QTEFJTg=="
	)
	cloudID := "deployment:" + base64.StdEncoding.EncodeToString([]byte("cloud.example.com$CLOUDUUID$kibana"))
	basic := elasticsearch.Config{
		Hosts: []string{"https://es.example.com:9200"}, Username: "elastic", Password: telemetry.NewSecret(password),
	}
	keyed := elasticsearch.Config{Hosts: []string{"https://es.example.com:9200"}, APIKey: telemetry.NewSecret(apiKey)}
	cloud := elasticsearch.Config{CloudID: telemetry.NewSecret(cloudID), APIKey: telemetry.NewSecret(apiKey)}
	secrets := []string{password, apiKey, cloudID, "CLOUDUUID"}
	for _, s := range secrets[:3] {
		secrets = append(secrets, fmt.Sprintf("%x", s), fmt.Sprintf("%X", s))
	}

	values := map[string]any{}
	for name, cfg := range map[string]elasticsearch.Config{"basic": basic, "api key": keyed, "cloud id": cloud} {
		pub, err := elasticsearch.NewPublisher(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close(context.Background())
		values[name+" Config"] = cfg
		values[name+" *Config"] = &cfg
		values[name+" *Publisher"] = pub
		values[name+" Password"] = cfg.Password
		values[name+" APIKey"] = cfg.APIKey
		values[name+" CloudID"] = cfg.CloudID
		values[name+" struct holding a *Publisher"] = struct{ P *elasticsearch.Publisher }{pub}
	}
	check := func(what, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s leaks a secret (%q): %s", what, s, out)
			}
		}
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			check(name+" with "+verb, fmt.Sprintf(verb, v))
		}
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("m", "v", v)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "v", v)
		check(name+" in slog text", text.String())
		check(name+" in slog JSON", js.String())
	}
	for name, cfg := range map[string]elasticsearch.Config{"basic": basic, "api key": keyed, "cloud id": cloud} {
		// The Config as a whole holds a *tls.Config, which encoding/json
		// cannot encode; a user's own struct of credentials can be.
		js, err := json.Marshal(struct {
			Username                string
			Password, APIKey, Cloud telemetry.Secret
			Creds                   map[string]telemetry.Secret
		}{cfg.Username, cfg.Password, cfg.APIKey, cfg.CloudID, map[string]telemetry.Secret{"p": cfg.Password}})
		if err != nil {
			t.Fatal(err)
		}
		check(name+" credentials as JSON", string(js))
		// Validation errors of a config holding secrets.
		bad := cfg
		bad.IndexPrefix = "UPPER"
		bad.Hosts = append(bad.Hosts, "http://elastic:"+password+"@es:9200")
		_, err = elasticsearch.NewPublisher(bad)
		check(name+" validation error", err.Error())
	}
	pub, err := elasticsearch.NewPublisher(basic)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	if got, want := fmt.Sprintf("%+v", pub), "elasticsearch.Publisher{hosts: https://es.example.com:9200, index_prefix: event-pipeline-metrics}"; got != want {
		t.Errorf("%%+v of a Publisher: got %q, want %q", got, want)
	}
	if got := fmt.Sprint(basic.Password); got != "REDACTED" {
		t.Errorf("Password prints %q, want REDACTED", got)
	}
}

func TestSecretsNotLoggedWhileRunning(t *testing.T) {
	const user, pass = "elastic", "run-time-pa55"
	srv := newServer(t, esfake.Options{Username: user, Password: pass})
	var logs logBuffer
	pub := newPublisher(t, srv, elasticsearch.Config{Username: user, Password: telemetry.NewSecret("wrong-" + pass), Logger: logs.logger()})
	rec, err := telemetry.NewRecorder(telemetry.WithPublishers(pub), telemetry.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	rec.StartEvent("e", "t1")
	rec.EndEvent("t1", nil)
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := rec.PublisherStats()[0]; st.DroppedFailed != 1 {
		t.Errorf("stats: got %+v, want the record dropped after the 401", st)
	}
	out := logs.String()
	if !strings.Contains(out, "401") {
		t.Errorf("the log does not report the 401:\n%s", out)
	}
	if strings.Contains(out, pass) {
		t.Errorf("the log leaks the password:\n%s", out)
	}
}

// TestQuerySecretNeverShown checks that a secret in the query or fragment
// of a host, which NewPublisher refuses, shows in neither its errors nor
// the Config logged with slog, whatever else is wrong with the host; the
// error still shows the host, with the value redacted.
func TestQuerySecretNeverShown(t *testing.T) {
	const secret = "s3cr3t-in-the-query"
	tests := []struct{ name, host, want string }{
		{"query", "http://es:9200/?api_key=" + secret, `"http://es:9200/?api_key=xxxxx" must not have a query`},
		{"fragment", "http://es:9200/#" + secret, `"http://es:9200/#xxxxx" must not have a query or fragment`},
		{"bad scheme", "ftp://es:21/?api_key=" + secret, `"ftp://es:21/?api_key=xxxxx": scheme must be`},
		{"no host", "http:///?api_key=" + secret, `"http:///?api_key=xxxxx" has no host`},
		{"no scheme", "es:9200/?api_key=" + secret, `"es:9200/?api_key=xxxxx" must not have a query`},
		{"unparsable", "http://es:9200/%zz?api_key=" + secret, `"http://es:9200/%zz?xxxxx" is not a valid URL`},
		{"unparsable, credentials", "http://elastic:" + secret + "@es:x/", "is not a valid URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := elasticsearch.Config{Hosts: []string{tc.host}}
			_, err := elasticsearch.NewPublisher(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %s", err, tc.want)
			}
			var logs bytes.Buffer
			slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", cfg)
			for _, s := range []string{fmt.Sprint(err), logs.String()} {
				if strings.Contains(s, secret) {
					t.Errorf("output reveals the secret: %s", s)
				}
			}
		})
	}
}

// TestCACertTrustsTheCluster sends to a cluster behind TLS with a
// certificate of its own: trusted with CACert, alone or added to a
// TLSConfig, and refused without it.
func TestCACertTrustsTheCluster(t *testing.T) {
	srv := newServer(t, esfake.Options{})
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	front.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	front.StartTLS()
	t.Cleanup(front.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})
	for _, tc := range []struct {
		name    string
		cfg     elasticsearch.Config
		wantErr string
	}{
		{name: "CACert", cfg: elasticsearch.Config{CACert: ca, IndexPrefix: "ca-alone"}},
		{name: "CACert and TLSConfig", cfg: elasticsearch.Config{CACert: ca, IndexPrefix: "ca-with-tls",
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13}}},
		{name: "no CACert", cfg: elasticsearch.Config{IndexPrefix: "no-ca"}, wantErr: "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Hosts = []string{front.URL}
			pub := newPublisher(t, srv, tc.cfg)
			before := srv.TemplatePuts()
			err := pub.InstallTemplate(context.Background())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("InstallTemplate over TLS: %v", err)
				}
				if got := srv.TemplatePuts() - before; got != 1 {
					t.Errorf("got %d templates installed, want 1", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
