package sender

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hookgate/hookgate/internal/clock"
	"github.com/hookgate/hookgate/internal/lifecycle"
	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
)

// Observer is told about every attempt, for metrics. Outcome is one of "delivered",
// "retry", "dead" or "gone" (a 410, which disables the endpoint).
type Observer interface {
	Attempted(endpoint, outcome string, status int, latency time.Duration)
}

// Options configure a Dispatcher.
type Options struct {
	// PollInterval is how often an idle endpoint looks for due deliveries it was not told
	// about (events queued by an instance whose announcement was lost, leases of a worker
	// that died, retries another instance scheduled before it went away). Default 250ms,
	// or 5s when the store announces what it queues (queue.Notifier): then the poll is
	// only a safety net, and 1,000 idle endpoints cost a few store calls a second.
	PollInterval time.Duration
	// StopGrace is how long Stop lets attempts in progress finish before cancelling them.
	// Default 5s.
	StopGrace time.Duration
	// Logger receives delivery failures and (sampled) filter failures. Default: no logging.
	Logger *zap.Logger
	// FilterTime is how long all the filters of one publish may run together; see
	// DefaultFilterTime (the default).
	FilterTime time.Duration
	// FilterRegexBytes is how many bytes the `matches` calls of one publish's filters may
	// scan; see DefaultFilterRegexBytes (the default).
	FilterRegexBytes int64
	// Observer, if set, is told about every attempt.
	Observer Observer
	// BreakerObserver, if set, is told about every breaker transition this dispatcher
	// makes.
	BreakerObserver BreakerObserver
	// LeaseFor is how long a lease lasts without renewal. Attempts in progress renew
	// their leases every LeaseFor/3, so this is how soon the deliveries of a worker that
	// died (a killed instance) are attempted again. Default 15s.
	LeaseFor time.Duration
	// Clock is the time the workers read and sleep on: when deliveries are due, retry
	// schedules, lease renewals. Default: the system clock (tests pass a clock.Fake).
	Clock clock.Clock
}

// Dispatcher runs the workers of a registry's endpoints over one queue. It watches the
// registry: an endpoint added at run time gets its workers at once, and a removed one's
// workers stop (as on Stop, for that endpoint alone). Several dispatchers (old and new
// config during a reload, or several instances on Redis) may run over the same queue at
// once: leases decide who attempts what.
//
// An idle endpoint costs one goroutine and a timer: attempts run in goroutines started
// per leased delivery (at most the endpoint's Concurrency), and one writer per dispatcher
// records every endpoint's results in batches. It wakes when told deliveries were queued
// (by this process, or by another instance through a queue.Notifier), when a retry it
// scheduled comes due, and at the slow poll.
type Dispatcher struct {
	store  queue.Worker
	notify queue.Notifier   // nil when the store does not announce
	due    queue.DueChecker // nil when the store cannot sweep; runners then poll on their own
	reg    *Registry
	opts   Options
	spans  spans // OpenTelemetry spans of attempts, once a traced request showed Caddy's tracer

	life     lifecycle.Base // the writer and the sweeper run in it
	mu       sync.Mutex
	runners  map[string]*runner
	unwatch  func()
	unlisten func()
	halting  sync.WaitGroup // runners of removed endpoints, stopping

	results chan written
	ctx     context.Context // the life's: cancelled when Stop gives up on writing results
}

// NewDispatcher returns a dispatcher for the endpoints of reg over store.
func NewDispatcher(store queue.Worker, reg *Registry, opts Options) *Dispatcher {
	n, _ := store.(queue.Notifier)
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
		if n != nil {
			opts.PollInterval = 5 * time.Second
		}
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.LeaseFor <= 0 {
		opts.LeaseFor = 15 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.System
	}
	d := &Dispatcher{store: store, notify: n, reg: reg, opts: opts, runners: map[string]*runner{},
		results: make(chan written, 1024)}
	if n != nil {
		d.due, _ = store.(queue.DueChecker)
	}
	return d
}

// Start starts the workers of every endpoint in the registry, and of every endpoint added
// to it later.
func (d *Dispatcher) Start() {
	if !d.life.Start() {
		return
	}
	d.mu.Lock()
	d.ctx = d.life.Context()
	d.mu.Unlock()
	d.life.Go(func(context.Context) { d.finish() })
	if d.due != nil {
		d.life.Go(func(context.Context) { d.sweep() })
	}
	var unlisten func()
	if d.notify != nil {
		unlisten = d.notify.Listen(d.notifyOne)
	}
	unwatch := d.reg.Watch(d.apply)
	d.mu.Lock()
	d.unwatch, d.unlisten = unwatch, unlisten
	d.mu.Unlock()
}

// Running reports whether the dispatcher was started and not stopped.
func (d *Dispatcher) Running() bool { return d.life.Running() }

