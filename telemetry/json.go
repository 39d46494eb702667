package telemetry

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eventpipeline/eventpipeline/internal/label"
)

// timeLayout is RFC 3339 with a fixed nine-digit fraction, always in UTC.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// MarshalJSON encodes m as the standardized document of an event run: the
// fields of [FormatMetrics], in snake_case, with times in RFC 3339 (UTC,
// nanoseconds) and null for an absent end time, error, process id or
// pipeline id.
func (m EventMetrics) MarshalJSON() ([]byte, error) {
	return appendEvent(nil, &m), nil
}

// MarshalJSON encodes m as the standardized document of a network
// operation: the fields of [FormatMetrics], as for EventMetrics.
func (m NetworkMetrics) MarshalJSON() ([]byte, error) {
	return appendNetwork(nil, &m), nil
}

func appendEvent(b []byte, m *EventMetrics) []byte {
	b = append(b, `{"metric_type":"event","event_name":`...)
	b = appendString(b, m.EventName)
	b = append(b, `,"task_id":`...)
	b = appendString(b, m.TaskID)
	b = appendTimes(b, m.StartTime, m.EndTime)
	b = append(b, `,"status":`...)
	b = appendString(b, string(m.Status))
	b = append(b, `,"error":`...)
	b = appendOptString(b, m.Error)
	b = append(b, `,"retry_count":`...)
	b = strconv.AppendInt(b, int64(m.RetryCount), 10)
	b = append(b, `,"process_id":`...)
	if m.ProcessID == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(m.ProcessID), 10)
	}
	b = append(b, `,"pipeline_id":`...)
	b = appendOptString(b, m.PipelineID)
	b = append(b, `,"duration_seconds":`...)
	b = appendSeconds(b, m.Duration())
	if !m.EnqueueTime.IsZero() {
		b = append(b, `,"enqueue_time":"`...)
		b = appendTime(b, m.EnqueueTime)
		b = append(b, `","wait_seconds":`...)
		b = appendSeconds(b, m.WaitTime())
	}
	b = appendSpan(b, m.Span)
	return append(b, '}')
}

// appendSeconds appends d in seconds as strconv.AppendFloat(b,
// d.Seconds(), 'f', -1, 64) does, byte for byte, but from the integer
// nanoseconds where it can: when d.Seconds() is the correctly rounded
// quotient and d has at most 15 digits, the shortest decimal that reads
// back as that float is d's exact decimal (two decimals of at most 15
// significant digits are further apart than a float's precision).
//
// Below one second d.Seconds() is float64(d)/1e9 by definition, so the
// check, two float divisions, is needed only from one second up.
func appendSeconds(b []byte, d time.Duration) []byte {
	if d < 0 || d >= 1e15 || d >= time.Second && d.Seconds() != float64(d)/1e9 {
		return strconv.AppendFloat(b, d.Seconds(), 'f', -1, 64)
	}
	b = appendInt(b, int64(d/time.Second))
	ns := uint32(d % time.Second)
	if ns == 0 {
		return b
	}
	n := len(b)
	if cap(b)-n < 10 {
		b = slices.Grow(b, 10)
	}
	t := (*[10]byte)(b[n : n+10])
	t[0], t[1] = '.', byte('0'+ns/100_000_000)
	hi, lo := ns/10_000%10_000, ns%10_000
	*(*[2]byte)(t[2:4]) = digitPairs[hi/100]
	*(*[2]byte)(t[4:6]) = digitPairs[hi%100]
	*(*[2]byte)(t[6:8]) = digitPairs[lo/100]
	*(*[2]byte)(t[8:10]) = digitPairs[lo%100]
	k := 10
	for t[k-1] == '0' {
		k--
	}
	return b[:n+k]
}

// appendSpan appends the trace fields of a traced record; a record that is
// not traced has none.
func appendSpan(b []byte, s SpanContext) []byte {
	if !s.IsValid() {
		return b
	}
	b = append(b, `,"trace_id":"`...)
	b = hex.AppendEncode(b, s.TraceID[:])
	b = append(b, `","span_id":"`...)
	b = hex.AppendEncode(b, s.SpanID[:])
	b = append(b, `","trace_sampled":`...)
	return strconv.AppendBool(b, s.Sampled)
}

