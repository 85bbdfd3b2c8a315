package sender

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync/atomic"

	"github.com/hookgate/hookgate/sender/queue"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// W3C trace context (https://www.w3.org/TR/trace-context/): an event keeps the traceparent
// (and tracestate) of the request that brought it in, the inbound webhook's (Caddy's
// `tracing` handler puts its own span there) or the publish's, and every delivery attempt
// sends a traceparent of the same trace with a span id of its own.

var w3c = propagation.TraceContext{}

// traceHeaders returns the trace context headers of h worth keeping (a valid
// traceparent, and its tracestate), or nil.
func traceHeaders(h http.Header) http.Header {
	sc := trace.SpanContextFromContext(w3c.Extract(context.Background(), propagation.HeaderCarrier(h)))
	if !sc.IsValid() {
		return nil
	}
	out := http.Header{}
	w3c.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(out))
	return out
}

// attemptTrace rewrites h's traceparent, if it has a valid one, to this attempt's: its
// span's when ctx carries one, else the same trace and flags with a new span id.
func attemptTrace(ctx context.Context, h http.Header) {
	if h.Get("Traceparent") == "" {
		return
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		w3c.Inject(ctx, propagation.HeaderCarrier(h))
		return
	}
	sc := trace.SpanContextFromContext(w3c.Extract(context.Background(), propagation.HeaderCarrier(h)))
	if !sc.IsValid() {
		h.Del("Traceparent") // a malformed one is not passed on
		h.Del("Tracestate")
		return
	}
	w3c.Inject(trace.ContextWithSpanContext(context.Background(), sc.WithSpanID(newSpanID())), propagation.HeaderCarrier(h))
}

func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		v := rand.Uint64()
		for i := range id {
			id[i] = byte(v >> (8 * i))
		}
	}
	return id
}

// mergeHeader returns base with over's values on top, in a new map.
func mergeHeader(base, over http.Header) http.Header {
	out := base.Clone()
	for k, vs := range over {
		out[k] = vs
	}
	return out
}

// spans holds the tracer of OpenTelemetry spans for delivery attempts: Caddy's tracer
// provider, learned from the first traced request that queued an event (an inbound span
// Caddy's `tracing` handler started, or a publish's). Until then no attempt span is made.
type spans struct {
	tracer atomic.Pointer[trace.Tracer]
}

// learn keeps the tracer provider of ctx's span if it records (Caddy's tracing is on).
func (s *spans) learn(ctx context.Context) {
	if s.tracer.Load() != nil {
		return
	}
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		tr := sp.TracerProvider().Tracer("github.com/hookgate/hookgate/sender")
		s.tracer.CompareAndSwap(nil, &tr)
	}
}

// start begins the span of one attempt at ev, a child of the event's trace (the inbound
// or publish span) and linked to it, when the event has trace context and a tracer is
// known; the returned context carries it (send puts it in the traceparent). end records
// the attempt's outcome.
func (s *spans) start(ctx context.Context, endpoint string, n int, ev queue.Event) (context.Context, func(attempt)) {
	tr := s.tracer.Load()
	if tr == nil || ev.Header.Get("Traceparent") == "" {
		return ctx, func(attempt) {}
	}
	parent := trace.SpanContextFromContext(w3c.Extract(context.Background(), propagation.HeaderCarrier(ev.Header)))
	if !parent.IsValid() {
		return ctx, func(attempt) {}
	}
	ctx, sp := (*tr).Start(trace.ContextWithRemoteSpanContext(ctx, parent), "webhook delivery "+endpoint,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(trace.Link{SpanContext: parent}),
		trace.WithAttributes(attribute.String("webhook.endpoint", endpoint), attribute.Int("webhook.attempt", n),
			attribute.String("webhook.event_id", ev.ID), attribute.String("webhook.event_type", ev.Type)))
	return ctx, func(a attempt) {
		if a.Status != 0 {
			sp.SetAttributes(attribute.Int("http.response.status_code", a.Status))
		}
		if !a.ok() {
			sp.SetStatus(codes.Error, describe(a))
		}
		sp.End()
	}
}
