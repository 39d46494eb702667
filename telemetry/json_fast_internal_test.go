package telemetry

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// oldAppendString is appendString as it was before its fast path for
// strings that need no escaping: the reference the tests below hold it to.
func oldAppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
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

// jsonPieces are the pieces randomString builds strings from: plain ASCII,
// every byte the encoder treats specially, invalid and truncated UTF-8,
// and the runes it escapes though they are valid JSON.
var jsonPieces = []string{
	"a", "task-17", "event_name", " ", "~", "\x7f", "\"", "\\", "/", "<", ">", "&", "'",
	"\x00", "\x01", "\x08", "\t", "\n", "\r", "\x1b", "\x1f",
	"\x80", "\xbf", "\xc0\x80", "\xc3", "\xe2\x80", "\xed\xa0\x80", "\xf0\x9f\x98", "\xff", "\xfe",
	"é", "ß", "日本", "😀", "\u0085", "\u009f", "\u00a0", "\u061c", "\u200e", "\u200f",
	"\u2028", "\u2029", "\u202a", "\u202e", "\u2066", "\u2069", "\ufeff", "\ufffd", "\U0010ffff",
	strings.Repeat("x", 40), "connection reset by peer",
}

func randomString(rng *rand.Rand) string {
	var sb strings.Builder
	for range rng.IntN(12) {
		sb.WriteString(jsonPieces[rng.IntN(len(jsonPieces))])
	}
	return sb.String()
}

// TestAppendStringMatchesOld holds appendString to the encoder it replaced,
// byte for byte, on strings built from every kind of byte and rune the
// encoder treats specially, and on every single byte and rune below
// U+3000.
func TestAppendStringMatchesOld(t *testing.T) {
	check := func(s string) {
		t.Helper()
		if got, want := appendString([]byte("x"), s), oldAppendString([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
	for c := range 256 {
		check(string([]byte{byte(c)}))
		check("ab" + string([]byte{byte(c)}) + "cd")
	}
	for r := rune(0); r < 0x3000; r++ {
		check(string(r))
		check("plain " + string(r) + " text")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 100_000 {
		check(randomString(rng))
	}
}

// TestAppendStringEveryPosition puts each byte that the 8-byte test of
// plainPrefix must tell apart (those that need escaping, and their
// neighbours that do not) at every position of strings of 1 to 40 bytes,
// once and twice, and holds appendString to the encoder it replaced.
func TestAppendStringEveryPosition(t *testing.T) {
	special := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, '"', 0x23, 0x5b, '\\', 0x5d, 0x7e, 0x7f, 0x80, 0xc3, 0xe2, 0xff}
	for n := 1; n <= 40; n++ {
		for p := range n {
			for _, c := range special {
				b := []byte(strings.Repeat("abcdefgh", 5)[:n])
				b[p] = c
				for _, s := range []string{string(b), string(b[:p]) + string(c) + string(b[p:])} {
					if got, want := appendString(nil, s), oldAppendString(nil, s); !bytes.Equal(got, want) {
						t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
					}
					want := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' || r >= 0x80 })
					if want < 0 {
						want = len(s)
					}
					if i := plainPrefix(s); i != want {
						t.Fatalf("plainPrefix(%q) = %d, want %d", s, i, want)
					}
				}
			}
		}
	}
}

// FuzzAppendString holds appendString to the encoder it replaced, and its
// output to valid JSON that decodes back to the string (invalid UTF-8 as
// U+FFFD).
func FuzzAppendString(f *testing.F) {
	for _, s := range jsonPieces {
		f.Add(s)
	}
	f.Add("plain ascii text with no escapes at all")
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		if want := oldAppendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
		back, err := strconv.Unquote(string(got))
		if err != nil && utf8.ValidString(s) && !strings.ContainsAny(s, "\x7f") {
			// strconv.Unquote is stricter than JSON only about DEL.
			t.Fatalf("appendString(%q) = %s, not a valid quoted string: %v", s, got, err)
		}
		if err == nil && utf8.ValidString(s) && back != s {
			t.Fatalf("appendString(%q) decodes to %q", s, back)
		}
	})
}

// testClocks are the clocks the record writer is checked with: one read
// now, with a monotonic reading, and epochs without one, near 1970, at
// the edges of the range the writer formats itself, and beyond it.
func testClocks() []clock {
	cs := []clock{newClock()}
	for _, e := range []time.Time{
		time.Unix(0, 0), time.Unix(1<<32-1, 999_999_999), time.Unix(-1<<32+1, 1), time.Unix(1<<32, 0),
		time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.UTC), time.Date(1999, 12, 31, 23, 59, 0, 5, time.FixedZone("x", -3600)),
		time.Date(2400, 2, 29, 12, 0, 0, 0, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
	} {
		cs = append(cs, clock{epoch: e, epochNano: e.UnixNano()})
	}
	return cs
}

// randomOffset returns an offset from an epoch: mostly near it, some at
// or beyond the range the record writer formats itself.
func randomOffset(rng *rand.Rand) time.Duration {
	switch rng.IntN(8) {
	case 0:
		return time.Duration(rng.Int64N(maxOffset)) * time.Duration(1-2*rng.IntN(2))
	case 1:
		return []time.Duration{0, -1, maxOffset - 1, maxOffset, -maxOffset + 1, -maxOffset, math.MaxInt64, math.MinInt64,
			math.MaxInt64 / 2, math.MinInt64 / 2}[rng.IntN(10)]
	case 2:
		return time.Duration(rng.Int64N(86_400e9 * 400))
	default:
		return time.Duration(rng.Int64N(3_600e9))
	}
}

func randomDur(rng *rand.Rand) time.Duration {
	switch rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return time.Duration(rng.Int64N(math.MaxInt64))
	case 2:
		return []time.Duration{1, 999, time.Second, 1e15 - 1, 1e15, maxOffset - 1, maxOffset, math.MaxInt64}[rng.IntN(8)]
	default:
		return time.Duration(rng.Int64N(5e9))
	}
}

