package sender

import (
	"net/http"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/clock"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/sender/queue"
)

// The retry schedule, on a clock the test advances: after a failed attempt the delivery is
// due its schedule's delay later (±20% jitter), nothing is attempted before the clock gets
// there, and the next attempt comes when it does. No test time passes in between.
func TestRetryScheduleOnAnInjectedClock(t *testing.T) {
	s := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	q := newQueue(t)
	clk := clock.NewFake(time.Now().Add(time.Minute)) // what is queued now is due
	e := &Endpoint{Name: "crm", URL: s.URL, AllowPrivate: true, Retry: []time.Duration{10 * time.Minute, time.Hour}}
	d := NewDispatcher(q, registryOf(t, e), Options{PollInterval: time.Hour, Clock: clk, StopGrace: time.Second})
	d.Start()
	t.Cleanup(d.Stop)
	id := queue.DeliveryID("crm", "evt_r")
	publish(t, d, "evt_r", "t", `{}`)

	// attempted waits until the delivery shows n attempts and is due again, and returns when.
	attempted := func(n int) time.Time {
		t.Helper()
		var got queue.Delivery
		testwait.Until(t, 30*time.Second, func() bool {
			got = state(t, q, id)
			return got.AttemptCount == n && got.State == queue.Pending && got.NextAt.After(clk.Now())
		}, "the attempt to be recorded")
		return got.NextAt
	}
	inWindow := func(next, from time.Time, delay time.Duration) {
		t.Helper()
		if lo, hi := from.Add(delay*8/10), from.Add(delay*12/10); next.Before(lo) || next.After(hi) {
			t.Fatalf("due at %v, want %v ±20%% after %v", next, delay, from)
		}
	}
	// asleep waits until the worker sleeps on the clock (its chance to attempt early is gone).
	asleep := func() {
		t.Helper()
		testwait.Until(t, 30*time.Second, func() bool { return clk.Pending() > 0 }, "the worker to sleep on the clock")
	}

	next := attempted(1)
	inWindow(next, clk.Now(), 10*time.Minute)
	asleep()
	clk.Advance(next.Sub(clk.Now()) - time.Second) // a second early
	asleep()
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("%d attempts before the retry was due", n)
	}
	clk.Advance(time.Second)
	testwait.Until(t, 30*time.Second, func() bool { return s.hits.Load() == 2 }, "the retry when it is due")
	retriedAt := clk.Now()
	inWindow(attempted(2), retriedAt, time.Hour)
}
