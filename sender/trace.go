package sender

import (
	"context"
	"math/rand/v2"
	"net/http"

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

// attemptTrace rewrites h's traceparent, if it has a valid one, to the same trace and
// flags with a new span id: this attempt's.
func attemptTrace(h http.Header) {
	if h.Get("Traceparent") == "" {
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