func appendNetwork(b []byte, m *NetworkMetrics) []byte {
	b = append(b, `{"metric_type":"network","task_id":`...)
	b = appendString(b, m.TaskID)
	b = append(b, `,"operation":`...)
	b = appendString(b, m.Operation)
	b = append(b, `,"host":`...)
	b = appendString(b, m.Host)
	b = append(b, `,"port":`...)
	b = strconv.AppendInt(b, int64(m.Port), 10)
	b = appendTimes(b, m.StartTime, m.EndTime)
	b = append(b, `,"status":`...)
	b = appendString(b, string(m.Status))
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, m.BytesSent, 10)
	b = append(b, `,"bytes_received":`...)
	b = strconv.AppendInt(b, m.BytesReceived, 10)
	b = append(b, `,"error":`...)
	b = appendOptString(b, m.Error)
	b = append(b, `,"latency_seconds":`...)
	b = appendSeconds(b, m.Latency())
	b = appendSpan(b, m.Span)
	return append(b, '}')
}

// A recordWriter appends the documents of a Recorder's records straight
// from their stored form, byte for byte as appendEvent and appendNetwork
// append those of the records' metrics, without making the EventMetrics or
// NetworkMetrics (and their time.Time values) first. It formats a time
// from the epoch's Unix nanoseconds plus the record's offset, reusing the
// date and minute of the time before (the records of a report mostly share
// them). A record with an offset too far from the epoch for that sum, or
// with a status code it does not know, is left to the general encoders.
type recordWriter struct {
	c    clock
	fast bool // the epoch is near enough to 1970 for epochNano + offset
	// head is the text of the time before, whose second since 1970 is
	// sec (or head is unset, and sec is math.MaxUint64), and minute its
	// minute.
	sec    uint64
	minute uint64
	head   [timeLen]byte
	// pid is the text of the process id written last, pidText[:pidLen]:
	// the records of a report mostly share it.
	pid     int32
	pidLen  int
	pidText [len("-2147483648")]byte
}

// timeLen is the length of a time in timeLayout in years 0 to 9999.
const timeLen = len("2006-01-02T15:04:05.000000000Z")

// maxOffset bounds the offsets recordWriter formats itself: with the epoch
// within 2^32 seconds of 1970, epochNano plus an offset cannot overflow,
// and the times are within years 0 to 9999.
const maxOffset = 1 << 61

func newRecordWriter(c clock) recordWriter {
	s := c.epoch.Unix()
	return recordWriter{c: c, fast: s > -1<<32 && s < 1<<32, sec: math.MaxUint64, minute: math.MaxUint64}
}

// near reports whether the time at offset d is one w formats itself.
func (w *recordWriter) near(d time.Duration) bool {
	return w.fast && d > -maxOffset && d < maxOffset
}

// nearRun reports whether w formats the start and end of a record itself:
// then Sub and After on their times give the exact differences of the
// offsets, and the end is not the zero Time.
func (w *recordWriter) nearRun(start, dur time.Duration, status statusCode) bool {
	return w.near(start) && dur >= 0 && dur < maxOffset && w.near(start+dur) && status <= failed
}

// appendTime appends the time at offset d, which must be near, as
// appendTime(b, w.c.time(d)) does: into b's spare room, from the text of
// the time before, of which a time in the same second needs only its
// nanoseconds written.
func (w *recordWriter) appendTime(b []byte, d time.Duration) []byte {
	u := w.c.epochNano + int64(d)
	if u < 0 { // before 1970: rare enough to leave to the general code
		return appendTime(b, w.c.time(d))
	}
	sec := uint64(u) / 1e9
	ns := uint32(uint64(u) - sec*1e9)
	if sec != w.sec {
		w.setSecond(sec)
	}
	n := len(b)
	if cap(b)-n < timeLen {
		b = slices.Grow(b, timeLen)
	}
	b = b[:n+timeLen]
	t := (*[timeLen]byte)(b[n:])
	*t = w.head
	t[20] = byte('0' + ns/100_000_000)
	hi, lo := ns/10_000%10_000, ns%10_000
	*(*[2]byte)(t[21:23]) = digitPairs[hi/100]
	*(*[2]byte)(t[23:25]) = digitPairs[hi%100]
	*(*[2]byte)(t[25:27]) = digitPairs[lo/100]
	*(*[2]byte)(t[27:29]) = digitPairs[lo%100]
	return b
}

// setSecond sets the head to the text of sec, seconds since 1970 UTC.
func (w *recordWriter) setSecond(sec uint64) {
	const secsPerDay = 24 * 60 * 60
	h := &w.head
	if minute := sec / 60; minute != w.minute {
		days, sod := sec/secsPerDay, sec%secsPerDay
		y, m, d := civil(int64(days))
		put2(h[0:], int(y/100))
		put2(h[2:], int(y%100))
		h[4], h[7], h[10], h[13], h[16], h[19], h[29] = '-', '-', 'T', ':', ':', '.', 'Z'
		put2(h[5:], int(m))
		put2(h[8:], int(d))
		put2(h[11:], int(sod/3600))
		put2(h[14:], int(sod/60%60))
		w.minute = minute
	}
	put2(h[17:], int(sec%60))
	w.sec = sec
}

