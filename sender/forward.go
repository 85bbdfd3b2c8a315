package sender

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hookgate/hookgate/internal/credential"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/sender/queue"
)

// Inbound is an accepted inbound webhook that async mode hands to the queue.
type Inbound struct {
	// Source is the route's sender (its preset, or "webhook").
	Source string
	// EventID is the webhook's event id ("" when the route computes none).
	EventID string
	// Verified is true when a credential was checked.
	Verified bool
	// Header is the sender's request header; credentials and hop-by-hop headers are left out.
	Header http.Header
	// Body is the exact body received; it is copied into the queue.
	Body []byte
	// RemoteAddr, Host and TLS are the request's peer address, Host header and whether it
	// came over TLS: the delivery's X-Forwarded-For, X-Forwarded-Host and
	// X-Forwarded-Proto, set as reverse_proxy sets them for a client it does not trust
	// (the sender's own forwarding headers are dropped).
	RemoteAddr, Host string
	TLS              bool
	// DedupeWindow is the route's dedupe window (0 when the route does not dedupe). On a
	// queue whose failed write may still have happened (queue.UncertainWriter: Redis,
	// where a 503 can follow the write when replicas_ack's wait runs out or the reply is
	// lost), a deduping route's queued event id is derived from the endpoint, EventID, Body
	// and the window of time the hand-off falls in (InboundEventID), so that the sender's
	// retry of a 503 maps to the event already queued, not a second one, while a repeat
	// after the dedupe window, a new event by the route's own rule, is queued again. A
	// retry that crosses into the next window is queued again too (at least once: a
	// duplicate delivery, with a chance of the retry's delay over the window). Ignored
	// when EventID is "", and on a queue whose failed write wrote nothing (the embedded
	// file): there the id is fresh and time-ordered, which its indexes insert at their ends.
	DedupeWindow time.Duration
}

// Outcome says how a hand-off ended: problem.ReasonQueued (durable in the queue; the
// sender got 202), problem.ReasonQueueUnavailable (the queue's store is away; 503 and
// Retry-After) or problem.ReasonQueueFailed (the store refused the write; 500).
type Outcome = problem.Reason

// forwardTimeout bounds the queue write of one hand-off.
const forwardTimeout = 5 * time.Second

// alwaysStripped are headers never queued with an async event: hop-by-hop and framing
// headers (and those the request's Connection header names), the Standard Webhooks
// headers the delivery sets itself, and the forwarding headers a sender could use to pass
// for another client (X-Forwarded-* are set again from the request). The credential
// headers (credential.Headers, the list the request log redacts) are stripped too.
var alwaysStripped = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Host",
	"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Expect",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Real-Ip"}

// Forwarder hands accepted inbound webhooks of async routes to the queue, for one internal
// target, and answers their senders.
type Forwarder struct {
	s        *Sender
	endpoint string
	strip    map[string]bool
}

// Forwarder registers target, the internal URL an async route delivers to, as an inbound
// endpoint (trusted: the private-address guard does not apply; it takes no published
// events), and returns the route's forwarder. The endpoint is named after the route alone,
// so a reload that changes the route's deliver_to or delivery options keeps its queue: what
// was queued goes to the new target. strip names more headers to leave out of the queue
// (the route's credential headers).
//
// Releases before this one named the endpoint after the route's dedupe scope, URL and
// options; that name is registered too, for the same target, so deliveries queued under it
// before an upgrade are still delivered.
func (s *Sender) Forwarder(route, scope string, target *Endpoint, strip []string) (*Forwarder, error) {
	name := inboundName(route, route)
	legacy := inboundName(scope, fmt.Sprintf("%s|%v|%v|%v", target.URL, target.Retry, target.ResponseTimeout, target.Concurrency))
	for _, n := range []string{name, legacy} {
		if e, ok := s.reg.Get(n); ok {
			if !e.Inbound {
				return nil, fmt.Errorf("endpoint name %s is taken by an outbound endpoint", n)
			}
			continue // a route sharing the legacy name (same scope and target) registered it
		}
		e := target
		if n == legacy { // the same target and options (an async route sets no others)
			e = &Endpoint{URL: target.URL, Retry: target.Retry, ResponseTimeout: target.ResponseTimeout,
				ConnectTimeout: target.ConnectTimeout, Concurrency: target.Concurrency, Header: target.Header,
				Description: "the queue of route " + route + " under its name before this release"}
		}
		e.Name, e.AllowPrivate, e.Inbound = n, true, true
		if err := s.reg.Add(e); err != nil {
			return nil, fmt.Errorf("deliver_to: %w", err)
		}
	}
	f := &Forwarder{s: s, endpoint: name, strip: map[string]bool{}}
	for _, h := range slices.Concat(alwaysStripped, credential.Headers, strip) {
		f.strip[http.CanonicalHeaderKey(h)] = true
	}
	return f, nil
}

