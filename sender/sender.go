package sender

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
	"unicode"

	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
)

// Sender is the outbound core: the endpoint registry, the delivery queue, and the
// dispatcher whose workers deliver. It owns every way an event gets into the queue
// (publishing, the async hand-off of inbound webhooks, requeues from the admin API), and
// wakes the workers each time. The Caddy glue makes one per config, fills its registry, and
// starts and stops it with the app.
type Sender struct {
	queue queue.Store
	reg   *Registry
	d     *Dispatcher
	opts  Options
	log   *zap.Logger
	// uncertain: a failed write of the queue may have happened (queue.UncertainWriter),
	// so deduping async routes queue under ids derived from the webhook.
	uncertain bool

	mu    sync.Mutex
	feeds map[string]*Feed
}

// New returns a sender over q; nothing runs until Start.
func New(q queue.Store, opts Options) *Sender {
	reg := NewRegistry()
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	u, _ := q.(queue.UncertainWriter)
	return &Sender{queue: q, reg: reg, d: NewDispatcher(q, reg, opts), opts: opts, log: log,
		uncertain: u != nil && u.UncertainWrites()}
}

// Registry returns the sender's endpoints.
func (s *Sender) Registry() *Registry { return s.reg }

// Queue returns the delivery queue (for listings and status).
func (s *Sender) Queue() queue.Store { return s.queue }

// Start starts the workers of every endpoint (and of those added later).
func (s *Sender) Start() { s.d.Start() }

// Stop stops the workers: attempts in progress get the dispatcher's StopGrace to finish.
func (s *Sender) Stop() { s.d.Stop() }

// Running reports whether the workers were started and not stopped.
func (s *Sender) Running() bool { return s.d.Running() }

// Errors of Publish's input.
var (
	// ErrBadType is returned for an event type that is empty, over 200 characters, or has
	// spaces or unprintable characters.
	ErrBadType = errors.New("the event type must be 1-200 printable characters without spaces")
	// ErrKeyTooLong is returned for an idempotency key over 255 characters.
	ErrKeyTooLong = errors.New("the Idempotency-Key is longer than 255 characters")
)