// apply starts or stops an endpoint's workers for a registry change.
func (d *Dispatcher) apply(c Change) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.life.Running() { // stopping: Stop's snapshot of the runners must be the last
		return
	}
	if e := c.Added; e != nil {
		if _, running := d.runners[e.Name]; !running {
			r := newRunner(d, e)
			d.runners[e.Name] = r
			r.start()
		}
	}
	if r, ok := d.runners[c.Removed]; ok && c.Removed != "" {
		delete(d.runners, c.Removed)
		d.halting.Add(1)
		go func() {
			defer d.halting.Done()
			r.halt()
		}()
	}
}

// Stop stops leasing, lets attempts in progress finish for up to StopGrace, then cancels
// them; deliveries not attempted are released so another dispatcher takes them at once.
// It returns when every goroutine has ended.
func (d *Dispatcher) Stop() {
	d.life.Stop(func() {
		// The life is already marked stopped, so apply adds no runner after this snapshot.
		d.mu.Lock()
		unwatch, unlisten, runners := d.unwatch, d.unlisten, d.runners
		d.runners = map[string]*runner{}
		d.mu.Unlock()
		if unwatch != nil {
			unwatch()
		}
		if unlisten != nil {
			unlisten()
		}
		var wg sync.WaitGroup
		for _, r := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.halt()
			}()
		}
		wg.Wait()
		d.halting.Wait()
	}, func() {
		// The context is cancelled (ending the sweeper, and the writer's retries), and
		// every attempt has ended: nothing sends any more.
		close(d.results)
	})
}

// sweep is the safety-net poll over a store that tells which endpoints are due: every
// PollInterval, one call for every endpoint, and only the due ones' runners lease.
func (d *Dispatcher) sweep() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-time.After(time.Duration(float64(d.opts.PollInterval) * (0.9 + 0.2*rand.Float64()))):
		}
		d.mu.Lock()
		names := make([]string, 0, len(d.runners))
		for n := range d.runners {
			names = append(names, n)
		}
		d.mu.Unlock()
		if len(names) == 0 {
			continue
		}
		// In chunks, a little apart: 10,000 endpoints are 20 small calls spread over ~0.4 s,
		// not one burst that holds Redis (single-threaded) while webhooks wait behind it.
		for start := 0; start < len(names); start += sweepChunk {
			if start > 0 {
				select {
				case <-d.ctx.Done():
					return
				case <-time.After(sweepPause):
				}
			}
			chunk := names[start:min(start+sweepChunk, len(names))]
			ctx, cancel := context.WithTimeout(d.ctx, d.opts.PollInterval)
			due, err := d.due.Due(ctx, chunk, d.opts.Clock.Now())
			cancel()
			if err != nil {
				break // the runners' own slow poll covers for it; the store being away is logged there
			}
			var wake []string
			for i, n := range chunk {
				if due[i] {
					wake = append(wake, n)
				}
			}
			d.Notify(wake)
		}
	}
}

// The sweep's chunks.
const (
	sweepChunk = 500
	sweepPause = 20 * time.Millisecond
)

// Notify tells the named endpoints' workers in this dispatcher that deliveries were
// queued, so idle ones look now instead of at the next poll.
func (d *Dispatcher) Notify(endpoints []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range endpoints {
		if r, ok := d.runners[n]; ok {
			r.poke()
		}
	}
}

// notifyOne is Notify for one endpoint (the store's announcements come one by one).
func (d *Dispatcher) notifyOne(endpoint string) {
	d.mu.Lock()
	r, ok := d.runners[endpoint]
	d.mu.Unlock()
	if ok {
		r.poke()
	}
}

// Announce wakes the endpoints' workers wherever they run: through the store's notices
// when it has them (every dispatcher of this process, and other instances), else in this
// dispatcher only.
func (d *Dispatcher) Announce(endpoints []string) {
	if d.notify != nil {
		d.notify.Announce(endpoints)
		return
	}
	d.Notify(endpoints)
}

// TestResult is what a test send found.
type TestResult struct {
	// OK is true for a 2xx answer.
	OK bool `json:"ok"`
	// Status is the HTTP status, 0 when there was no answer.
	Status int `json:"status,omitempty"`
	// LatencyMS is the attempt's duration in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
	// Answer holds the first bytes of the answer.
	Answer string `json:"answer,omitempty"`
	// Diagnosis says in plain words what happened: ok, DNS, refused, TLS, timeout, non-2xx, blocked.
	Diagnosis string `json:"diagnosis"`
}

// Test sends a test event to the named endpoint now, outside the queue.
func (d *Dispatcher) Test(ctx context.Context, name string) (TestResult, error) {
	e, ok := d.reg.Get(name)
	if !ok {
		return TestResult{}, errors.New("no such endpoint")
	}
	now := time.Now().UTC()
	ev := queue.Event{ID: queue.NewEventID(), Type: "webhook.test", Created: now,
		Body: fmt.Appendf(nil, `{"type":"webhook.test","timestamp":%q,"data":{"endpoint":%q}}`, now.Format(time.RFC3339), name)}
	a := e.send(ctx, ev)
	return TestResult{OK: a.ok(), Status: a.Status, LatencyMS: float64(a.Latency.Microseconds()) / 1000,
		Answer: string(a.answer), Diagnosis: a.diagnosis}, nil
}
