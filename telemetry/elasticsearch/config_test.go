package elasticsearch_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

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
		{"seed example", elasticsearch.Config{Hosts: []string{"localhost:9200"}, IndexPrefix: "pipeline-metrics"}, nil},
		{"https and path", elasticsearch.Config{Hosts: []string{"https://es.example.com:443/proxy/"}}, nil},
		{"cloud id", elasticsearch.Config{CloudID: elasticsearch.Secret(cloudID), APIKey: "a2V5"}, nil},
		{"tls config", elasticsearch.Config{TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13}}, nil},
		{"empty host", elasticsearch.Config{Hosts: []string{" "}}, []string{"Hosts[0] is empty"}},
		{"bad scheme", elasticsearch.Config{Hosts: []string{"ftp://es:21"}}, []string{"scheme must be http or https"}},
		{"bad port", elasticsearch.Config{Hosts: []string{"localhost:99999"}}, []string{"invalid port"}},
		{"credentials in URL", elasticsearch.Config{Hosts: []string{"https://elastic:hunter2@es:9200"}}, []string{"holds credentials"}},
		{"query in URL", elasticsearch.Config{Hosts: []string{"http://es:9200/?x=1"}}, []string{"query or fragment"}},
		{"hosts and cloud id", elasticsearch.Config{Hosts: []string{"es:9200"}, CloudID: elasticsearch.Secret(cloudID)}, []string{"Hosts and CloudID are both set"}},
		{"bad cloud id", elasticsearch.Config{CloudID: "no-colon"}, []string{"CloudID is invalid"}},
		{"bad cloud id base64", elasticsearch.Config{CloudID: "name:%%%"}, []string{"not valid base64"}},
		{"upper-case prefix", elasticsearch.Config{IndexPrefix: "Pipeline"}, []string{"must be lower case"}},
		{"prefix with space", elasticsearch.Config{IndexPrefix: "pipe line"}, []string{`must not contain ' '`}},
		{"prefix with star", elasticsearch.Config{IndexPrefix: "pipe*"}, []string{`must not contain '*'`}},
		{"prefix starting with _", elasticsearch.Config{IndexPrefix: "_pipe"}, []string{"must not start with"}},
		{"prefix too long", elasticsearch.Config{IndexPrefix: strings.Repeat("a", 201)}, []string{"longer than 200 bytes"}},
		{"password without user", elasticsearch.Config{Password: "x"}, []string{"Password is set without Username"}},
		{"api key and user", elasticsearch.Config{Username: "u", APIKey: "k"}, []string{"APIKey and Username are both set"}},
		{"transport and tls", elasticsearch.Config{Transport: http.DefaultTransport, TLSConfig: &tls.Config{}}, []string{"configure TLS on it"}},
		{"bad CA", elasticsearch.Config{CACert: []byte("not a pem")}, []string{"CACert holds no PEM certificate"}},
		{"negative durations", elasticsearch.Config{Timeout: -1, RetryBackoff: -1, MaxRetryBackoff: -1}, []string{"Timeout must not be negative", "RetryBackoff must not be negative", "MaxRetryBackoff must not be negative"}},
		{"negative flush bytes", elasticsearch.Config{FlushBytes: -1}, []string{"FlushBytes must not be negative"}},
		{"backoff order", elasticsearch.Config{RetryBackoff: time.Second, MaxRetryBackoff: time.Millisecond}, []string{"less than RetryBackoff"}},
		{"every problem at once", elasticsearch.Config{Hosts: []string{"ftp://x"}, IndexPrefix: "UP", Password: "p"}, []string{"scheme", "lower case", "Password is set"}},
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

func TestSecretsNeverPrinted(t *testing.T) {
	const (
		password = "pa55-PLAIN-word"
		apiKey   = "QVBJLUtFWS1QTEFJTg=="
		cloudRaw = "QVBJLUNMT1VELVBMQUlO"
	)
	cfg := elasticsearch.Config{
		Hosts: []string{"es.example.com:9200"}, Username: "elastic",
		Password: password, APIKey: apiKey, CloudID: "deployment:" + cloudRaw,
	}
	secrets := []string{password, apiKey, cloudRaw}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outputs = append(outputs, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg), fmt.Sprintf(verb, cfg.Password))
	}
	// The Config as a whole holds a *tls.Config, which encoding/json cannot
	// encode; a user's own struct of credentials can be encoded.
	js, err := json.Marshal(struct{ Password, APIKey, CloudID elasticsearch.Secret }{cfg.Password, cfg.APIKey, cfg.CloudID})
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(js))
	var logs bytes.Buffer
	l := slog.New(slog.NewTextHandler(&logs, nil))
	l.Info("config", "cfg", cfg, "password", cfg.Password, "any", any(cfg.APIKey))
	outputs = append(outputs, logs.String())
	// Validation errors of a config holding secrets.
	bad := cfg
	bad.IndexPrefix = "UPPER"
	_, err = elasticsearch.NewPublisher(bad)
	outputs = append(outputs, err.Error())
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("output leaks a secret: %s", out)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(cfg.Password), "REDACTED") {
		t.Errorf("Secret prints %q, want REDACTED", fmt.Sprint(cfg.Password))
	}
}

func TestSecretsNotLoggedWhileRunning(t *testing.T) {
	const user, pass = "elastic", "run-time-pa55"
	srv := newServer(t, esfake.Options{Username: user, Password: pass})
	var logs logBuffer
	pub := newPublisher(t, srv, elasticsearch.Config{Username: user, Password: "wrong-" + pass, Logger: logs.logger()})
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