// appendEnd appends, after the start time's digits, the rest of the start
// time, the end time and the status of a record whose start and duration
// are near.
func (w *recordWriter) appendEnd(b []byte, start, dur time.Duration, status statusCode) []byte {
	switch status {
	case completed:
		b = append(b, `","end_time":"`...)
		b = w.appendTime(b, start+dur)
		return append(b, `","status":"completed"`...)
	case failed:
		b = append(b, `","end_time":"`...)
		b = w.appendTime(b, start+dur)
		return append(b, `","status":"failed"`...)
	}
	return append(b, `","end_time":null,"status":"pending"`...)
}

// appendEvent appends the document of the event record r of taskID, as
// appendEvent(b, r.metrics(w.c, taskID)) does.
func (w *recordWriter) appendEvent(b []byte, taskID string, r *eventRecord) []byte {
	if !w.nearRun(r.start, r.dur, r.status) || r.hasEnq && !w.near(r.enq) {
		m := r.metrics(w.c, taskID)
		return appendEvent(b, &m)
	}
	b = append(b, `{"metric_type":"event","event_name":`...)
	b = appendString(b, r.name)
	b = append(b, `,"task_id":`...)
	b = appendString(b, taskID)
	b = append(b, `,"start_time":"`...)
	b = w.appendTime(b, r.start)
	b = w.appendEnd(b, r.start, r.dur, r.status)
	b = append(b, `,"error":`...)
	b = appendOptString(b, r.err)
	b = append(b, `,"retry_count":`...)
	b = appendInt(b, int64(r.retries))
	b = append(b, `,"process_id":`...)
	switch {
	case r.pid == 0:
		b = append(b, "null"...)
	case r.pid == w.pid && w.pidLen > 0:
		b = append(b, w.pidText[:w.pidLen]...)
	default:
		n := len(b)
		b = appendInt(b, int64(r.pid))
		w.pid, w.pidLen = r.pid, copy(w.pidText[:], b[n:])
	}
	b = append(b, `,"pipeline_id":`...)
	b = appendOptString(b, r.pipelineID)
	b = append(b, `,"duration_seconds":`...)
	if r.status == pending {
		b = append(b, '0')
	} else {
		b = appendSeconds(b, r.dur)
	}
	if r.hasEnq {
		b = append(b, `,"enqueue_time":"`...)
		b = w.appendTime(b, r.enq)
		b = append(b, `","wait_seconds":`...)
		b = appendSeconds(b, max(r.start-r.enq, 0))
	}
	if r.span.IsValid() {
		b = appendSpan(b, r.span)
	}
	return append(b, '}')
}

// appendNetwork appends the document of the network record r of taskID,
// as appendNetwork(b, r.metrics(w.c, taskID)) does.
func (w *recordWriter) appendNetwork(b []byte, taskID string, r *networkRecord) []byte {
	if !w.nearRun(r.start, r.dur, r.status) {
		m := r.metrics(w.c, taskID)
		return appendNetwork(b, &m)
	}
	b = append(b, `{"metric_type":"network","task_id":`...)
	b = appendString(b, taskID)
	b = append(b, `,"operation":`...)
	b = appendString(b, r.operation)
	b = append(b, `,"host":`...)
	b = appendString(b, r.host)
	b = append(b, `,"port":`...)
	b = appendInt(b, int64(r.port))
	b = append(b, `,"start_time":"`...)
	b = w.appendTime(b, r.start)
	b = w.appendEnd(b, r.start, r.dur, r.status)
	b = append(b, `,"bytes_sent":`...)
	b = appendInt(b, r.sent)
	b = append(b, `,"bytes_received":`...)
	b = appendInt(b, r.received)
	b = append(b, `,"error":`...)
	b = appendOptString(b, r.err)
	b = append(b, `,"latency_seconds":`...)
	if r.status == pending {
		b = append(b, '0')
	} else {
		b = appendSeconds(b, r.dur)
	}
	if r.span.IsValid() {
		b = appendSpan(b, r.span)
	}
	return append(b, '}')
}

func appendTimes(b []byte, start, end time.Time) []byte {
	b = append(b, `,"start_time":"`...)
	b = appendTime(b, start)
	b = append(b, `","end_time":`...)
	if end.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = appendTime(b, end)
	return append(b, '"')
}

