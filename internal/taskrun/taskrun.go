// Package taskrun records the start of a run of a task delivered by a
// queue engine (asynq, River), for the engines' adapters in contrib/. It
// is not part of the module's API.
package taskrun

import (
	"errors"
	"strconv"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// MaxOverlapIDs is how many task ids derived from a task's id Start tries
// for a run before it gives up: [OverlapID] and then the
// [FurtherOverlapID]s 2 to MaxOverlapIDs. The package docs of
// contrib/asynq and contrib/river name it ("#2#8"): change them with it.
const MaxOverlapIDs = 8

// Start records with rec the start of the run of the event name for
// attempt (1 for the first) of the task id, with opts, and returns the
// task id it recorded the run under, and the error of
// [telemetry.Recorder.StartEvent].
//
// That is id, unless an earlier run of id is still pending: a queue
// engine delivers a task again when an attempt's handler outlives its
// deadline, and the handler may still be running in this process. The
// run is then recorded under [OverlapID](id, attempt), so that both runs
// are recorded. A task id may itself end in "#" and a number (asynq takes
// the ids its users choose), or the Recorder may hold runs of other
// code: if a run under OverlapID(id, attempt) is pending too, Start
// tries [FurtherOverlapID](id, attempt, n) for n from 2 to
// [MaxOverlapIDs], in order, and records the run under the first one
// that no pending run has. Only when all of them are pending does it
// return the last one with [telemetry.ErrAlreadyStarted]. Any other
// error of StartEvent ends the search, returned with the id it was for.
//
// When no run of id is pending, Start costs one call of StartEvent.
func Start(rec *telemetry.Recorder, name, id string, attempt int, opts ...telemetry.StartOption) (string, error) {
	err := rec.StartEvent(name, id, opts...)
	if err == nil || !errors.Is(err, telemetry.ErrAlreadyStarted) {
		return id, err
	}
	try := OverlapID(id, attempt)
	for n := 2; ; n++ {
		err = rec.StartEvent(name, try, opts...)
		if err == nil || !errors.Is(err, telemetry.ErrAlreadyStarted) || n > MaxOverlapIDs {
			return try, err
		}
		try = FurtherOverlapID(id, attempt, n)
	}
}

// OverlapID returns the task id of attempt of the task id when a run of
// id is still pending: id, "#", and the attempt's number.
func OverlapID(id string, attempt int) string {
	return id + "#" + strconv.Itoa(attempt)
}

// FurtherOverlapID returns the task id that [Start] tries for attempt of
// the task id, the n-th time (n ≥ 2) that a run is pending under the id
// it tried before: [OverlapID](id, attempt), "#", and n. The first time
// is OverlapID itself.
func FurtherOverlapID(id string, attempt, n int) string {
	return OverlapID(id, attempt) + "#" + strconv.Itoa(n)
}
