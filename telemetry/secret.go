package telemetry

import (
	"fmt"
	"io"
	"log/slog"
)

// redacted is what a Secret shows instead of its value.
const redacted = "REDACTED"

// A Secret is a credential, such as a password, an API key, a bearer token
// or a Cloud ID. It never shows its value: every fmt verb, log/slog,
// encoding/json and encoding.TextMarshaler give "REDACTED". Because the
// value sits behind a pointer, a struct that holds a Secret in an unexported
// field (where fmt cannot call its methods) prints an address, not the
// value. Read it with [Secret.Reveal]. The zero Secret is empty.
//
// It is the one secret type of the module: the backends' credentials and the
// remote worker's token are Secrets.
type Secret struct {
	v *string
}

// NewSecret returns a Secret holding s.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// Reveal returns the value of s; "" for the zero Secret.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether s is empty.
func (s Secret) IsZero() bool { return s.v == nil || *s.v == "" }

// String returns "REDACTED".
func (Secret) String() string { return redacted }

// GoString returns "REDACTED", for the %#v verb.
func (Secret) GoString() string { return redacted }

// Format writes "REDACTED" whatever the verb and flags, so that %x, %q or
// %d reveal nothing either.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue returns "REDACTED", so that log/slog never records the value.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "REDACTED", so that encoding a configuration as JSON,
// for example in a debug dump, does not reveal the value.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalText sets s to text, so that a Secret can be loaded from a
// configuration file or a flag.
func (s *Secret) UnmarshalText(text []byte) error {
	*s = NewSecret(string(text))
	return nil
}

var (
	_ fmt.Stringer   = Secret{}
	_ fmt.GoStringer = Secret{}
	_ fmt.Formatter  = Secret{}
	_ slog.LogValuer = Secret{}
)