// appendTime appends t in UTC as timeLayout formats it. It computes the
// fields itself, which is faster than AppendFormat and makes
// reports of many records mostly string copying; outside years 0 to 9999
// it leaves the work to AppendFormat.
func appendTime(b []byte, t time.Time) []byte {
	const secsPerDay = 86400
	sec := t.Unix()
	days, sod := sec/secsPerDay, sec%secsPerDay
	if sod < 0 {
		days, sod = days-1, sod+secsPerDay
	}
	y, m, d := civilCached(days)
	if y < 0 || y > 9999 {
		return t.UTC().AppendFormat(b, timeLayout)
	}
	var buf [30]byte // 2006-01-02T15:04:05.000000000Z
	put2(buf[0:], int(y/100))
	put2(buf[2:], int(y%100))
	buf[4], buf[7], buf[10], buf[13], buf[16], buf[19], buf[29] = '-', '-', 'T', ':', ':', '.', 'Z'
	put2(buf[5:], int(m))
	put2(buf[8:], int(d))
	put2(buf[11:], int(sod/3600))
	put2(buf[14:], int(sod/60%60))
	put2(buf[17:], int(sod%60))
	ns := t.Nanosecond()
	buf[20] = byte('0' + ns/100_000_000)
	put2(buf[21:], ns/1_000_000%100)
	put2(buf[23:], ns/10_000%100)
	put2(buf[25:], ns/100%100)
	put2(buf[27:], ns%100)
	return append(b, buf[:]...)
}

// twoDigits holds the numbers 0 to 99 as two decimal digits each.
const twoDigits = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// put2 writes v, 0 to 99, as two decimal digits.
func put2(b []byte, v int) {
	b[0], b[1] = twoDigits[2*v], twoDigits[2*v+1]
}

// appendInt appends v in decimal, as strconv.AppendInt(b, v, 10) does,
// writing the values from 0 to 99,999,999 itself, two digits at a time,
// into b's spare room.
func appendInt(b []byte, v int64) []byte {
	if v < 0 || v >= 100_000_000 {
		return strconv.AppendInt(b, v, 10)
	}
	if v < 10 {
		return append(b, byte('0'+v))
	}
	u := uint32(v)
	n := 2 // digits
	for x := u / 100; x > 0; x /= 10 {
		n++
	}
	m := len(b)
	if cap(b)-m < n {
		b = slices.Grow(b, n)
	}
	b = b[:m+n]
	t := b[m : m+n]
	for i := n; u >= 100; i -= 2 {
		q := u / 100
		p := &digitPairs[u-q*100]
		t[i-2], t[i-1] = p[0], p[1]
		u = q
	}
	if u >= 10 {
		p := &digitPairs[u]
		t[0], t[1] = p[0], p[1]
	} else {
		t[0] = byte('0' + u)
	}
	return b
}

// digitPairs holds the numbers 0 to 99 as two decimal digits each.
var digitPairs = func() (p [100][2]byte) {
	for i := range p {
		p[i] = [2]byte{twoDigits[2*i], twoDigits[2*i+1]}
	}
	return p
}()

// lastDay is the last day civilCached converted: the records of a report
// or a file mostly share their day.
var lastDay atomic.Pointer[civilDay]

type civilDay struct{ days, year, month, day int64 }

// civilCached is civil, remembering its last answer.
func civilCached(days int64) (year, month, day int64) {
	if c := lastDay.Load(); c != nil && c.days == days {
		return c.year, c.month, c.day
	}
	year, month, day = civil(days)
	lastDay.Store(&civilDay{days, year, month, day})
	return year, month, day
}

// civil returns the proleptic Gregorian date of the day that is days after
// 1970-01-01 (the inverse of Howard Hinnant's days_from_civil).
func civil(days int64) (year, month, day int64) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365]
	mp := (5*doy + 2) / 153                                // [0, 11]
	day = doy - (153*mp+2)/5 + 1
	month = mp + 3
	if month > 12 {
		month -= 12
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

func appendOptString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

const hexDigits = "0123456789abcdef"

// jsonPlain marks the bytes that appendString copies as they are: the
// ASCII characters from the space up, but the quote and the backslash.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	i := plainPrefix(s)
	if i == len(s) { // nothing to escape: the common case
		n := len(b)
		if cap(b)-n < len(s)+2 {
			b = slices.Grow(b, len(s)+2)
		}
		b = b[:n+len(s)+2]
		b[n] = '"'
		copy(b[n+1:], s)
		b[n+1+len(s)] = '"'
		return b
	}
	return appendEscaped(append(b, '"'), s, i)
}

