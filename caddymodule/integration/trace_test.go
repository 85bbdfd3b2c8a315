package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
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

// otlpSink is a real OTLP/HTTP trace receiver: it decodes each protobuf export and keeps
// the spans.
type otlpSink struct {
	*Backend
	mu    sync.Mutex
	spans []*tracepb.Span
}

func startOTLPSink(t *testing.T) *otlpSink {
	o := &otlpSink{Backend: startBackend(t)}
	o.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				o.spans = append(o.spans, ss.Spans...)
			}
		}
		o.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	return o
}

func (o *otlpSink) named(prefix string) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range o.spans {
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, s)
		}
	}
	return out
}

func spanAttr(s *tracepb.Span, key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			switch v := a.Value.Value.(type) {
			case *commonpb.AnyValue_IntValue:
				return strconv.FormatInt(v.IntValue, 10)
			case *commonpb.AnyValue_StringValue:
				return v.StringValue
			}
		}
	}
	return ""
}

// With Caddy's `tracing` on and an OTLP receiver (a real one the test starts), each
// delivery attempt of an inbound webhook is a span exported through Caddy's OpenTelemetry
// SDK: a child of the inbound request's span, linked to it, with the endpoint, the attempt
// number and the status; the app receives the attempt span as its traceparent's parent.
func TestAttemptSpansReachOTLP(t *testing.T) {
	otlp := startOTLPSink(t)
	sink := startBackend(t)
	sink.SetStatus(func(n int) int {
		if n == 1 {
			return 503
		}
		return 200
	})
	c := startCaddy(t, `{
	{GLOBAL}
}
http://127.0.0.1:{PORT} {
	handle /traced {
		tracing {
			span hookgate-inbound
		}
		webhook_receive {
			name traced
			auth none
			mode async
			deliver_to `+sink.URL+`/app {
				retry 100ms
			}
		}
	}
}`, "OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+otlp.URL+"/v1/traces", "OTEL_BSP_SCHEDULE_DELAY=100")
	if code, _, b := send(t, c.Base()+"/traced", []byte(`{"n":1}`)); code != 202 {
		t.Fatalf("traced: %d %s", code, b)
	}
	testwait.Until(t, 15*time.Second, func() bool {
		return len(otlp.named("hookgate-inbound")) == 1 && len(otlp.named("webhook delivery")) == 2
	}, "the inbound span and two attempt spans at the OTLP receiver")
	in := otlp.named("hookgate-inbound")[0]
	got := sink.Got()
	for i, sp := range otlp.named("webhook delivery") {
		if !bytes.Equal(sp.TraceId, in.TraceId) || !bytes.Equal(sp.ParentSpanId, in.SpanId) || len(sp.Links) != 1 ||
			!bytes.Equal(sp.Links[0].SpanId, in.SpanId) || sp.Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Fatalf("attempt span %d: trace %x parent %x links %v kind %v; inbound %x/%x", i, sp.TraceId, sp.ParentSpanId, sp.Links, sp.Kind, in.TraceId, in.SpanId)
		}
		if n, status := spanAttr(sp, "webhook.attempt"), spanAttr(sp, "http.response.status_code"); n != strconv.Itoa(i+1) ||
			status != map[int]string{0: "503", 1: "200"}[i] || !strings.HasPrefix(spanAttr(sp, "webhook.endpoint"), "inbound") {
			t.Fatalf("attempt span %d: attempt %s status %s endpoint %s", i, n, status, spanAttr(sp, "webhook.endpoint"))
		}
		if want := fmt.Sprintf("00-%x-%x-01", sp.TraceId, sp.SpanId); got[i].Header.Get("Traceparent") != want {
			t.Fatalf("attempt %d sent traceparent %q, want its span's %q", i, got[i].Header.Get("Traceparent"), want)
		}
	}
}
