// Package otelspan marks the OpenTelemetry spans of the engines' adapters
// (contrib/asynq, contrib/river) failed, with an error text no longer than
// a record keeps (telemetry.Recorder.ErrorText, or ErrorText for a span
// without a record).
package otelspan

import (
	"reflect"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventpipeline/eventpipeline/internal/safetext"
	"github.com/eventpipeline/eventpipeline/telemetry"
)

// ErrorText returns the error text of a span that failed with err and
// has no record, whose Recorder's ErrorText would give the record's:
// err's text cut as a record's is at telemetry.DefaultMaxErrorLength. So
// a span never carries a longer text than a record keeps.
func ErrorText(err error) string {
	return safetext.Cut(err.Error(), telemetry.DefaultMaxErrorLength)
}

// Fail records that span failed with err, whose text is text: the
// exception event that span.RecordError adds (exception.type and
// exception.message, here text instead of err's whole text) and status
// Error with text.
func Fail(span trace.Span, err error, text string) {
	span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
		semconv.ExceptionType(errorType(err)),
		semconv.ExceptionMessage(text),
	))
	span.SetStatus(codes.Error, text)
}

// errorType returns the exception.type of err as the OpenTelemetry SDK's
// RecordError names it: the package path and name of its type, or, for a
// type without a name such as a pointer, the type as Go prints it.
func errorType(err error) string {
	t := reflect.TypeOf(err)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}
