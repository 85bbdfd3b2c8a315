package boltqueue

import (
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