// ValidEventType accepts 1-200 printable, non-space characters.
func ValidEventType(t string) bool {
	if t == "" || len(t) > 200 {
		return false
	}
	for _, r := range t {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// PublishResult tells what a publish did.
type PublishResult struct {
	// ID is the event id: fixed by the idempotency key, or a new one.
	ID string
	// Endpoints is how many endpoints take the event's type.
	Endpoints int
	// Replayed is true when an idempotency key was seen before with the same body, so
	// nothing new was queued.
	Replayed bool
}

// Message is an event to publish.
type Message struct {
	// Type is the event type, matched against endpoints' event patterns.
	Type string
	// IdempotencyKey, when set, fixes the event id: a repeat queues nothing.
	IdempotencyKey string
	// Body is the JSON delivered as is.
	Body []byte
	// Header is the publish request's headers, which filters may read. Not delivered, but
	// for its W3C trace context (traceparent, tracestate), which every attempt continues.
	Header http.Header
}

// Publish queues m for every endpoint whose patterns match its type and whose filter (if
// any) matches it, durably (it returns once the store has it), and wakes their workers.
// An idempotency key maps to a fixed event id: publishing it again queues nothing
// (Replayed), and with another body it is queue.ErrConflict. A store failure is returned
// as is (queue.ErrUnavailable when the store is away; nothing was queued then, unless it
// is also queue.ErrNotReplicated: queued on the master, short of replicas_ack).
func (s *Sender) Publish(ctx context.Context, m Message) (PublishResult, error) {
	typ := m.Type
	if !ValidEventType(typ) {
		return PublishResult{}, ErrBadType
	}
	res := PublishResult{ID: queue.NewEventID()}
	if m.IdempotencyKey != "" {
		if len(m.IdempotencyKey) > 255 {
			return PublishResult{}, ErrKeyTooLong
		}
		res.ID = queue.IdempotentEventID(m.IdempotencyKey)
	}
	matched := s.reg.MatchEndpoints(typ)
	eps := make([]string, 0, len(matched))
	var in *FilterInput
	defer func() { // one open-coded defer, not one per iteration
		if in != nil {
			in.Release()
		}
	}()
	input := func() *FilterInput {
		if in == nil {
			// Every filter and transform of this publish shares one budget (FilterTime,
			// FilterRegexBytes): N subscriptions cannot cost N times an expression's limit.
			in = &FilterInput{Type: typ, Body: m.Body, Header: m.Header}
			in.Budget(ctx, s.opts.FilterTime, s.opts.FilterRegexBytes)
		}
		return in
	}
	var variants map[string]queue.Variant
	for _, e := range matched {
		if e.filter != nil {
			ok, err := e.filter.Match(input())
			if err != nil {
				s.filterFailed(e, err)
			}
			if !ok {
				continue
			}
		}
		if e.transform != nil {
			if variants == nil {
				variants = make(map[string]queue.Variant, 1)
			}
			variants[e.Name] = s.reshape(e, res.ID, input())
		}
		eps = append(eps, e.Name)
	}
	res.Endpoints = len(eps)
	if len(eps) == 0 {
		return res, nil
	}
	// The publish's trace context goes with the event: each attempt continues its trace.
	trace := traceHeaders(m.Header)
	s.d.spans.learn(ctx)
	for name, v := range variants {
		if trace != nil && v.Header != nil {
			v.Header = mergeHeader(trace, v.Header)
			variants[name] = v
		}
	}
	created, err := s.enqueue(ctx, queue.Event{ID: res.ID, Type: typ, Body: m.Body, Header: trace, Created: time.Now().UTC(), Variants: variants}, eps)
	if err != nil {
		return PublishResult{}, err
	}
	res.Replayed = m.IdempotencyKey != "" && created == 0
	return res, nil
}

// filterFailed counts a filter that failed at run time or ran out of the publish's budget
// on its endpoint, and logs it, at most once a minute per endpoint (with how many failed
// since the last line).
func (s *Sender) filterFailed(e *Endpoint, err error) {
	if n, ok := e.fstats.failed(err, time.Now()); ok {
		s.log.Warn("a filter failed: its endpoint does not get the event",
			zap.String("endpoint", e.Name), zap.Bool("over_budget", errors.Is(err, ErrFilterBudget)),
			zap.Uint64("failures_since_last_line", n), zap.Error(err))
	}
}

// enqueue queues ev for endpoints and wakes their workers: the one way events enter the queue.
func (s *Sender) enqueue(ctx context.Context, ev queue.Event, endpoints []string) (int, error) {
	created, err := s.queue.Enqueue(ctx, ev, endpoints)
	if err != nil {
		return 0, err
	}
	s.d.Announce(endpoints)
	return created, nil
}

// ErrNoEndpoint is returned by the per-endpoint operations for a name the registry lacks.
var ErrNoEndpoint = errors.New("no such endpoint")

func (s *Sender) known(name string) error {
	if _, ok := s.reg.Get(name); !ok {
		return fmt.Errorf("%w: %q", ErrNoEndpoint, name)
	}
	return nil
}

// Requeue makes one dead or delivered delivery pending again, due now (queue.ErrNotFound
// if it is gone).
func (s *Sender) Requeue(ctx context.Context, id string) error {
	if err := s.queue.Requeue(ctx, id); err != nil {
		return err
	}
	if ep, ok := queue.EndpointOf(id); ok {
		s.d.Announce([]string{ep})
	}
	return nil
}

// RequeueDead requeues the endpoint's dead letters and returns how many.
func (s *Sender) RequeueDead(ctx context.Context, endpoint string) (int, error) {
	if err := s.known(endpoint); err != nil {
		return 0, err
	}
	n, err := s.queue.RequeueDead(ctx, endpoint)
	if err == nil {
		s.d.Announce([]string{endpoint})
	}
	return n, err
}

// ResendLatest queues again the latest event of every type the endpoint took, and returns
// how many.
func (s *Sender) ResendLatest(ctx context.Context, endpoint string) (int, error) {
	if err := s.known(endpoint); err != nil {
		return 0, err
	}
	n, err := s.queue.Resend(ctx, endpoint)
	if err == nil {
		s.d.Announce([]string{endpoint})
	}
	return n, err
}

// Enable re-enables an endpoint disabled by a 410 answer.
func (s *Sender) Enable(ctx context.Context, endpoint string) error {
	if err := s.known(endpoint); err != nil {
		return err
	}
	if err := s.queue.SetDisabled(ctx, endpoint, false, ""); err != nil {
		return err
	}
	s.d.Announce([]string{endpoint})
	return nil
}

// SetBreaker opens (held by an operator until closed) or closes the endpoint's circuit
// breaker; a close returns how many pending deliveries were rescheduled to drain oldest
// first.
func (s *Sender) SetBreaker(ctx context.Context, endpoint string, open bool) (int, error) {
	if err := s.known(endpoint); err != nil {
		return 0, err
	}
	return s.d.SetBreaker(ctx, endpoint, open)
}

// Test sends a webhook.test event to the endpoint now, outside the queue.
func (s *Sender) Test(ctx context.Context, endpoint string) (TestResult, error) {
	if err := s.known(endpoint); err != nil {
		return TestResult{}, err
	}
	return s.d.Test(ctx, endpoint)
}
