package redisqueue

import "testing"

// A damaged latest-event value is skipped, never a panic or a wrong event.
func TestDamagedLatestIsSkipped(t *testing.T) {
	v := "\x01" + "7:evt_abc" + "4:deal" + "7:{\"n\":1}" + "0:" + "17:1764690000000.123" + "0:"
	ev, ok := decodeLatest(v)
	if !ok || ev.ID != "evt_abc" || ev.Type != "deal" || string(ev.Body) != `{"n":1}` || ev.Header != nil {
		t.Fatalf("decoded %+v, %v", ev, ok)
	}
	for i := 1; i < len(v); i++ {
		if ev, ok := decodeLatest(v[:i]); ok {
			t.Fatalf("the first %d bytes decoded as %+v", i, ev)
		}
	}
	for _, bad := range []string{v + "x", "\x01-1:x", "\x019999:x", "\x01" + "1:a1:b1:c1:\x021:d0:", "{broken"} {
		if ev, ok := decodeLatest(bad); ok {
			t.Fatalf("%q decoded as %+v", bad, ev)
		}
	}
}

func FuzzDecodeLatest(f *testing.F) {
	f.Add("\x01" + "7:evt_abc" + "4:deal" + "2:{}" + "0:" + "1:1" + "0:")
	f.Fuzz(func(t *testing.T, v string) { decodeLatest(v) })
}
