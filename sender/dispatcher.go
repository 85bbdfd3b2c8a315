package sender

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
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
	// LeaseFor is how long a lease lasts without renewal. Attempts in progress renew
	// their leases every LeaseFor/3, so this is how soon the deliveries of a worker that
	// died (a killed instance) are attempted again. Default 15s.
	LeaseFor time.Duration
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

	mu       sync.Mutex
	runners  map[string]*runner
	started  bool
	stopped  bool
	unwatch  func()
	unlisten func()
	halting  sync.WaitGroup // runners of removed endpoints, stopping

	results chan written
	ctx     context.Context // cancelled when Stop gives up on writing results
	cancel  context.CancelFunc
	writer  sync.WaitGroup
}

// written is a result on its way to the store, and the runner that holds its lease.
type written struct {
	res queue.Result
	r   *runner
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
	d := &Dispatcher{store: store, notify: n, reg: reg, opts: opts, runners: map[string]*runner{},
		results: make(chan written, 1024)}
	if n != nil {
		d.due, _ = store.(queue.DueChecker)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

// Start starts the workers of every endpoint in the registry, and of every endpoint added
// to it later.
func (d *Dispatcher) Start() {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return
	}
	d.started = true
	d.mu.Unlock()
	d.writer.Add(1)
	go func() {
		defer d.writer.Done()
		d.finish()
	}()
	if d.due != nil {
		d.writer.Add(1)
		go func() {
			defer d.writer.Done()
			d.sweep()
		}()
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

// apply starts or stops an endpoint's workers for a registry change.
func (d *Dispatcher) apply(c Change) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
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
	d.mu.Lock()
	if !d.started || d.stopped {
		d.mu.Unlock()
		return
	}
	d.stopped = true
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
	d.cancel()       // ends the sweeper, and the writer's retries
	close(d.results) // every attempt has ended: nothing sends any more
	d.writer.Wait()
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
			due, err := d.due.Due(ctx, chunk, time.Now())
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

// runner is one endpoint's workers: a leaser that starts an attempt per leased delivery,
// up to the endpoint's concurrency, and renews the leases of attempts in progress. The
// dispatcher's writer records results. It has its own lifecycle, so an endpoint can be
// removed while the others keep running.
type runner struct {
	d        *Dispatcher
	e        *Endpoint
	limiter  *rate.Limiter
	wake     chan struct{}
	inflight atomic.Int64

	ctx      context.Context // cancelled when attempts must stop
	cancel   context.CancelFunc
	stop     chan struct{}
	leaser   sync.WaitGroup
	attempts sync.WaitGroup // attempts running
	writes   sync.WaitGroup // results not yet written

	mu        sync.Mutex
	held      map[string]queue.Delivery // leased, result not yet written
	unstarted []queue.Delivery          // leased but not attempted (stopping): released at the end
	due       timeHeap                  // retries this runner scheduled: it wakes for each
}

func (r *runner) hold(ds []queue.Delivery) {
	r.mu.Lock()
	for _, d := range ds {
		r.held[d.ID] = d
	}
	r.mu.Unlock()
}

func newRunner(d *Dispatcher, e *Endpoint) *runner {
	r := &runner{d: d, e: e, wake: make(chan struct{}, 1), held: map[string]queue.Delivery{}, stop: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if e.RatePerSecond > 0 {
		burst := int(e.RatePerSecond)
		if burst < 1 {
			burst = 1
		}
		r.limiter = rate.NewLimiter(rate.Limit(e.RatePerSecond), burst)
	}
	return r
}

func (r *runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// halt stops the runner as Dispatcher.Stop describes, and closes the endpoint's
// connections: each config has its own transports, so every reload would otherwise leave a
// connection (and two goroutines) per endpoint behind.
func (r *runner) halt() {
	close(r.stop)
	r.leaser.Wait()
	done := make(chan struct{})
	go func() { r.attempts.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(r.d.opts.StopGrace):
		r.cancel()
		<-done
	}
	r.cancel()
	r.mu.Lock()
	unstarted := r.unstarted
	r.unstarted = nil
	for _, dl := range unstarted {
		delete(r.held, dl.ID)
	}
	r.mu.Unlock()
	if len(unstarted) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = r.d.store.Release(ctx, unstarted)
		cancel()
		r.inflight.Add(-int64(len(unstarted)))
		// Another dispatcher on this store (the config replacing this one) takes them now.
		r.d.Announce([]string{r.e.Name})
	}
	// Results are written by the dispatcher's writer; wait for this runner's, bounded: if
	// the store stays away they are dropped and their leases lapse (at least once).
	written := make(chan struct{})
	go func() { r.writes.Wait(); close(written) }()
	select {
	case <-written:
	case <-time.After(r.d.opts.StopGrace):
	}
	r.e.closeConns() // idle ones included: every connection is tracked from its dial
}

func (r *runner) start() {
	r.leaser.Add(1)
	go func() {
		defer r.leaser.Done()
		r.lease()
	}()
}

// renew extends the leases of the deliveries this runner holds.
func (r *runner) renew() {
	r.mu.Lock()
	ds := make([]queue.Delivery, 0, len(r.held))
	for _, d := range r.held {
		ds = append(ds, d)
	}
	r.mu.Unlock()
	if len(ds) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.d.opts.LeaseFor/3)
	defer cancel()
	if err := r.d.store.Extend(ctx, ds, time.Now().Add(r.d.opts.LeaseFor)); err != nil {
		r.d.opts.Logger.Warn("cannot renew delivery leases", zap.String("endpoint", r.e.Name), zap.Error(err))
	}
}

func (r *runner) stopping() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// idleWait is how long the leaser sleeps when nothing is due: until the next retry this
// runner scheduled, the next lease renewal when it holds leases, or the poll (with ±20%
// jitter, so many idle endpoints do not poll in step). When the dispatcher sweeps, the
// runner's own poll is only a backstop for a sweep that keeps failing: sixty times slower.
func (r *runner) idleWait(now, renewAt time.Time) time.Duration {
	poll := r.d.opts.PollInterval
	if r.d.due != nil {
		poll *= 60
	}
	wait := time.Duration(float64(poll) * (0.8 + 0.4*rand.Float64()))
	r.mu.Lock()
	for len(r.due) > 0 && !r.due[0].After(now) {
		heap.Pop(&r.due)
	}
	if len(r.due) > 0 {
		wait = min(wait, r.due[0].Sub(now))
	}
	if len(r.held) > 0 {
		wait = min(wait, renewAt.Sub(now))
	}
	r.mu.Unlock()
	return max(wait, time.Millisecond)
}

func (r *runner) lease() {
	log := r.d.opts.Logger
	failures := 0
	every := r.d.opts.LeaseFor / 3
	renewAt := time.Now().Add(every)
	// Lease in batches: wait until a quarter of the slots are free (or all work is done)
	// rather than making one store call per freed slot.
	batch := max(int64(r.e.Concurrency)/4, 1)
	for !r.stopping() {
		if now := time.Now(); !now.Before(renewAt) {
			r.renew()
			renewAt = now.Add(every)
		}
		inflight := r.inflight.Load()
		free := int64(r.e.Concurrency) - inflight
		if free >= batch || (free > 0 && inflight == 0) {
			got, err := r.d.store.Lease(r.ctx, r.e.Name, int(free), time.Now(), r.d.opts.LeaseFor)
			if err != nil {
				failures++
				if failures == 1 || failures%100 == 0 {
					log.Warn("cannot lease deliveries", zap.String("endpoint", r.e.Name), zap.Error(err))
				}
			} else {
				failures = 0
			}
			r.hold(got)
			for _, dl := range got {
				r.inflight.Add(1)
				r.attempts.Add(1)
				go r.attempt(dl)
			}
			if int64(len(got)) == free {
				continue
			}
		}
		t := time.NewTimer(r.idleWait(time.Now(), renewAt))
		select {
		case <-r.stop:
			t.Stop()
			return
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// attempt makes one attempt at a leased delivery and hands its result to the writer.
func (r *runner) attempt(dl queue.Delivery) {
	defer r.attempts.Done()
	giveBack := func() {
		r.mu.Lock()
		r.unstarted = append(r.unstarted, dl)
		r.mu.Unlock()
	}
	if r.stopping() {
		giveBack()
		return
	}
	if r.limiter != nil {
		if err := r.limiter.Wait(r.ctx); err != nil {
			giveBack()
			return
		}
	}
	a := r.e.send(r.ctx, dl.Event)
	if r.ctx.Err() != nil && !a.ok() {
		// Cancelled by Stop: not the endpoint's fault, not an attempt.
		giveBack()
		return
	}
	// The slot frees now; the delivery stays leased in the store until its result is
	// written, so nobody else attempts it meanwhile.
	r.writes.Add(1)
	select {
	case r.d.results <- written{res: r.judge(dl, a), r: r}:
	case <-r.ctx.Done():
		// Stopping while the writer is stuck (the store is away): the result is dropped
		// and the lease lapses, so the delivery is attempted again.
		r.writes.Done()
	}
	r.inflight.Add(-1)
	r.poke()
}

// judge decides what an attempt means for the delivery.
func (r *runner) judge(dl queue.Delivery, a attempt) queue.Result {
	res := queue.Result{Delivery: dl, Attempt: a.Attempt}
	outcome := ""
	switch {
	case a.ok():
		res.Outcome, outcome = queue.Done, "delivered"
	case a.Status == 410:
		// The endpoint is gone: disable it and keep the delivery for when it is enabled.
		res.Outcome, res.NextAt, outcome = queue.Retry, time.Now(), "gone"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := r.d.store.SetDisabled(ctx, r.e.Name, true, fmt.Sprintf("410 Gone at %s", time.Now().UTC().Format(time.RFC3339)))
		cancel()
		r.d.opts.Logger.Warn("endpoint answered 410 Gone: disabled until enabled again", zap.String("endpoint", r.e.Name), zap.Error(err))
	default:
		delay, more := r.e.nextDelay(dl.AttemptCount + 1)
		if !more {
			res.Outcome, outcome = queue.Kill, "dead"
			break
		}
		if a.retryAfter > 0 {
			delay = min(max(a.retryAfter, time.Second), MaxRetryAfter)
		}
		res.Outcome, res.NextAt, outcome = queue.Retry, time.Now().Add(delay), "retry"
		r.mu.Lock()
		heap.Push(&r.due, res.NextAt)
		r.mu.Unlock()
	}
	if outcome == "dead" {
		r.d.opts.Logger.Warn("delivery dead-lettered after its last attempt; retry it from the admin API or the dashboard",
			zap.String("endpoint", r.e.Name), zap.String("delivery", dl.ID), zap.String("event_id", dl.Event.ID),
			zap.Int("attempts", dl.AttemptCount+1), zap.Int("status", a.Status), zap.String("diagnosis", a.diagnosis))
	} else if outcome != "delivered" {
		r.d.opts.Logger.Debug("delivery attempt failed", zap.String("endpoint", r.e.Name), zap.String("delivery", dl.ID),
			zap.String("event_id", dl.Event.ID), zap.Int("status", a.Status), zap.String("diagnosis", a.diagnosis), zap.String("next", outcome))
	}
	if o := r.d.opts.Observer; o != nil {
		o.Attempted(r.e.Name, outcome, a.Status, a.Latency)
	}
	return res
}

// finish is the dispatcher's writer: it records the results of every runner in batches.
func (d *Dispatcher) finish() {
	batch := make([]written, 0, 512)
	results := make([]queue.Result, 0, 512)
	for w := range d.results {
		batch = append(batch[:0], w)
	drain:
		for len(batch) < cap(batch) {
			select {
			case more, ok := <-d.results:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		results = results[:0]
		for _, w := range batch {
			results = append(results, w.res)
		}
		d.write(results)
		for _, w := range batch {
			w.r.mu.Lock()
			delete(w.r.held, w.res.Delivery.ID)
			w.r.mu.Unlock()
			w.r.writes.Done()
		}
	}
}

// write records results, retrying while the store is unavailable. If it stays away
// until the dispatcher stops, the results are dropped: their leases lapse and the
// deliveries are attempted again (at least once, never lost).
func (d *Dispatcher) write(batch []queue.Result) {
	backoff := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := d.store.Finish(ctx, batch)
		cancel()
		if err == nil {
			return
		}
		d.opts.Logger.Warn("cannot record delivery results; retrying", zap.Int("results", len(batch)), zap.Error(err))
		select {
		case <-d.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// timeHeap is a min-heap of times.
type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
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
