// Package taskrun records the start of a run of a task delivered by a
// queue engine (asynq, River), for the engines' adapters in contrib/. It
// is not part of the module's API.
package taskrun

import (
	"errors"
	"strconv"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Start records with rec the start of the run of the event name for
// attempt (1 for the first) of the task id, with opts, and returns the
// task id it recorded the run under, and the error of
// [telemetry.Recorder.StartEvent].
//
// That is id, unless an earlier run of id is still pending: a queue
// engine delivers a task again when an attempt's handler outlives its
// deadline, and the handler may still be running in this process. The
// run is then recorded under [OverlapID](id, attempt), so that both runs
// are recorded.
func Start(rec *telemetry.Recorder, name, id string, attempt int, opts ...telemetry.StartOption) (string, error) {
	err := rec.StartEvent(name, id, opts...)
	if err == nil || !errors.Is(err, telemetry.ErrAlreadyStarted) {
		return id, err
	}
	id = OverlapID(id, attempt)
	return id, rec.StartEvent(name, id, opts...)
}

// OverlapID returns the task id of attempt of the task id when a run of
// id is still pending: id, "#", and the attempt's number.
func OverlapID(id string, attempt int) string {
	return id + "#" + strconv.Itoa(attempt)
}