// plainPrefix returns the length of the longest prefix of s whose bytes
// are all jsonPlain. It tests 8 bytes at a time: a word x holds a byte
// that is not jsonPlain if one has its high bit set, or is below 0x20
// (x - 0x20 in that byte borrows), or is a quote or a backslash (x xor
// the byte repeated has a zero byte); each test is exact for the word as
// a whole.
func plainPrefix(s string) int {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	special := func(x uint64) bool {
		q, bs := x^('"'*ones), x^('\\'*ones)
		return (x|(x-0x20*ones)&^x|(q-ones)&^q|(bs-ones)&^bs)&high != 0
	}
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if special(word(s, i)) {
			break
		}
	}
	if i < len(s) && i+8 > len(s) {
		switch {
		case i >= 8: // the last 8 bytes, which overlap the words before
			if !special(word(s, len(s)-8)) {
				return len(s)
			}
		case len(s) >= 4: // the first and the last 4 bytes, which overlap
			if !special(uint64(word4(s, 0)) | uint64(word4(s, len(s)-4))<<32) {
				return len(s)
			}
		}
	}
	for i < len(s) && jsonPlain[s[i]] {
		i++
	}
	return i
}

// word4 returns the 4 bytes of s from i as a little-endian word.
func word4(s string, i int) uint32 {
	s = s[i : i+4]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// word returns the 8 bytes of s from i as a little-endian word (one load
// where the machine allows it).
func word(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// appendEscaped appends the rest of the JSON string s and its closing
// quote, from s[i], the first byte that is not jsonPlain; the opening
// quote is in b already.
func appendEscaped(b []byte, s string, i int) []byte {
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but not JavaScript; C1 and
		// bidirectional controls are valid JSON too, but would act on a
		// terminal that shows the file (cat, less -r) or reorder the text
		// around them. All of them fit in \uXXXX.
		if r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Bidi_Control, r) {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// The record contract, documented at [ReadJSONLines], is enforced on both
// sides by the same checks: checkEvent and checkNetwork below, applied by
// the JSON-lines writer before it encodes a record and by every decoder
// after it decodes one, and MaxJSONLineSize.

// MaxJSONLineSize is the longest line, in bytes and not counting its
// newline, that a [JSONLinesPublisher] writes and [ReadJSONLines] reads.
const MaxJSONLineSize = 1 << 20

// ErrInvalidRecord is wrapped by the error for a record that breaks the
// record contract: one that a [JSONLinesPublisher] refuses to write, or a
// document that [ReadJSONLines] or UnmarshalJSON refuses to read. The
// error's text names the field and the rule.
var ErrInvalidRecord = errors.New("telemetry: invalid record")

const maxInt32 = 1<<31 - 1

// checkEvent returns why m breaks the record contract, or "".
func checkEvent(m *EventMetrics) string {
	if why := checkRun(m.Status, m.StartTime, m.EndTime); why != "" {
		return why
	}
	if m.RetryCount < 0 || m.RetryCount > maxInt32 {
		return "retry_count is " + strconv.Itoa(m.RetryCount) + ", want 0 to 2147483647"
	}
	if m.ProcessID < 0 || m.ProcessID > maxInt32 {
		return "process_id is " + strconv.Itoa(m.ProcessID) + ", want 0 to 2147483647"
	}
	if !m.EnqueueTime.IsZero() {
		if y := m.EnqueueTime.UTC().Year(); y < 0 || y > 9999 {
			return "enqueue_time is in year " + strconv.Itoa(y) + " (UTC), want 0000 to 9999"
		}
	}
	return checkSpan(m.Span)
}

// checkNetwork returns why m breaks the record contract, or "".
func checkNetwork(m *NetworkMetrics) string {
	if why := checkRun(m.Status, m.StartTime, m.EndTime); why != "" {
		return why
	}
	switch {
	case m.Port < 0 || m.Port > 65535:
		return "port is " + strconv.Itoa(m.Port) + ", want 0 to 65535"
	case m.BytesSent < 0:
		return "bytes_sent is " + strconv.FormatInt(m.BytesSent, 10) + ", want 0 or more"
	case m.BytesReceived < 0:
		return "bytes_received is " + strconv.FormatInt(m.BytesReceived, 10) + ", want 0 or more"
	}
	return checkSpan(m.Span)
}

// checkRun checks what events and network operations have in common.
func checkRun(status Status, start, end time.Time) string {
	switch status {
	case StatusPending, StatusCompleted, StatusFailed:
	default:
		return "status is " + quote(string(status)) + `, want "pending", "completed" or "failed"`
	}
	if y := start.UTC().Year(); y < 0 || y > 9999 {
		return "start_time is in year " + strconv.Itoa(y) + " (UTC), want 0000 to 9999"
	}
	switch {
	case end.IsZero() && status != StatusPending:
		return "status is " + quote(string(status)) + " but end_time is null: a finished run has an end time"
	case end.IsZero():
		return ""
	case status == StatusPending:
		return `status is "pending" but end_time is not null: a pending run has no end time`
	}
	if y := end.UTC().Year(); y < 0 || y > 9999 {
		return "end_time is in year " + strconv.Itoa(y) + " (UTC), want 0000 to 9999"
	}
	if end.Before(start) {
		return "end_time is before start_time"
	}
	return ""
}

// quote quotes a value taken from a record for an error message, bounded
// in length.
func quote(s string) string { return strconv.Quote(label.Value(s)) }

// invalidRecord returns the error for a record that breaks the contract
// for the reason why.
func invalidRecord(why string) error { return fmt.Errorf("%w: %s", ErrInvalidRecord, why) }

// jsonRecord is the decoding form of both documents.
type jsonRecord struct {
	MetricType    string  `json:"metric_type"`
	EventName     string  `json:"event_name"`
	TaskID        string  `json:"task_id"`
	Operation     string  `json:"operation"`
	Host          string  `json:"host"`
	Port          int     `json:"port"`
	StartTime     string  `json:"start_time"`
	EndTime       *string `json:"end_time"`
	Status        Status  `json:"status"`
	Error         *string `json:"error"`
	RetryCount    int     `json:"retry_count"`
	ProcessID     *int    `json:"process_id"`
	PipelineID    *string `json:"pipeline_id"`
	BytesSent     int64   `json:"bytes_sent"`
	BytesReceived int64   `json:"bytes_received"`
	EnqueueTime   *string `json:"enqueue_time"`
	TraceID       *string `json:"trace_id"`
	SpanID        *string `json:"span_id"`
	TraceSampled  bool    `json:"trace_sampled"`
}

// span returns the span context of j, which has both ids or neither.
func (j *jsonRecord) span() (SpanContext, error) {
	var s SpanContext
	switch {
	case j.TraceID == nil && j.SpanID == nil:
		return s, nil
	case j.TraceID == nil || j.SpanID == nil:
		return s, invalidRecord("trace_id and span_id must be given together")
	case !parseID(s.TraceID[:], *j.TraceID):
		return s, invalidRecord("trace_id " + quote(*j.TraceID) + " is not 32 lowercase hexadecimal digits, not all zero")
	case !parseID(s.SpanID[:], *j.SpanID):
		return s, invalidRecord("span_id " + quote(*j.SpanID) + " is not 16 lowercase hexadecimal digits, not all zero")
	}
	s.Sampled = j.TraceSampled
	return s, nil
}

// parseTime parses s, an RFC 3339 time. time.Parse with time.RFC3339Nano
// also takes forms that RFC 3339 does not allow, which parseTime refuses:
// a comma before the fraction of a second, and an offset of hour 24 or
// minute 60.
func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, false
	}
	// Parsed, s is 2006-01-02T15:04:05, maybe a fraction, then Z or an
	// offset of the form +07:00.
	if len(s) > 19 && s[19] == ',' {
		return time.Time{}, false
	}
	if off := s[len(s)-6:]; s[len(s)-1] != 'Z' && (off[1:3] > "23" || off[4:] > "59") {
		return time.Time{}, false
	}
	return t, true
}

// times parses the start and end times of j.
func (j *jsonRecord) times() (start, end time.Time, err error) {
	var ok bool
	if start, ok = parseTime(j.StartTime); !ok {
		return start, end, invalidRecord("start_time " + quote(j.StartTime) + " is not an RFC 3339 time")
	}
	if j.EndTime != nil {
		if end, ok = parseTime(*j.EndTime); !ok {
			return start, end, invalidRecord("end_time " + quote(*j.EndTime) + " is not an RFC 3339 time")
		}
	}
	return start, end, nil
}

// event returns the event record of a decoded document, checked against
// the record contract.
func (j *jsonRecord) event() (EventMetrics, error) {
	start, end, err := j.times()
	if err != nil {
		return EventMetrics{}, err
	}
	m := EventMetrics{
		EventName: j.EventName, TaskID: j.TaskID, StartTime: start, EndTime: end,
		Status: j.Status, Error: deref(j.Error), RetryCount: j.RetryCount,
		ProcessID: deref(j.ProcessID), PipelineID: deref(j.PipelineID),
	}
	if j.EnqueueTime != nil {
		var ok bool
		if m.EnqueueTime, ok = parseTime(*j.EnqueueTime); !ok {
			return EventMetrics{}, invalidRecord("enqueue_time " + quote(*j.EnqueueTime) + " is not an RFC 3339 time")
		}
	}
	if m.Span, err = j.span(); err != nil {
		return EventMetrics{}, err
	}
	if why := checkEvent(&m); why != "" {
		return EventMetrics{}, invalidRecord(why)
	}
	return m, nil
}

// network returns the network record of a decoded document, checked
// against the record contract.
func (j *jsonRecord) network() (NetworkMetrics, error) {
	start, end, err := j.times()
	if err != nil {
		return NetworkMetrics{}, err
	}
	m := NetworkMetrics{
		TaskID: j.TaskID, Operation: j.Operation, Host: j.Host, Port: j.Port,
		StartTime: start, EndTime: end, Status: j.Status,
		BytesSent: j.BytesSent, BytesReceived: j.BytesReceived, Error: deref(j.Error),
	}
	if m.Span, err = j.span(); err != nil {
		return NetworkMetrics{}, err
	}
	if why := checkNetwork(&m); why != "" {
		return NetworkMetrics{}, invalidRecord(why)
	}
	return m, nil
}

// unmarshal decodes data into j. A field of the wrong JSON type is an
// error wrapping ErrInvalidRecord that names it, as is a field of j that
// appears twice or whose name differs from its own only in case (see
// checkKeys).
func (j *jsonRecord) unmarshal(data []byte) error {
	err := json.Unmarshal(data, j)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return invalidRecord(te.Field + " is " + te.Value + ", want " + te.Type.String())
	}
	if err != nil {
		return err
	}
	return checkKeys(data)
}

