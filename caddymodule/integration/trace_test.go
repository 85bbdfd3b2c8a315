package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
)

// W3C trace context through the built Caddy: an inbound webhook's traceparent reaches the
// async app in the same trace with a span id per attempt; with Caddy's `tracing` on and no
// traceparent sent, the app gets the trace of the span Caddy started; a published event's
// attempts continue the publish's trace.
func TestTraceContextThroughCaddy(t *testing.T) {
	sink := startSickSink(t)
	sink.down.Store(false)
	failFirst := true
	sink.SetStatus(func(n int) int {
		got := sink.Got()[n-1]
		if strings.HasSuffix(got.Path, "/retry") && failFirst {
			failFirst = false
			return 503
		}
		return 200
	})
	c := startCaddy(t, `{
	{GLOBAL}
	webhooks {
		store embedded
		endpoint app {
			url `+sink.URL+`/published
			events order.*
			allow_private
		}
	}
}
http://127.0.0.1:{PORT} {
	handle /in {
		webhook_receive {
			name in
			auth none
			mode async
			deliver_to `+sink.URL+`/retry {
				retry 100ms
			}
		}
	}
	handle /traced {
		tracing {
			span hookgate-inbound
		}
		webhook_receive {
			name traced
			auth none
			mode async
			deliver_to `+sink.URL+`/traced
		}
	}
	handle /publish {
		webhook_publish
	}
}`, "OTEL_TRACES_EXPORTER=none")
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + trace + "-00f067aa0ba902b7-01"
	if code, _, b := send(t, c.Base()+"/in", []byte(`{"n":1}`), "Traceparent", parent); code != 202 {
		t.Fatalf("inbound: %d %s", code, b)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(sink.Got(), "/retry")) == 2 }, "the failed attempt and the retry")
	spans := map[string]bool{}
	for _, r := range byPath(sink.Got(), "/retry") {
		tp := strings.Split(r.Header.Get("Traceparent"), "-")
		if len(tp) != 4 || tp[1] != trace || tp[2] == "00f067aa0ba902b7" || spans[tp[2]] {
			t.Fatalf("attempt traceparent %q (spans so far %v)", r.Header.Get("Traceparent"), spans)
		}
		spans[tp[2]] = true
	}
	// Caddy's tracing started the span: the app's trace is that span's.
	if code, _, b := send(t, c.Base()+"/traced", []byte(`{"n":2}`)); code != 202 {
		t.Fatalf("traced: %d %s", code, b)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(sink.Got(), "/traced")) == 1 }, "the traced delivery")
	if tp := strings.Split(byPath(sink.Got(), "/traced")[0].Header.Get("Traceparent"), "-"); len(tp) != 4 || len(tp[1]) != 32 || tp[1] == strings.Repeat("0", 32) {
		t.Fatalf("with Caddy's tracing, the app got traceparent %q", byPath(sink.Got(), "/traced")[0].Header.Get("Traceparent"))
	}
	// A publish's trace.
	if code, _, b := send(t, c.Base()+"/publish", []byte(`{"n":3}`), "Webhook-Event-Type", "order.created", "Traceparent", parent); code != 202 {
		t.Fatalf("publish: %d %s", code, b)
	}
	testwait.Until(t, 10*time.Second, func() bool { return len(byPath(sink.Got(), "/published")) == 1 }, "the published delivery")
	if tp := strings.Split(byPath(sink.Got(), "/published")[0].Header.Get("Traceparent"), "-"); len(tp) != 4 || tp[1] != trace || tp[2] == "00f067aa0ba902b7" {
		t.Fatalf("published: traceparent %q", byPath(sink.Got(), "/published")[0].Header.Get("Traceparent"))
	}
}
