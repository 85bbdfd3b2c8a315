package boltqueue

import (
	"encoding/binary"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
)

func TestCodecRoundTripAndCorruption(t *testing.T) {
	r := record{ID: "a~1", Endpoint: "a", State: queue.Dead, N: 2, NextAt: 5, Created: 6, DeadAt: 7, Expires: 8,
		Event:    queue.Event{ID: "evt_1", Type: "t", Body: []byte(`{"x":1}`), Header: http.Header{"X-A": {"b"}}, Created: time.Unix(1, 2).UTC()},
		Attempts: []queue.Attempt{{At: time.Unix(3, 4).UTC(), Status: 500, Latency: time.Millisecond, Error: "e"}}}
	v := encodeRecord(&r)
	got, err := decodeRecord(v, true)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, got, r)
	}
	// Every truncation either fails cleanly or decodes a shorter body; none panics.
	for i := 0; i < len(v); i++ {
		_, _ = decodeRecord(v[:i], true)
	}
	if _, err := decodeRecord([]byte{9, 1, 2}, true); err == nil {
		t.Fatal("an unknown version decoded")
	}
}

// A record read raw (to be finished or swept) and written again is the same bytes, and
// its body is the stored value's own memory, not a copy.
func TestCodecRawRewritesTheSameRecord(t *testing.T) {
	r := record{ID: "a~1", Endpoint: "a", State: queue.Pending, N: 1, NextAt: 5, Created: 6,
		Event:    queue.Event{ID: "evt_1", Type: "t", Body: []byte(`{"x":1}`), Header: http.Header{"X-A": {"b"}}, Created: time.Unix(1, 2).UTC()},
		Attempts: []queue.Attempt{{At: time.Unix(3, 4).UTC(), Status: 500, Latency: time.Millisecond, Error: "e", Response: "busy"}}}
	v := encodeRecord(&r)
	raw, err := decodeRecordRaw(v)
	if err != nil || raw.Event.Header != nil || raw.hdrEnc != queue.EncodeHeader(http.Header{"X-A": {"b"}}) || len(raw.Attempts) != 1 {
		t.Fatalf("raw: %v %+v", err, raw)
	}
	if &raw.Event.Body[0] != &v[len(v)-len(r.Event.Body)] {
		t.Error("the raw body is a copy")
	}
	if again := encodeRecord(&raw); string(again) != string(v) {
		t.Fatalf("rewritten raw record differs:\n%q\n%q", again, v)
	}
	raw.State, raw.Expires = queue.Delivered, 9 // what Finish changes
	got, err := decodeRecord(encodeRecord(&raw), true)
	r.State, r.Expires = queue.Delivered, 9
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("finished raw record: %v\n%+v\n%+v", err, got, r)
	}
}

// encodeV1 is the record codec before version 2 (no transform error), as files written by
// earlier releases hold it.
func encodeV1(r *record) []byte {
	b := []byte{1}
	for _, s := range []string{r.ID, r.Endpoint, r.Event.ID, r.Event.Type, string(r.State), ""} {
		b = appendString(b, s)
	}
	for _, v := range []int64{r.Event.Created.UnixNano(), int64(r.N), r.NextAt, r.Created, r.DeadAt, r.Expires} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, 0)
	return append(b, r.Event.Body...)
}

func TestCodecReadsVersion1(t *testing.T) {
	now := time.Now().UTC()
	r := record{ID: "a~1", Endpoint: "a", Event: queue.Event{ID: "evt_1", Type: "t", Body: []byte(`{"v":1}`), Created: now},
		State: queue.Pending, N: 2, NextAt: 5, Created: 6}
	got, err := decodeRecord(encodeV1(&r), true)
	if err != nil || got.ID != "a~1" || string(got.Event.Body) != `{"v":1}` || got.N != 2 || got.NextAt != 5 || got.Event.TransformError != "" {
		t.Fatalf("v1 record: %+v, %v", got, err)
	}
	r.Event.TransformError = "transform_failed: x"
	got, err = decodeRecord(encodeRecord(&r), true)
	if err != nil || got.Event.TransformError != "transform_failed: x" || string(got.Event.Body) != `{"v":1}` {
		t.Fatalf("v2 record: %+v, %v", got, err)
	}
}

// A record without a transform error is written as version 1, which the previous release
// reads: a downgrade finds only the held deliveries of failed transforms unreadable.
func TestCodecWritesVersion1WithoutTransformError(t *testing.T) {
	r := record{ID: "a~1", Endpoint: "a", Event: queue.Event{ID: "evt_1", Type: "t", Body: []byte(`{}`)}, State: queue.Pending}
	if v := encodeRecord(&r)[0]; v != 1 {
		t.Errorf("version %d", v)
	}
	r.Event.TransformError = "x"
	if v := encodeRecord(&r)[0]; v != 2 {
		t.Errorf("with a transform error: version %d", v)
	}
}

// An attempt's response excerpt makes the record version 3, and round-trips with a
// transform error or without one; records without either stay version 1.
func TestCodecVersion3KeepsResponses(t *testing.T) {
	r := record{ID: "a~1", Endpoint: "a", State: queue.Pending, N: 2, NextAt: 5, Created: 6,
		Event: queue.Event{ID: "evt_1", Type: "t", Body: []byte(`{"v":1}`), Created: time.Unix(1, 0).UTC()},
		Attempts: []queue.Attempt{{At: time.Unix(3, 0).UTC(), Status: 500, Latency: time.Millisecond, Response: `{"error":"db down"}`},
			{At: time.Unix(4, 0).UTC(), Error: "timeout"}}}
	for _, te := range []string{"", "transform_failed: x"} {
		r.Event.TransformError = te
		v := encodeRecord(&r)
		if v[0] != 3 {
			t.Fatalf("version %d, want 3", v[0])
		}
		got, err := decodeRecord(v, true)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, got, r)
		}
	}
	r.Event.TransformError = ""
	r.Attempts[0].Response = ""
	if v := encodeRecord(&r); v[0] != 1 {
		t.Fatalf("no response, no transform error: version %d, want 1", v[0])
	}
}

// Records written before 2026-12-06 hold the event's header as JSON; they read as before.
func TestCodecReadsTheEarlierJSONHeader(t *testing.T) {
	old := record{ID: "a~1", Endpoint: "a", State: queue.Pending, hdrEnc: `{"X-A":["b","c"]}`,
		Event: queue.Event{ID: "evt_1", Type: "t", Body: []byte(`{}`)}}
	got, err := decodeRecord(encodeRecord(&old), false)
	if err != nil || !reflect.DeepEqual(got.Event.Header, http.Header{"X-A": {"b", "c"}}) {
		t.Fatalf("header of an earlier record: %v (err %v)", got.Event.Header, err)
	}
}
