package telemetry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// holder keeps a Secret where fmt cannot call its methods: an unexported
// field, by value and behind a pointer, as a publisher keeps its config.
type holder struct {
	name   string
	secret telemetry.Secret
	inner  struct{ token telemetry.Secret }
	ptr    *telemetry.Secret
	list   []telemetry.Secret
	byKey  map[string]telemetry.Secret
}

func TestSecretNeverPrints(t *testing.T) {
	const value = "hunter2-s3cr3t"
	s := telemetry.NewSecret(value)
	h := holder{name: "h", secret: s, ptr: &s, list: []telemetry.Secret{s}, byKey: map[string]telemetry.Secret{"k": s}}
	h.inner.token = s
	exported := struct {
		Secret telemetry.Secret
		Ptr    *telemetry.Secret
	}{s, &s}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%p"}
	for _, v := range []any{s, &s, h, &h, exported, &exported} {
		for _, verb := range verbs {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) || strings.Contains(out, fmt.Sprintf("%X", value)) {
				t.Errorf("fmt.Sprintf(%q, %T) = %q: shows the secret", verb, v, out)
			}
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "secret", s, "holder", h, "exported", exported)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "secret", s, "holder", h, "exported", exported)
	if strings.Contains(buf.String(), value) {
		t.Errorf("slog output shows the secret: %s", buf.String())
	}
	b, err := json.Marshal(exported)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"Secret":"REDACTED","Ptr":"REDACTED"}`; got != want {
		t.Errorf("json.Marshal: got %s, want %s", got, want)
	}
}

func TestSecretStringers(t *testing.T) {
	s := telemetry.NewSecret("hunter2")
	if got, got2 := s.String(), s.GoString(); got != "REDACTED" || got2 != "REDACTED" {
		t.Errorf("String() = %q, GoString() = %q; want REDACTED for both", got, got2)
	}
}

func TestSecretReveal(t *testing.T) {
	if got := telemetry.NewSecret("k").Reveal(); got != "k" {
		t.Errorf("Reveal: got %q, want %q", got, "k")
	}
	var zero telemetry.Secret
	if zero.Reveal() != "" || !zero.IsZero() || !telemetry.NewSecret("").IsZero() || telemetry.NewSecret("x").IsZero() {
		t.Error("zero and empty Secrets: want Reveal \"\" and IsZero true; non-empty: IsZero false")
	}
	var loaded struct{ Token telemetry.Secret }
	if err := json.Unmarshal([]byte(`{"Token":"abc"}`), &loaded); err != nil {
		t.Fatal(err)
	}
	if got := loaded.Token.Reveal(); got != "abc" {
		t.Errorf("UnmarshalText: got %q, want %q", got, "abc")
	}
}

func ExampleSecret() {
	key := telemetry.NewSecret("my-api-key")
	fmt.Println(key)
	fmt.Printf("%#v %q\n", key, key)
	fmt.Println(len(key.Reveal()))
	// Output:
	// REDACTED
	// REDACTED REDACTED
	// 10
}
