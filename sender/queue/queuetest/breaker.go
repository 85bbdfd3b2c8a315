package queuetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
)

// breakerOpen returns Lease's *BreakerOpenError, failing the test if Lease leased anything
// or failed otherwise.
func breakerOpen(t *testing.T, s queue.Store, endpoint string, now time.Time) *queue.BreakerOpenError {
	t.Helper()
	got, err := s.Lease(context.Background(), endpoint, 10, now, time.Minute)
	var open *queue.BreakerOpenError
	if len(got) != 0 || !errors.As(err, &open) {
		t.Fatalf("Lease with the breaker open = %v, %v; want a *BreakerOpenError and nothing leased", ids(got), err)
	}
	return open
}

// runBreaker: an open breaker holds every delivery back (no lease, no attempt counted);
// opening rewinds the pending ones not leased to their creation, so once its cooldown
// passes, one caller on any instance gets one probe, the oldest event;
// a failed probe is recorded without counting against the retry schedule; closing rewinds
// the backlog to creation order (leased deliveries and the probe kept as they are); an
// operator's open has no probe; a restart keeps the state.
func runBreaker(t *testing.T, newStore Factory) {
	ctx := context.Background()
	t.Run("Breaker", func(t *testing.T) {
		f := newStore(t)
		s := f.Store
		base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
		for i, id := range []string{"evt_b1", "evt_b2", "evt_b3", "evt_b4"} {
			ev := event(id, "t", `{}`)
			ev.Created = base.Add(time.Duration(i) * time.Second)
			if _, err := s.Enqueue(ctx, ev, []string{"sick"}); err != nil {
				t.Fatal(err)
			}
		}
		// b1 and b2 fail once each and are due later (b2 before b1); b3 is leased.
		now := time.Now()
		got, err := s.Lease(ctx, "sick", 3, now, time.Minute)
		if err != nil || len(got) != 3 {
			t.Fatalf("Lease = %v, %v", ids(got), err)
		}
		byID := map[string]queue.Delivery{}
		for _, d := range got {
			byID[d.Event.ID] = d
			if d.Probe {
				t.Fatalf("a probe with the breaker closed: %+v", d)
			}
		}
		if err := s.Finish(ctx, []queue.Result{
			{Delivery: byID["evt_b1"], Outcome: queue.Retry, NextAt: now.Add(2 * time.Hour), Attempt: queue.Attempt{At: now, Status: 503}},
			{Delivery: byID["evt_b2"], Outcome: queue.Retry, NextAt: now.Add(time.Hour), Attempt: queue.Attempt{At: now, Status: 503}},
		}); err != nil {
			t.Fatal(err)
		}
		until := now.Add(30 * time.Second).Truncate(time.Millisecond)
		b := queue.Breaker{Since: now.UTC().Truncate(time.Millisecond), Until: until, Cooldown: 30 * time.Second, Reason: "5 consecutive failures"}
		if err := s.OpenBreaker(ctx, "sick", b); err != nil {
			t.Fatal(err)
		}
		if e := breakerOpen(t, s, "sick", now); !e.Until.Equal(until) {
			t.Fatalf("open until %v, want %v", e.Until, until)
		}
		st, err := s.Status(ctx, "sick")
		if err != nil || st.Breaker.State != queue.BreakerOpen || !st.Breaker.Until.Equal(until) || st.Breaker.Reason != b.Reason ||
			st.Breaker.Cooldown != b.Cooldown || st.Pending != 4 {
			t.Fatalf("Status = %+v, %v", st, err)
		}
		if st.Breaker.Reported(now) != queue.BreakerOpen || st.Breaker.Reported(until) != queue.BreakerHalfOpen {
			t.Fatalf("reported %s then %s", st.Breaker.Reported(now), st.Breaker.Reported(until))
		}
		// A restart keeps it.
		if f.Reopen != nil {
			s = f.Reopen()
			breakerOpen(t, s, "sick", now)
		}
		// Past the cooldown: one probe, the oldest due, to one caller.
		later := until.Add(time.Second)
		probe, err := s.Lease(ctx, "sick", 10, later, time.Minute)
		if err != nil || len(probe) != 1 || !probe[0].Probe {
			t.Fatalf("past the cooldown: Lease = %+v, %v; want one probe", probe, err)
		}
		// Opening moved b1 and b2 back to their creation: b1 is the oldest.
		if id := probe[0].Event.ID; id != "evt_b1" {
			t.Fatalf("the probe is %s, want evt_b1, the oldest event", id)
		}
		others := []queue.Store{s}
		if f.Beside != nil {
			others = append(others, f.Beside())
		}
		for _, o := range others {
			if e := breakerOpen(t, o, "sick", later); !e.Until.After(later) {
				t.Fatalf("while a probe is out: until %v", e.Until)
			}
		}
		// A failed probe: recorded, not counted; the breaker opens again.
		if err := s.Finish(ctx, []queue.Result{{Delivery: probe[0], Outcome: queue.Retry, NextAt: probe[0].NextAt, Uncounted: true,
			Attempt: queue.Attempt{At: later, Status: 503}}}); err != nil {
			t.Fatal(err)
		}
		g, err := s.Get(ctx, probe[0].ID)
		if err != nil || g.AttemptCount != probe[0].AttemptCount || len(g.Attempts) != probe[0].AttemptCount+1 {
			t.Fatalf("after an uncounted attempt: count %d (was %d), %d attempts kept, %v", g.AttemptCount, probe[0].AttemptCount, len(g.Attempts), err)
		}
		b.Until, b.Cooldown = later.Add(time.Minute), time.Minute
		if err := s.OpenBreaker(ctx, "sick", b); err != nil {
			t.Fatal(err)
		}
		breakerOpen(t, s, "sick", later)
		// The failed probe kept its place: it is the next probe too.
		later = later.Add(2 * time.Minute)
		probe, err = s.Lease(ctx, "sick", 10, later, time.Minute)
		if err != nil || len(probe) != 1 || !probe[0].Probe || probe[0].Event.ID != "evt_b1" {
			t.Fatalf("second probe: %+v, %v; want evt_b1 again", probe, err)
		}
		// It succeeds: closing rewinds what was leased when the breaker opened (b3, whose
		// lease has lapsed; on the embedded store the restart dropped it already).
		n, err := s.CloseBreaker(ctx, "sick", later, probe[0].ID)
		if err != nil || n > 1 {
			t.Fatalf("CloseBreaker = %d, %v; want at most b3 rewound", n, err)
		}
		if err := s.Finish(ctx, []queue.Result{{Delivery: probe[0], Outcome: queue.Done, Attempt: queue.Attempt{At: later, Status: 200}}}); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.Status(ctx, "sick"); st.Breaker.State != queue.BreakerClosed || !st.Breaker.Since.Equal(later.UTC().Truncate(time.Millisecond)) && !st.Breaker.Since.Equal(later.UTC()) {
			t.Fatalf("after close: %+v", st.Breaker)
		}
		rest, err := s.Lease(ctx, "sick", 10, time.Now().Add(3*time.Minute), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, d := range rest {
			order = append(order, d.Event.ID)
		}
		if fmt.Sprint(order) != "[evt_b2 evt_b3 evt_b4]" {
			t.Fatalf("after close the backlog leases %v; want creation order [evt_b2 evt_b3 evt_b4]", order)
		}
		// Closing a closed breaker rewinds nothing.
		if n, err := s.CloseBreaker(ctx, "sick", later, ""); err != nil || n != 0 {
			t.Fatalf("closing a closed breaker = %d, %v", n, err)
		}
	})

	// The breaker opens and closes while results are written (what the dispatcher does:
	// the attempt that crosses a threshold opens it while other results are on their
	// way): every call returns.
	t.Run("BreakerWhileFinishing", func(t *testing.T) {
		s := newStore(t).Store
		for i := range 200 {
			if _, err := s.Enqueue(ctx, event(fmt.Sprintf("evt_w%03d", i), "t", `{}`), []string{"busy"}); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now()
		got, err := s.Lease(ctx, "busy", 200, now, time.Minute)
		if err != nil || len(got) != 200 {
			t.Fatalf("Lease = %d, %v", len(got), err)
		}
		done := make(chan error, len(got)+40)
		for _, d := range got {
			go func() {
				done <- s.Finish(ctx, []queue.Result{{Delivery: d, Outcome: queue.Retry, NextAt: now.Add(time.Hour), Attempt: queue.Attempt{At: now, Status: 503}}})
			}()
		}
		for i := range 20 {
			go func() {
				done <- s.OpenBreaker(ctx, "busy", queue.Breaker{Since: now, Until: now.Add(time.Duration(i) * time.Second), Cooldown: time.Second})
			}()
			go func() { _, err := s.CloseBreaker(ctx, "busy", now, ""); done <- err }()
		}
		timeout := time.After(30 * time.Second)
		for range cap(done) {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-timeout:
				t.Fatal("OpenBreaker, CloseBreaker and Finish deadlocked")
			}
		}
	})

	t.Run("BreakerHeldByAnOperator", func(t *testing.T) {
		s := newStore(t).Store
		if _, err := s.Enqueue(ctx, event("evt_m", "t", `{}`), []string{"held"}); err != nil {
			t.Fatal(err)
		}
		if err := s.OpenBreaker(ctx, "held", queue.Breaker{Since: time.Now().UTC(), Manual: true, Reason: "opened by an operator"}); err != nil {
			t.Fatal(err)
		}
		if e := breakerOpen(t, s, "held", time.Now().Add(24*time.Hour)); !e.Until.IsZero() {
			t.Fatalf("an operator's open breaker allows a probe at %v", e.Until)
		}
		st, _ := s.Status(ctx, "held")
		if st.Breaker.Reported(time.Now().Add(24*time.Hour)) != queue.BreakerOpen || !st.Breaker.Manual {
			t.Fatalf("held by hand: %+v", st.Breaker)
		}
		if _, err := s.CloseBreaker(ctx, "held", time.Now(), ""); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Lease(ctx, "held", 10, time.Now(), time.Minute); err != nil || len(got) != 1 || got[0].Probe {
			t.Fatalf("after an operator's close: %v, %v", got, err)
		}
	})
}
