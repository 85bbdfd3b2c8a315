package sender

import (
	"container/heap"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

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
	gate      time.Time                 // the breaker holds deliveries back until then: no Lease call before

	brk      breakerCounter
	sleeping atomic.Bool // the leaser waits for a wake, a timer or the stop (tests settle on it)
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
	r.brk.p = e.Breaker.WithDefaults()
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
	if err := r.d.store.Extend(ctx, ds, r.d.opts.Clock.Now().Add(r.d.opts.LeaseFor)); err != nil {
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
	if r.gate.After(now) {
		wait = min(wait, r.gate.Sub(now))
	}
	r.mu.Unlock()
	return max(wait, time.Millisecond)
}

func (r *runner) lease() {
	log := r.d.opts.Logger
	failures := 0
	every := r.d.opts.LeaseFor / 3
	clk := r.d.opts.Clock
	renewAt := clk.Now().Add(every)
	// Lease in batches: wait until a quarter of the slots are free (or all work is done)
	// rather than making one store call per freed slot.
	batch := max(int64(r.e.Concurrency)/4, 1)
	for !r.stopping() {
		if now := clk.Now(); !now.Before(renewAt) {
			r.renew()
			renewAt = now.Add(every)
		}
		inflight := r.inflight.Load()
		free := int64(r.e.Concurrency) - inflight
		if (free >= batch || (free > 0 && inflight == 0)) && !r.gated(clk.Now()) {
			got, err := r.d.store.Lease(r.ctx, r.e.Name, int(free), clk.Now(), r.d.opts.LeaseFor)
			var open *queue.BreakerOpenError
			if errors.As(err, &open) {
				// Held back by the breaker (this instance's or another's): no store call
				// until it may allow a probe; one held by an operator is looked at again
				// at the poll.
				until := open.Until
				if until.IsZero() {
					until = clk.Now().Add(r.d.opts.PollInterval)
				}
				r.mu.Lock()
				r.gate = until
				r.mu.Unlock()
				err = nil
			}
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
		t := clk.NewTimer(r.idleWait(clk.Now(), renewAt))
		r.sleeping.Store(true)
		select {
		case <-r.stop:
			t.Stop()
			return
		case <-r.wake:
		case <-t.C():
		}
		r.sleeping.Store(false)
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
	ev, a, ok := r.e.retransform(dl.Event)
	if ok {
		ctx, end := r.d.spans.start(r.ctx, r.e.Name, dl.AttemptCount+1, ev)
		a = r.e.send(ctx, ev)
		end(a)
	}
	if r.ctx.Err() != nil && !a.ok() {
		// Cancelled by Stop: not the endpoint's fault, not an attempt.
		giveBack()
		return
	}
	res := r.judge(dl, a)
	if ok && dl.Event.TransformError != "" {
		// The transform that failed at enqueue ran now: the delivery stores what was sent.
		res.Reshaped = &queue.Variant{Body: ev.Body, Header: ev.Header}
	}
	r.afterAttempt(dl, a)
	// The slot frees now; the delivery stays leased in the store until its result is
	// written, so nobody else attempts it meanwhile.
	r.writes.Add(1)
	select {
	case r.d.results <- written{res: res, r: r}:
	case <-r.ctx.Done():
		// Stopping while the writer is stuck (the store is away): the result is dropped
		// and the lease lapses, so the delivery is attempted again.
		r.writes.Done()
	}
	r.inflight.Add(-1)
	r.poke()
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

// gated reports whether the breaker holds this endpoint's deliveries back at now.
func (r *runner) gated(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gate.After(now)
}
