package telemetry

import (
	"encoding/hex"
	"errors"
)

// A SpanContext identifies the span that traces a run, as W3C Trace
// Context and OpenTelemetry define it: the id of the trace, the id of the
// span, and whether the trace is sampled. Give it to a run with
// [WithSpanContext]; package telemetry/oteltrace, and the job queue
// adapters of contrib, make it of OpenTelemetry spans. The zero SpanContext
// means the run is not traced.
type SpanContext struct {
	TraceID [16]byte // the trace's id
	SpanID  [8]byte  // the span's id
	Sampled bool     // whether the trace is sampled
}

// IsValid reports whether s has a trace id and a span id, neither all
// zeros.
func (s SpanContext) IsValid() bool {
	return s.TraceID != [16]byte{} && s.SpanID != [8]byte{}
}

// TraceIDString returns the trace id as 32 lowercase hexadecimal digits.
func (s SpanContext) TraceIDString() string { return hex.EncodeToString(s.TraceID[:]) }

// SpanIDString returns the span id as 16 lowercase hexadecimal digits.
func (s SpanContext) SpanIDString() string { return hex.EncodeToString(s.SpanID[:]) }

// ErrInvalidOption is wrapped by the error of a recording call given an
// option that is invalid or does not apply to it.
var ErrInvalidOption = errors.New("telemetry: invalid option")

// checkSpan returns why s is not a usable span context, or "": either both
// ids are set, or s is the zero SpanContext (the run is not traced).
func checkSpan(s SpanContext) string {
	switch {
	case s == SpanContext{}:
		return ""
	case s.TraceID == [16]byte{} && s.SpanID == [8]byte{}:
		return "the span context is sampled but has no trace id and no span id"
	case s.TraceID == [16]byte{}:
		return "the span context has a span id but no trace id"
	case s.SpanID == [8]byte{}:
		return "the span context has a trace id but no span id"
	}
	return ""
}

// parseID decodes the hexadecimal id of a JSON document into dst; it
// reports whether s is exactly 2*len(dst) lowercase hexadecimal digits, not
// all zeros.
func parseID(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	hex.Decode(dst, []byte(s)) // cannot fail: the length and digits are checked

	for _, b := range dst {
		if b != 0 {
			return true
		}
	}
	return false
}
