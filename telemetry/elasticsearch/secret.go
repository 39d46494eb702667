package elasticsearch

import (
	"fmt"
	"log/slog"
)

// redacted is what a Secret prints, whatever the verb.
const redacted = "REDACTED"

// A Secret is a credential, such as a password, an API key or a Cloud ID.
// It prints as REDACTED with every fmt verb, in slog output and in JSON, so
// that a Config can be logged or printed without leaking it. Convert it to
// a string explicitly to read it.
type Secret string

// String returns "REDACTED".
func (Secret) String() string { return redacted }

// GoString returns "REDACTED", for %#v.
func (Secret) GoString() string { return redacted }

// Format writes "REDACTED" for every verb, so that %x, %q or %d reveal
// nothing either.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue returns "REDACTED" as the slog value.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "REDACTED".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "REDACTED", for encoders that use encoding.TextMarshaler.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