func randomSpan(rng *rand.Rand) SpanContext {
	var s SpanContext
	if rng.IntN(3) == 0 {
		for i := range s.TraceID {
			s.TraceID[i] = byte(rng.IntN(256))
		}
		for i := range s.SpanID {
			s.SpanID[i] = byte(rng.IntN(256))
		}
		s.Sampled = rng.IntN(2) == 0
	}
	return s
}

func randomEventRecord(rng *rand.Rand) eventRecord {
	r := eventRecord{
		name: randomString(rng), start: randomOffset(rng), dur: randomDur(rng),
		span: randomSpan(rng), status: statusCode(rng.IntN(4)),
	}
	if rng.IntN(2) == 0 {
		r.err = randomString(rng)
	}
	if rng.IntN(2) == 0 {
		r.pipelineID = randomString(rng)
	}
	if rng.IntN(3) == 0 {
		r.enq, r.hasEnq = randomOffset(rng), true
		if rng.IntN(2) == 0 {
			r.enq = r.start - time.Duration(rng.Int64N(1e10))
		}
	}
	switch rng.IntN(4) {
	case 0:
		r.pid = rng.Int32()
	case 1:
		r.pid = int32(rng.IntN(100))
	}
	switch rng.IntN(4) {
	case 0:
		r.retries = rng.Int32()
	case 1:
		r.retries = int32(rng.IntN(12))
	}
	return r
}

func randomNetworkRecord(rng *rand.Rand) networkRecord {
	r := networkRecord{
		operation: randomString(rng), host: randomString(rng), start: randomOffset(rng), dur: randomDur(rng),
		span: randomSpan(rng), status: statusCode(rng.IntN(4)), port: uint16(rng.IntN(65536)),
	}
	if rng.IntN(2) == 0 {
		r.err = randomString(rng)
	}
	if rng.IntN(2) == 0 {
		r.sent, r.received = rng.Int64(), rng.Int64N(1<<20)
	}
	return r
}

// TestRecordWriterMatchesMetrics holds the record writer to the documents
// of the records' metrics, byte for byte, for random records on clocks
// of every kind: times near and far from the epoch, every status code,
// escaped strings, enqueue times, spans. It also checks that the size
// bounds of the report hold.
func TestRecordWriterMatchesMetrics(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range testClocks() {
		w := newRecordWriter(c)
		for range 20_000 {
			id := randomString(rng)
			ev := randomEventRecord(rng)
			m := ev.metrics(c, id)
			want := appendEvent([]byte("["), &m)
			got := w.appendEvent([]byte("["), id, &ev)
			if !bytes.Equal(got, want) {
				t.Fatalf("epoch %v, event %+v:\ngot  %s\nwant %s", c.epoch, ev, got, want)
			}
			if n := len(got) - 1; n > eventBound(id, &ev) {
				t.Fatalf("event document of %d bytes, bound %d: %s", n, eventBound(id, &ev), got)
			}
			op := randomNetworkRecord(rng)
			nm := op.metrics(c, id)
			want = appendNetwork([]byte("["), &nm)
			got = w.appendNetwork([]byte("["), id, &op)
			if !bytes.Equal(got, want) {
				t.Fatalf("epoch %v, network %+v:\ngot  %s\nwant %s", c.epoch, op, got, want)
			}
			if n := len(got) - 1; n > networkBound(id, &op) {
				t.Fatalf("network document of %d bytes, bound %d: %s", n, networkBound(id, &op), got)
			}
		}
	}
}

