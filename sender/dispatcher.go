package sender

import (
	"context"
	"errors"
	"fmt"
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
	// PollInterval is how often an idle endpoint looks for due deliveries (retries that
	// came due, events queued by other instances). Default 250ms.
	PollInterval time.Duration
	// StopGrace is how long Stop lets attempts in progress finish before cancelling them.
	// Default 5s.
	StopGrace time.Duration
	// Logger receives delivery failures. Default: no logging.
	Logger *zap.Logger
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
type Dispatcher struct {
	store queue.Worker
	reg   *Registry
	opts  Options

	mu      sync.Mutex
	runners map[string]*runner
	started bool
	stopped bool
	unwatch func()
	halting sync.WaitGroup // runners of removed endpoints, stopping
}

// NewDispatcher returns a dispatcher for the endpoints of reg over store.
func NewDispatcher(store queue.Worker, reg *Registry, opts Options) *Dispatcher {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
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
	return &Dispatcher{store: store, reg: reg, opts: opts, runners: map[string]*runner{}}
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
	unwatch := d.reg.Watch(d.apply)
	d.mu.Lock()
	d.unwatch = unwatch
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
	unwatch, runners := d.unwatch, d.runners
	d.runners = map[string]*runner{}
	d.mu.Unlock()
	if unwatch != nil {
		unwatch()
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
}

// Notify tells the named endpoints that deliveries were queued, so idle workers look now
// instead of at the next poll.
func (d *Dispatcher) Notify(endpoints []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range endpoints {
		if r, ok := d.runners[n]; ok {
			r.poke()
		}
	}
}

// NotifyAll wakes every endpoint's workers.
func (d *Dispatcher) NotifyAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.runners {
		r.poke()
	}
}

// runner is one endpoint's workers: a leaser feeding a pool of senders, whose results a
// finisher writes back to the queue in batches. It has its own lifecycle, so an endpoint
// can be removed while the others keep running.
type runner struct {
	d        *Dispatcher
	e        *Endpoint
	limiter  *rate.Limiter
	jobs     chan queue.Delivery
	results  chan queue.Result
	wake     chan struct{}
	inflight atomic.Int64

	ctx    context.Context // cancelled when attempts must stop
	cancel context.CancelFunc
	stop   chan struct{}
	wg     sync.WaitGroup

	mu   sync.Mutex
	held map[string]queue.Delivery // leased, result not yet written
}

func (r *runner) hold(ds []queue.Delivery) {
	r.mu.Lock()
	for _, d := range ds {
		r.held[d.ID] = d
	}
	r.mu.Unlock()
}

func (r *runner) unhold(ids ...string) {
	r.mu.Lock()
	for _, id := range ids {
		delete(r.held, id)
	}
	r.mu.Unlock()
}

func newRunner(d *Dispatcher, e *Endpoint) *runner {
	r := &runner{d: d, e: e, jobs: make(chan queue.Delivery, e.Concurrency), results: make(chan queue.Result, 4*e.Concurrency),
		wake: make(chan struct{}, 1), held: map[string]queue.Delivery{}, stop: make(chan struct{})}
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
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(r.d.opts.StopGrace):
		r.cancel()
		<-done
	}
	r.cancel()
	r.e.conns.closeAll() // idle ones included: every connection is tracked from its dial
}

func (r *runner) start() {
	var workers sync.WaitGroup
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		r.lease()
		close(r.jobs)
		workers.Wait()
		close(r.results)
	}()
	for i := 0; i < r.e.Concurrency; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			r.work()
		}()
	}
	go func() {
		defer r.wg.Done()
		r.finish()
	}()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.renew()
	}()
}

// renew extends the leases of the deliveries this runner holds, until Stop.
func (r *runner) renew() {
	every := r.d.opts.LeaseFor / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		ds := make([]queue.Delivery, 0, len(r.held))
		for _, d := range r.held {
			ds = append(ds, d)
		}
		r.mu.Unlock()
		if len(ds) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		if err := r.d.store.Extend(ctx, ds, time.Now().Add(r.d.opts.LeaseFor)); err != nil {
			r.d.opts.Logger.Warn("cannot renew delivery leases", zap.String("endpoint", r.e.Name), zap.Error(err))
		}
		cancel()
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

func (r *runner) lease() {
	log := r.d.opts.Logger
	failures := 0
	// Lease in batches: wait until a quarter of the slots are free (or all work is done)
	// rather than making one store call per freed slot.
	batch := max(int64(r.e.Concurrency)/4, 1)
	for !r.stopping() {
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
				r.jobs <- dl
			}
			if int64(len(got)) == free {
				continue
			}
		}
		select {
		case <-r.stop:
			return
		case <-r.wake:
		case <-time.After(r.d.opts.PollInterval):
		}
	}
}

func (r *runner) work() {
	var unstarted []queue.Delivery
	for dl := range r.jobs {
		if r.stopping() {
			unstarted = append(unstarted, dl)
			continue
		}
		if r.limiter != nil {
			if err := r.limiter.Wait(r.ctx); err != nil {
				unstarted = append(unstarted, dl)
				continue
			}
		}
		a := r.e.send(r.ctx, dl.Event)
		if r.ctx.Err() != nil && !a.ok() {
			// Cancelled by Stop: not the endpoint's fault, not an attempt.
			unstarted = append(unstarted, dl)
			continue
		}
		// The slot frees now; the delivery stays leased in the store until its result is
		// written, so nobody else attempts it meanwhile.
		r.results <- r.judge(dl, a)
		r.inflight.Add(-1)
		r.poke()
	}
	if len(unstarted) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = r.d.store.Release(ctx, unstarted)
		cancel()
		for _, d := range unstarted {
			r.unhold(d.ID)
		}
		r.inflight.Add(-int64(len(unstarted)))
	}
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

func (r *runner) finish() {
	batch := make([]queue.Result, 0, 512)
	for res := range r.results {
		batch = append(batch[:0], res)
	drain:
		for len(batch) < cap(batch) {
			select {
			case more, ok := <-r.results:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		r.write(batch)
		r.mu.Lock()
		for _, res := range batch {
			delete(r.held, res.Delivery.ID)
		}
		r.mu.Unlock()
	}
}

// write records results, retrying while the store is unavailable. If it stays away
// until the dispatcher is cancelled, the results are dropped: their leases lapse and the
// deliveries are attempted again (at least once, never lost).
func (r *runner) write(batch []queue.Result) {
	backoff := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := r.d.store.Finish(ctx, batch)
		cancel()
		if err == nil {
			return
		}
		r.d.opts.Logger.Warn("cannot record delivery results; retrying", zap.String("endpoint", r.e.Name), zap.Error(err))
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
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
