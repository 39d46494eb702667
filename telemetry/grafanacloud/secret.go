package grafanacloud

import (
	"fmt"
	"io"
	"log/slog"
)

// redacted is what a [Secret] prints instead of its value.
const redacted = "REDACTED"

// A Secret is a string that never shows its value when printed, logged or
// marshalled: String, GoString, Format (every fmt verb), LogValue and
// MarshalText all give "REDACTED". Convert a string to it with
// Secret(s); the Publisher reads the value itself.
type Secret string

// String returns "REDACTED".
func (Secret) String() string { return redacted }

// GoString returns "REDACTED", for the %#v verb.
func (Secret) GoString() string { return redacted }

// Format writes "REDACTED" whatever the verb and flags, so that %x or %q
// cannot reveal the value either.
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue returns "REDACTED", so that log/slog never records the value.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "REDACTED", so that encoding a Config as JSON, for
// example in a debug dump, does not reveal the value.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

var (
	_ fmt.Stringer   = Secret("")
	_ fmt.GoStringer = Secret("")
	_ fmt.Formatter  = Secret("")
	_ slog.LogValuer = Secret("")
)