// recordFields are the JSON names of the fields of jsonRecord.
var recordFields = func() []string {
	t := reflect.TypeFor[jsonRecord]()
	names := make([]string, t.NumField())
	for i := range names {
		names[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	if len(names) > 64 {
		panic("telemetry: checkKeys needs a wider set of seen fields")
	}
	return names
}()

// recordField maps each of recordFields to its index.
var recordField = func() map[string]int {
	m := make(map[string]int, len(recordFields))
	for i, name := range recordFields {
		m[name] = i
	}
	return m
}()

// lowerASCII reports whether b holds no byte but lowercase ASCII letters,
// digits and underscores.
func lowerASCII(b []byte) bool {
	for _, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// checkKeys checks the names of the members of data, a valid JSON value,
// if it is an object. encoding/json matches them to the fields of
// jsonRecord without regard to case (as strings.EqualFold does), and of
// repeated ones keeps the last, so a document could hold two values of a
// field: one that this package reads and another that other readers of the
// file (jq, a log shipper, Elasticsearch) read. So each field must appear
// at most once, under its exact name: a repeated one, or one that differs
// from a field's name only in case, is an error wrapping ErrInvalidRecord.
// Other members are ignored.
func checkKeys(data []byte) error {
	var seen uint64 // bit f: recordFields[f] was seen
	depth, key := 0, false
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{':
			depth++
			key = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			key = depth == 1
		case '"':
			start, escaped := i+1, false
			for i++; data[i] != '"'; i++ {
				if data[i] == '\\' {
					i, escaped = i+1, true
				}
			}
			if !key {
				continue
			}
			key = false
			raw := data[start:i]
			if escaped {
				var name string
				if json.Unmarshal(data[start-1:i+1], &name) != nil {
					continue // cannot be: data is valid JSON
				}
				raw = []byte(name)
			}
			if f, ok := recordField[string(raw)]; ok {
				if seen&(1<<f) != 0 {
					return invalidRecord("field " + quote(string(raw)) + " appears twice")
				}
				seen |= 1 << f
			} else if !lowerASCII(raw) { // the others cannot fold to a field's name
				for _, field := range recordFields {
					if strings.EqualFold(string(raw), field) {
						return invalidRecord("field " + quote(string(raw)) + " is not a field of the record, " +
							"whose names are case-sensitive: " + strconv.Quote(field) + " is")
					}
				}
			}
		}
	}
	return nil
}

// decode decodes data into j and checks that its metric_type, if any, is
// want.
func (j *jsonRecord) decode(data []byte, want string) error {
	if err := j.unmarshal(data); err != nil {
		return err
	}
	if j.MetricType != "" && j.MetricType != want {
		return invalidRecord("metric_type is " + quote(j.MetricType) + ", want " + strconv.Quote(want))
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// UnmarshalJSON decodes the document written by [EventMetrics.MarshalJSON].
// duration_seconds is ignored: Duration is derived from the times. A
// document that breaks the record contract (see [ReadJSONLines]) is an
// error wrapping [ErrInvalidRecord].
func (m *EventMetrics) UnmarshalJSON(data []byte) error {
	var j jsonRecord
	err := j.decode(data, "event")
	if err == nil {
		var rec EventMetrics
		if rec, err = j.event(); err == nil {
			*m = rec
			return nil
		}
	}
	return callError("decode event record", err)
}

// UnmarshalJSON decodes the document written by [NetworkMetrics.MarshalJSON].
// latency_seconds is ignored: Latency is derived from the times. A
// document that breaks the record contract (see [ReadJSONLines]) is an
// error wrapping [ErrInvalidRecord].
func (m *NetworkMetrics) UnmarshalJSON(data []byte) error {
	var j jsonRecord
	err := j.decode(data, "network")
	if err == nil {
		var rec NetworkMetrics
		if rec, err = j.network(); err == nil {
			*m = rec
			return nil
		}
	}
	return callError("decode network record", err)
}

// FormatMetrics returns the standardized document of a record, as a map
// ready for any encoder. record must be an EventMetrics or a NetworkMetrics
// (or a non-nil pointer to one); anything else is an error wrapping
// [ErrUnsupportedRecord].
//
// The keys are those of the JSON report: metric_type ("event" or
// "network"), then for events event_name, task_id, start_time, end_time,
// status, error, retry_count, process_id, pipeline_id and duration_seconds,
// and for network operations task_id, operation, host, port, start_time,
// end_time, status, bytes_sent, bytes_received, error and latency_seconds.
// Times are RFC 3339 strings in UTC; absent values are nil. Two groups of
// keys are present only when the record has them: enqueue_time and
// wait_seconds for an event run given [WithEnqueueTime] or [WithWait],
// and trace_id, span_id (lowercase hexadecimal) and trace_sampled for a
// record given [WithSpanContext].
func FormatMetrics(record any) (map[string]any, error) {
	switch m := record.(type) {
	case EventMetrics:
		return formatEvent(&m), nil
	case *EventMetrics:
		if m != nil {
			return formatEvent(m), nil
		}
	case NetworkMetrics:
		return formatNetwork(&m), nil
	case *NetworkMetrics:
		if m != nil {
			return formatNetwork(m), nil
		}
	}
	return nil, callError("format metrics", &valueError{err: ErrUnsupportedRecord, value: fmt.Sprintf("%T", record)})
}

func formatEvent(m *EventMetrics) map[string]any {
	doc := map[string]any{
		"metric_type":      "event",
		"event_name":       m.EventName,
		"task_id":          m.TaskID,
		"start_time":       formatTime(m.StartTime),
		"end_time":         optTime(m.EndTime),
		"status":           string(m.Status),
		"error":            optString(m.Error),
		"retry_count":      m.RetryCount,
		"process_id":       nil,
		"pipeline_id":      optString(m.PipelineID),
		"duration_seconds": m.Duration().Seconds(),
	}
	if m.ProcessID != 0 {
		doc["process_id"] = m.ProcessID
	}
	if !m.EnqueueTime.IsZero() {
		doc["enqueue_time"] = formatTime(m.EnqueueTime)
		doc["wait_seconds"] = m.WaitTime().Seconds()
	}
	formatSpan(doc, m.Span)
	return doc
}

// formatSpan adds the trace fields of a traced record to doc.
func formatSpan(doc map[string]any, s SpanContext) {
	if s.IsValid() {
		doc["trace_id"], doc["span_id"], doc["trace_sampled"] = s.TraceIDString(), s.SpanIDString(), s.Sampled
	}
}

func formatNetwork(m *NetworkMetrics) map[string]any {
	doc := map[string]any{
		"metric_type":     "network",
		"task_id":         m.TaskID,
		"operation":       m.Operation,
		"host":            m.Host,
		"port":            m.Port,
		"start_time":      formatTime(m.StartTime),
		"end_time":        optTime(m.EndTime),
		"status":          string(m.Status),
		"bytes_sent":      m.BytesSent,
		"bytes_received":  m.BytesReceived,
		"error":           optString(m.Error),
		"latency_seconds": m.Latency().Seconds(),
	}
	formatSpan(doc, m.Span)
	return doc
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}

func optString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
