package elasticsearch

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/eventpipeline/eventpipeline/telemetry"
)

// Index name parts after the prefix.
const (
	eventIndexPart   = "-event-"
	networkIndexPart = "-network-"
	indexDateLayout  = "2006.01.02"
)

// EventIndex returns the index an event record goes to:
// <prefix>-event-YYYY.MM.DD, with the UTC date of its start time.
func EventIndex(prefix string, m telemetry.EventMetrics) string {
	return prefix + eventIndexPart + m.StartTime.UTC().Format(indexDateLayout)
}

// NetworkIndex returns the index a network record goes to:
// <prefix>-network-YYYY.MM.DD, with the UTC date of its start time.
func NetworkIndex(prefix string, m telemetry.NetworkMetrics) string {
	return prefix + networkIndexPart + m.StartTime.UTC().Format(indexDateLayout)
}

// indexNamer names the index of records, as a JSON string ready for the
// action line of a bulk request, reusing the name of the previous record of
// the same kind when the day is the same.
type indexNamer struct {
	prefix string
	cache  [2]struct {
		day  int64
		name string
	}
}

// quoted returns the JSON string of the index of a record of kind (0 for
// events, 1 for network operations) whose index name part is part, started
// at t.
func (n *indexNamer) quoted(kind int, part string, t time.Time) string {
	t = t.UTC()
	day := t.Unix() / 86400
	if t.Unix() < 0 && t.Unix()%86400 != 0 {
		day--
	}
	c := &n.cache[kind]
	if c.name != "" && c.day == day {
		return c.name
	}
	js, _ := json.Marshal(n.prefix + part + t.Format(indexDateLayout)) // a string: never fails
	c.day, c.name = day, string(js)
	return c.name
}

// DocumentID returns the _id of the document of a record: the same record
// always gets the same id, so a batch sent again overwrites its documents
// instead of duplicating them. It is a hash of the record's identity: its
// kind, task id, start time (to the nanosecond) and event name, or
// operation, host and port.
func DocumentID(record any) string {
	var buf [256]byte
	b := buf[:0]
	switch m := record.(type) {
	case telemetry.EventMetrics:
		b = append(b, 'e', 0)
		b = appendIdentity(b, m.TaskID, m.StartTime, m.EventName, m.PipelineID, 0)
	case *telemetry.EventMetrics:
		return DocumentID(*m)
	case telemetry.NetworkMetrics:
		b = append(b, 'n', 0)
		b = appendIdentity(b, m.TaskID, m.StartTime, m.Operation, m.Host, m.Port)
	case *telemetry.NetworkMetrics:
		return DocumentID(*m)
	default:
		return ""
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

func appendIdentity(b []byte, taskID string, start time.Time, a, c string, port int) []byte {
	b = binary.AppendUvarint(b, uint64(len(taskID)))
	b = append(b, taskID...)
	b = binary.BigEndian.AppendUint64(b, uint64(start.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(start.Nanosecond()))
	b = binary.AppendUvarint(b, uint64(len(a)))
	b = append(b, a...)
	b = binary.AppendUvarint(b, uint64(len(c)))
	b = append(b, c...)
	return binary.BigEndian.AppendUint16(b, uint16(port))
}

// timestampPrefix is the start of every document, before its @timestamp.
const timestampPrefix = `{"@timestamp":"`

// appendDocument appends the document of a record: the JSON of
// telemetry's MarshalJSON (the fields of [telemetry.FormatMetrics],
// metric_type and duration_seconds or latency_seconds included) with
// @timestamp, the record's start time, added first.
func appendDocument(b []byte, start time.Time, js []byte) []byte {
	b = append(b, timestampPrefix...)
	b = start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000Z07:00")
	b = append(b, '"', ',')
	return append(b, js[1:]...) // js starts with '{'
}
