package sender

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
)

// A published event keeps the publish's trace context: every attempt sends a traceparent
// of the same trace and flags with a span id of its own (and the tracestate); a transform's
// headers do not drop it; a malformed traceparent is not passed on.
func TestAttemptsContinueThePublishTrace(t *testing.T) {
	s := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(204)
	})
	snd := newSender(t, &Endpoint{Name: "app", URL: s.URL, Events: []string{"traced"}, Retry: []time.Duration{10 * time.Millisecond}},
		&Endpoint{Name: "shaped", URL: s.URL + "/shaped", Events: []string{"traced"}, Transform: `with_headers({"x": 1}, {"X-Kind": "shaped"})`})
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	h := http.Header{"Traceparent": {parent}, "Tracestate": {"congo=t61rcWkgMzE"}}
	if _, err := snd.Publish(context.Background(), Message{Type: "traced", Body: []byte(`{}`), Header: h}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(s.received()) == 3 }, "two attempts and the shaped delivery")
	spans := map[string]bool{"00f067aa0ba902b7": true}
	for _, r := range s.received() {
		tp := strings.Split(r.header.Get("Traceparent"), "-")
		if len(tp) != 4 || tp[0] != "00" || tp[1] != "4bf92f3577b34da6a3ce929d0e0e4736" || tp[3] != "01" || r.header.Get("Tracestate") != "congo=t61rcWkgMzE" {
			t.Fatalf("attempt traceparent %q tracestate %q", r.header.Get("Traceparent"), r.header.Get("Tracestate"))
		}
		if spans[tp[2]] {
			t.Fatalf("span id %s sent twice (or the publish's own)", tp[2])
		}
		spans[tp[2]] = true
	}
	if _, err := snd.Publish(context.Background(), Message{Type: "traced", Body: []byte(`{"n":2}`), Header: http.Header{"Traceparent": {"00-zz-00f067aa0ba902b7-01"}}}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(s.received()) == 5 }, "the deliveries of the untraced event")
	for _, r := range s.received()[3:] {
		if r.header.Get("Traceparent") != "" {
			t.Fatalf("a malformed traceparent was passed on as %q", r.header.Get("Traceparent"))
		}
	}
}
