package sender

import (
	"container/heap"
	"context"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
)

// written is a result on its way to the store, and the runner that holds its lease.
type written struct {
	res queue.Result
	r   *runner
}

// judge decides what an attempt means for the delivery.
func (r *runner) judge(dl queue.Delivery, a attempt) queue.Result {
	res := queue.Result{Delivery: dl, Attempt: a.Attempt}
	outcome := ""
	failed, counts := breakerFailure(a)
	switch {
	case a.ok():
		res.Outcome, outcome = queue.Done, "delivered"
	case dl.Probe && failed && counts && !r.e.Breaker.Off:
		// A breaker's probe and the app is still down: this event was not refused, so the
		// attempt is not counted against its schedule and it keeps its place.
		res.Outcome, res.NextAt, res.Uncounted, outcome = queue.Retry, dl.NextAt, true, "retry"
	case a.Status == 410:
		// The endpoint is gone: disable it and keep the delivery for when it is enabled.
		res.Outcome, res.NextAt, outcome = queue.Retry, r.d.opts.Clock.Now(), "gone"
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
		res.Outcome, res.NextAt, outcome = queue.Retry, r.d.opts.Clock.Now().Add(delay), "retry"
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