// inboundName is an inbound endpoint's name: InboundPrefix, the label cleaned to endpoint
// name characters, and a hash of what tells it apart.
func inboundName(label, distinct string) string {
	sum := sha256.Sum256([]byte(distinct))
	clean := strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-') {
			return r
		}
		return '_'
	}, label)
	if len(clean) > 40 {
		clean = clean[:40]
	}
	return InboundPrefix + clean + "-" + hex.EncodeToString(sum[:4])
}

// Endpoint returns the name of the inbound endpoint the forwarder queues for.
func (f *Forwarder) Endpoint() string { return f.endpoint }

// Forwarded is what Forward did.
type Forwarded struct {
	// Outcome is queued, queue_unavailable or queue_failed.
	Outcome Outcome
	// EventID and DeliveryID name the queued event (a new id: the sender's is in the
	// X-Webhook-Event-Id header) and its delivery; empty unless queued.
	EventID, DeliveryID string
}

// InboundEventID is the queue's event id for the webhook of event id eventID and body
// body handed to inbound endpoint endpoint at at by a route that dedupes over window, on a
// queue whose failed writes may have happened (Inbound.DedupeWindow): "evi_" and 26 hex
// characters of a SHA-256 of the three and of which window-long span of time at falls in,
// so the same webhook queued twice in one span is one event (the queue's Enqueue is
// idempotent per event id), a different body under the same event id is another event,
// not a conflict, and a repeat a window or more later is another event.
func InboundEventID(endpoint, eventID string, body []byte, at time.Time, window time.Duration) string {
	h := sha256.New()
	span := at.UnixNano() / max(window.Nanoseconds(), 1)
	h.Write([]byte("inbound\x00" + endpoint + "\x00" + eventID + "\x00" + strconv.FormatInt(span, 10) + "\x00"))
	h.Write(body)
	var sum [sha256.Size]byte
	return "evi_" + hex.EncodeToString(h.Sum(sum[:0])[:13])
}

// Forward queues in as a new event, durably, wakes the target's workers, and answers the
// sender: 202 {"id": …} once queued; 503 problem+json with Retry-After when the queue's
// store is away; 500 when it refused the write. It returns which.
func (f *Forwarder) Forward(ctx context.Context, w http.ResponseWriter, in Inbound) (Forwarded, error) {
	hdr := http.Header{}
	hop := connectionListed(in.Header)
	for k, vs := range in.Header {
		if !f.strip[k] && !hop[k] {
			hdr[k] = vs
		}
	}
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		hdr.Set("X-Forwarded-For", ip)
	}
	if in.Host != "" {
		hdr.Set("X-Forwarded-Host", in.Host)
	}
	proto := "http"
	if in.TLS {
		proto = "https"
	}
	hdr.Set("X-Forwarded-Proto", proto)
	hdr.Set("X-Webhook-Source", in.Source)
	hdr.Set("X-Webhook-Verified", strconv.FormatBool(in.Verified))
	if in.EventID != "" {
		hdr.Set("X-Webhook-Event-Id", in.EventID)
	}
	f.s.d.spans.learn(ctx) // Caddy's tracer, when its tracing handler runs on the route
	id := queue.NewEventID()
	if in.DedupeWindow > 0 && in.EventID != "" && f.s.uncertain {
		id = InboundEventID(f.endpoint, in.EventID, in.Body, time.Now(), in.DedupeWindow)
	}
	// The id is new, or derived from the endpoint, the sender's id and the body: Unique.
	ev := queue.Event{ID: id, Type: in.Source, Body: append([]byte(nil), in.Body...), Header: hdr, Created: time.Now().UTC(), Unique: true}
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	_, err := f.s.enqueue(ctx, ev, []string{f.endpoint})
	cancel()
	if err != nil {
		status, outcome, detail := http.StatusServiceUnavailable, problem.ReasonQueueUnavailable, "the event could not be queued; retry later"
		switch {
		case errors.Is(err, queue.ErrNotReplicated):
			outcome = problem.ReasonNotReplicated
			detail = "the event was queued but fewer replicas than replicas_ack asks for hold it yet; retry later"
			if in.DedupeWindow > 0 && in.EventID != "" && f.s.uncertain {
				detail += " (a retry is the same event, not queued twice)"
			}
		case !errors.Is(err, queue.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded):
			status, outcome = http.StatusInternalServerError, problem.ReasonQueueFailed
		}
		problem.New(status, outcome, http.StatusText(status), detail).WithHeader("Retry-After", "30").Write(w)
		return Forwarded{Outcome: outcome}, fmt.Errorf("queueing an accepted webhook: %w", err)
	}
	answer := in.EventID
	if answer == "" {
		answer = ev.ID
	}
	b, _ := json.Marshal(map[string]string{"id": answer})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
	return Forwarded{Outcome: problem.ReasonQueued, EventID: ev.ID, DeliveryID: queue.DeliveryID(f.endpoint, ev.ID)}, nil
}

// connectionListed returns the headers h's Connection header names (hop-by-hop by RFC
// 9110 7.6.1: they are not forwarded), nil when it names none.
func connectionListed(h http.Header) map[string]bool {
	var out map[string]bool
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				if out == nil {
					out = map[string]bool{}
				}
				out[http.CanonicalHeaderKey(name)] = true
			}
		}
	}
	return out
}