// TestMetricsJSONMatchesReport records runs of every kind, with escaped
// strings, options, retries, pending runs and evictions, in a Recorder of
// one shard and one of several, and checks that MetricsJSON, which writes
// records from the store's copy, equals the document of Report, which
// goes through EventMetrics and NetworkMetrics, and that its output was
// allocated at about its size.
func TestMetricsJSONMatchesReport(t *testing.T) {
	for _, capacity := range []int{100, 9000} {
		r, err := NewRecorder(WithMaxEvents(capacity), WithMaxNetworkOps(capacity))
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(11, uint64(capacity)))
		net := r.Network()
		base := time.Now()
		for i := range 2 * capacity {
			id := "t" + strconv.Itoa(i) + randomString(rng)
			var opts []StartOption
			if rng.IntN(4) == 0 {
				opts = append(opts, WithProcessID(rng.IntN(1<<31)), WithPipelineID(randomString(rng)))
			}
			switch rng.IntN(6) {
			case 0:
				opts = append(opts, WithEnqueueTime(base.Add(-time.Duration(rng.Int64N(1e12)))))
			case 1:
				opts = append(opts, WithWait(time.Duration(rng.Int64N(1e10))))
			case 2:
				opts = append(opts, WithStartTime(base.Add(-time.Duration(rng.Int64N(1e15)))))
			}
			if s := randomSpan(rng); s.IsValid() {
				opts = append(opts, WithSpanContext(s))
			}
			if err := r.StartEvent("e"+randomString(rng), id, opts...); err != nil {
				t.Fatal(err)
			}
			if err := net.StartOperation(id, "h"+randomString(rng), rng.IntN(65536), randomString(rng)); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(10) == 0 {
				continue // left pending
			}
			if rng.IntN(3) == 0 {
				must(t, r.RecordRetry(id))
			}
			var runErr error
			if rng.IntN(3) == 0 {
				runErr = errors.New(randomString(rng) + "!")
			}
			must(t, r.EndEvent(id, runErr))
			must(t, net.EndOperation(id, rng.Int64N(1<<40), rng.Int64N(1<<20), runErr))
		}
		got, err := r.MetricsJSON()
		must(t, err)
		want, err := r.Report().MarshalJSON()
		must(t, err)
		// generated_at is the one field that differs: when each was taken.
		head := len(`{"generated_at":"2006-01-02T15:04:05.000000000Z"`)
		if !bytes.Equal(got[head:], want[head:]) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Fatalf("capacity %d: MetricsJSON differs from Report's document at byte %d:\ngot  …%s\nwant …%s",
				capacity, i, got[max(i-200, 0):min(i+200, len(got))], want[max(i-200, 0):min(i+200, len(want))])
		}
		if c := cap(got); c > len(got)*3/2+4096 {
			t.Errorf("capacity %d: the report of %d bytes was allocated with room for %d", capacity, len(got), c)
		}
		r.Close(context.Background())
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFillSetsEveryField checks that fill sets every field of the record
// it fills in place, whatever the variable held before: the result equals,
// field for field (times with their monotonic readings), the record
// metrics makes in a variable of its own.
func TestFillSetsEveryField(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	for _, c := range testClocks() {
		for range 5000 {
			id := randomString(rng)
			ev := randomEventRecord(rng)
			got := EventMetrics{EventName: "old", EndTime: time.Now(), EnqueueTime: time.Now(), Span: randomSpan(rng)}
			ev.fill(&got, &c, id)
			if want := ev.metrics(c, id); got != want {
				t.Fatalf("epoch %v, event %+v: fill gives %+v, metrics %+v", c.epoch, ev, got, want)
			}
			op := randomNetworkRecord(rng)
			gotOp := NetworkMetrics{Host: "old", EndTime: time.Now(), Span: randomSpan(rng)}
			op.fill(&gotOp, &c, id)
			if want := op.metrics(c, id); gotOp != want {
				t.Fatalf("epoch %v, network %+v: fill gives %+v, metrics %+v", c.epoch, op, gotOp, want)
			}
		}
	}
}

// TestAppendIntMatchesStrconv checks the integer formatting of the record
// writer against strconv at every power of ten and its neighbours, and at
// random.
func TestAppendIntMatchesStrconv(t *testing.T) {
	vs := []int64{math.MinInt64, math.MaxInt64, -1, 0}
	for p := int64(1); p <= 1e18; p *= 10 {
		vs = append(vs, p-1, p, p+1, -p)
	}
	rng := rand.New(rand.NewPCG(14, 15))
	for range 100_000 {
		vs = append(vs, rng.Int64N(1e9), rng.Int64()>>rng.IntN(64))
	}
	for _, v := range vs {
		if got, want := string(appendInt([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Fatalf("appendInt(%d) = %s, want %s", v, got, want)
		}
	}
}
