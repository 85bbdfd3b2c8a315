// Package queuetest is the conformance suite every queue.Store must pass: the embedded
// and the Redis queue run these same tests.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
)

// Fixture is one store under test and the other handles on its data a case may ask for.
// Every conformance suite (dedupetest, ordertest, queuetest, substest, reqlogtest) is
// given the same shape: Run(t, func(t *testing.T) Fixture), called once per case.
type Fixture struct {
	// Store is a fresh, empty store (its own file, or its own key prefix); the factory
	// cleans it up when the test ends.
	Store queue.Store
	// Reopen closes Store (cleanly, where it has anything to close) and returns a new
	// store over the same data, as after a restart of the process.
	Reopen func() queue.Store
	// Beside returns a second store over the same data that runs beside Store, as another
	// Caddy instance does; nil for a store that one process holds (the embedded file).
	Beside func() queue.Store
}

// Factory returns a fixture for one case.
type Factory func(t *testing.T) Fixture

func event(id, typ, body string) queue.Event {
	return queue.Event{ID: id, Type: typ, Body: []byte(body), Created: time.Now().UTC()}
}

func ids(ds []queue.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	sort.Strings(out)
	return out
}

// Run runs the suite.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()
	lease := time.Minute
	runOrder(t, newStore)
	runVariants(t, newStore)
	runBreaker(t, newStore)

	t.Run("EnqueueLeaseFinish", func(t *testing.T) {
		s := newStore(t).Store
		ev := event("evt_1", "contact.created", `{"a":1}`)
		ev.Header = http.Header{"X-Source": {"ploomes"}}
		n, err := s.Enqueue(ctx, ev, []string{"a", "b"})
		if err != nil || n != 2 {
			t.Fatalf("Enqueue = %d, %v; want 2", n, err)
		}
		got, err := s.Lease(ctx, "a", 10, time.Now(), lease)
		if err != nil || len(got) != 1 {
			t.Fatalf("Lease = %v, %v; want one", got, err)
		}
		d := got[0]
		if d.ID != queue.DeliveryID("a", "evt_1") || d.Endpoint != "a" || string(d.Event.Body) != `{"a":1}` ||
			d.Event.Type != "contact.created" || d.Event.ID != "evt_1" || d.Event.Header.Get("X-Source") != "ploomes" || d.Lease == "" {
			t.Fatalf("leased delivery = %+v", d)
		}
		if again, _ := s.Lease(ctx, "a", 10, time.Now(), lease); len(again) != 0 {
			t.Fatalf("a leased delivery was leased again: %v", ids(again))
		}
		at := time.Now().UTC().Truncate(time.Millisecond)
		if err := s.Finish(ctx, []queue.Result{{Delivery: d, Outcome: queue.Done, Attempt: queue.Attempt{At: at, Status: 204, Latency: 3 * time.Millisecond}}}); err != nil {
			t.Fatal(err)
		}
		g, err := s.Get(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if g.State != queue.Delivered || g.AttemptCount != 1 || len(g.Attempts) != 1 || g.Attempts[0].Status != 204 ||
			g.Attempts[0].Latency != 3*time.Millisecond || !g.Attempts[0].At.Equal(at) {
			t.Fatalf("after Done: %+v", g)
		}
		if later, _ := s.Lease(ctx, "a", 10, time.Now().Add(2*lease), lease); len(later) != 0 {
			t.Fatalf("a delivered delivery was leased again")
		}
		st, err := s.Status(ctx, "a")
		if err != nil || st.Delivered != 1 || st.Pending != 0 || st.Dead != 0 || st.Last == nil || st.Last.Status != 204 {
			t.Fatalf("Status(a) = %+v, %v", st, err)
		}
		st, _ = s.Status(ctx, "b")
		if st.Pending != 1 || st.Last != nil {
			t.Fatalf("Status(b) = %+v", st)
		}
	})

	t.Run("EnqueueIsIdempotent", func(t *testing.T) {
		s := newStore(t).Store
		ev := event("evt_idem", "t", `{"x":true}`)
		if n, err := s.Enqueue(ctx, ev, []string{"a"}); err != nil || n != 1 {
			t.Fatalf("first Enqueue = %d, %v", n, err)
		}
		if n, err := s.Enqueue(ctx, ev, []string{"a", "b"}); err != nil || n != 1 {
			t.Fatalf("repeat Enqueue = %d, %v; want only b created", n, err)
		}
		if n, err := s.Enqueue(ctx, ev, []string{"a", "b"}); err != nil || n != 0 {
			t.Fatalf("third Enqueue = %d, %v; want 0", n, err)
		}
		other := event("evt_idem", "t", `{"x":false}`)
		if _, err := s.Enqueue(ctx, other, []string{"a"}); !errors.Is(err, queue.ErrConflict) {
			t.Fatalf("same id, other body: err = %v, want ErrConflict", err)
		}
		got, _ := s.Lease(ctx, "a", 10, time.Now(), lease)
		if len(got) != 1 {
			t.Fatalf("leased %d deliveries for a, want 1", len(got))
		}
	})

	t.Run("FinishManyOfSeveralEndpointsAtOnce", func(t *testing.T) {
		s := newStore(t).Store
		const many = 150 // more than a store may take in one call
		for i := range many {
			if _, err := s.Enqueue(ctx, event(fmt.Sprintf("evt_many_%03d", i), "t", `{}`), []string{"a"}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			if _, err := s.Enqueue(ctx, event(fmt.Sprintf("evt_few_%d", i), "t", `{}`), []string{"b"}); err != nil {
				t.Fatal(err)
			}
		}
		la, _ := s.Lease(ctx, "a", many, time.Now(), lease)
		lb, _ := s.Lease(ctx, "b", 3, time.Now(), lease)
		if len(la) != many || len(lb) != 3 {
			t.Fatalf("leased %d of a and %d of b", len(la), len(lb))
		}
		var res []queue.Result
		at := queue.Attempt{At: time.Now(), Status: 200}
		for i, d := range append(la, lb...) { // interleaved outcomes: one dead, two retries, the rest done
			r := queue.Result{Delivery: d, Outcome: queue.Done, Attempt: at}
			switch i {
			case 7:
				r.Outcome = queue.Kill
			case 70, many + 1:
				r.Outcome, r.NextAt = queue.Retry, time.Now().Add(time.Hour)
			}
			res = append(res, r)
		}
		stale := res[0]
		stale.Delivery.Lease = "not-the-lease" // a result whose lease was lost is not written
		if err := s.Finish(ctx, append([]queue.Result{stale}, res...)); err != nil {
			t.Fatal(err)
		}
		for ep, want := range map[string]queue.EndpointStatus{"a": {Pending: 1, Dead: 1, Delivered: many - 2}, "b": {Pending: 1, Delivered: 2}} {
			st, err := s.Status(ctx, ep)
			if err != nil || st.Pending != want.Pending || st.Dead != want.Dead || st.Delivered != want.Delivered {
				t.Fatalf("Status(%s) = %+v, %v; want pending %d, dead %d, delivered %d", ep, st, err, want.Pending, want.Dead, want.Delivered)
			}
		}
		for i, r := range res {
			d, err := s.Get(ctx, r.Delivery.ID)
			want := map[queue.Outcome]queue.State{queue.Done: queue.Delivered, queue.Retry: queue.Pending, queue.Kill: queue.Dead}[r.Outcome]
			if err != nil || d.State != want || d.AttemptCount != 1 || len(d.Attempts) != 1 {
				t.Fatalf("delivery %d: %+v, %v; want %s after one attempt", i, d, err, want)
			}
		}
	})

	t.Run("UniqueEventIsOneEvent", func(t *testing.T) {
		s := newStore(t).Store
		ev := event("evi_0123456789abcdef0123456789", "t", `{"x":true}`)
		ev.Unique = true
		if n, err := s.Enqueue(ctx, ev, []string{"a"}); err != nil || n != 1 {
			t.Fatalf("first Enqueue = %d, %v", n, err)
		}
		if n, err := s.Enqueue(ctx, ev, []string{"a"}); err != nil || n != 0 {
			t.Fatalf("repeat Enqueue = %d, %v; want 0", n, err)
		}
		got, _ := s.Lease(ctx, "a", 10, time.Now(), lease)
		if len(got) != 1 || string(got[0].Event.Body) != `{"x":true}` || got[0].Event.ID != ev.ID {
			t.Fatalf("leased %+v, want the one delivery", got)
		}
		// A publisher's event of the same id is checked against the bodies of the events
		// that recorded theirs: a unique event recorded none, so it is no conflict.
		other := event(ev.ID, "t", `{"x":false}`)
		if n, err := s.Enqueue(ctx, other, []string{"b"}); err != nil || n != 1 {
			t.Fatalf("a publisher's event of that id = %d, %v", n, err)
		}
	})

	t.Run("LapsedLeaseIsResumedAndStaleFinishIgnored", func(t *testing.T) {
		s := newStore(t).Store
		if _, err := s.Enqueue(ctx, event("evt_l", "t", `{}`), []string{"a"}); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		first, _ := s.Lease(ctx, "a", 1, now, lease)
		if len(first) != 1 {
			t.Fatal("nothing leased")
		}
		// The first worker "dies"; after the lease lapses a second worker takes over.
		second, _ := s.Lease(ctx, "a", 1, now.Add(lease+time.Second), lease)
		if len(second) != 1 || second[0].ID != first[0].ID || second[0].Lease == first[0].Lease {
			t.Fatalf("after the lease lapsed: %+v", second)
		}
		// The first worker comes back late: its result is ignored.
		if err := s.Finish(ctx, []queue.Result{{Delivery: first[0], Outcome: queue.Kill, Attempt: queue.Attempt{At: now, Status: 500}}}); err != nil {
			t.Fatal(err)
		}
		if g, _ := s.Get(ctx, first[0].ID); g.State != queue.Pending || g.AttemptCount != 0 {
			t.Fatalf("a stale Finish changed the delivery: %+v", g)
		}
		if err := s.Finish(ctx, []queue.Result{{Delivery: second[0], Outcome: queue.Done, Attempt: queue.Attempt{At: now, Status: 200}}}); err != nil {
			t.Fatal(err)
		}
		if g, _ := s.Get(ctx, first[0].ID); g.State != queue.Delivered {
			t.Fatalf("state = %s", g.State)
		}
	})

	t.Run("RetryIsScheduled", func(t *testing.T) {
		s := newStore(t).Store
		_, _ = s.Enqueue(ctx, event("evt_r", "t", `{}`), []string{"a"})
		now := time.Now()
		got, _ := s.Lease(ctx, "a", 1, now, lease)
		next := now.Add(10 * time.Minute)
		if err := s.Finish(ctx, []queue.Result{{Delivery: got[0], Outcome: queue.Retry, NextAt: next, Attempt: queue.Attempt{At: now, Status: 503, Response: `{"error":"db down"}`}}}); err != nil {
			t.Fatal(err)
		}
		if early, _ := s.Lease(ctx, "a", 1, now.Add(9*time.Minute), lease); len(early) != 0 {
			t.Fatal("a retry was leased before it was due")
		}
		g, _ := s.Get(ctx, got[0].ID)
		if g.State != queue.Pending || g.AttemptCount != 1 || g.Attempts[0].Status != 503 || g.Attempts[0].Response != `{"error":"db down"}` || g.NextAt.Sub(next).Abs() > time.Millisecond {
			t.Fatalf("after Retry: %+v", g)
		}
		// The status reports the earliest due, and the last attempt with its response.
		if st, err := s.Status(ctx, "a"); err != nil || st.OldestDue.Sub(next).Abs() > time.Millisecond || st.Last == nil || st.Last.Response != `{"error":"db down"}` {
			t.Fatalf("Status after Retry = %+v, %v", st, err)
		}
		due, _ := s.Lease(ctx, "a", 1, next.Add(time.Second), lease)
		if len(due) != 1 {
			t.Fatal("a due retry was not leased")
		}
	})

	t.Run("DeadLettersKeptAndRequeued", func(t *testing.T) {
		s := newStore(t).Store
		for i := 0; i < 3; i++ {
			_, _ = s.Enqueue(ctx, event(fmt.Sprintf("evt_d%d", i), "t", `{}`), []string{"a"})
		}
		now := time.Now()
		got, _ := s.Lease(ctx, "a", 10, now, lease)
		if len(got) != 3 {
			t.Fatalf("leased %d", len(got))
		}
		var rs []queue.Result
		for _, d := range got {
			rs = append(rs, queue.Result{Delivery: d, Outcome: queue.Kill, Attempt: queue.Attempt{At: now, Status: 500}})
		}
		if err := s.Finish(ctx, rs); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.Status(ctx, "a"); st.Dead != 3 || st.Pending != 0 {
			t.Fatalf("status = %+v", st)
		}
		dead, err := s.List(ctx, queue.Filter{Endpoints: []string{"a"}, State: queue.Dead})
		if err != nil || len(dead) != 3 || dead[0].Attempts[0].Status != 500 {
			t.Fatalf("List dead = %+v, %v", dead, err)
		}
		if later, _ := s.Lease(ctx, "a", 10, now.Add(24*time.Hour), lease); len(later) != 0 {
			t.Fatal("a dead delivery was leased")
		}
		if err := s.Requeue(ctx, got[0].ID); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.Status(ctx, "a"); st.Dead != 2 || st.Pending != 1 {
			t.Fatalf("after Requeue: %+v", st)
		}
		if n, err := s.RequeueDead(ctx, "a"); err != nil || n != 2 {
			t.Fatalf("RequeueDead = %d, %v", n, err)
		}
		again, _ := s.Lease(ctx, "a", 10, time.Now(), lease)
		if len(again) != 3 {
			t.Fatalf("after requeue leased %d, want 3", len(again))
		}
		// A delivered delivery requeued is pending again, and no longer counted delivered.
		var done []queue.Result
		for _, d := range again {
			done = append(done, queue.Result{Delivery: d, Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}})
		}
		if err := s.Finish(ctx, done); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.Status(ctx, "a"); st.Delivered != 3 || st.Pending != 0 {
			t.Fatalf("after delivering: %+v", st)
		}
		if err := s.Requeue(ctx, again[0].ID); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.Status(ctx, "a"); st.Delivered != 2 || st.Pending != 1 {
			t.Fatalf("after requeueing a delivered one: %+v", st)
		}
		if err := s.Requeue(ctx, "a~nosuchdelivery"); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("Requeue(unknown) = %v", err)
		}
		if _, err := s.Get(ctx, "nonsense"); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("Get(nonsense) = %v", err)
		}
	})

	t.Run("ReleaseMakesDueNow", func(t *testing.T) {
		s := newStore(t).Store
		_, _ = s.Enqueue(ctx, event("evt_rel", "t", `{}`), []string{"a"})
		got, _ := s.Lease(ctx, "a", 1, time.Now(), lease)
		if err := s.Release(ctx, got); err != nil {
			t.Fatal(err)
		}
		again, _ := s.Lease(ctx, "a", 1, time.Now(), lease)
		if len(again) != 1 {
			t.Fatal("a released delivery was not leasable")
		}
	})

	t.Run("ExtendKeepsTheLease", func(t *testing.T) {
		s := newStore(t).Store
		_, _ = s.Enqueue(ctx, event("evt_ext", "t", `{}`), []string{"a"})
		now := time.Now()
		got, _ := s.Lease(ctx, "a", 1, now, 10*time.Second)
		if err := s.Extend(ctx, got, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.Lease(ctx, "a", 1, now.Add(30*time.Second), 10*time.Second); len(again) != 0 {
			t.Fatal("an extended lease lapsed at its original end")
		}
		again, _ := s.Lease(ctx, "a", 1, now.Add(61*time.Second), 10*time.Second)
		if len(again) != 1 {
			t.Fatal("an extended lease never lapsed")
		}
		// The old holder's extension no longer applies.
		_ = s.Extend(ctx, got, now.Add(time.Hour))
		if third, _ := s.Lease(ctx, "a", 1, now.Add(72*time.Second), 10*time.Second); len(third) != 1 {
			t.Fatal("a stale Extend extended someone else's lease")
		}
	})

	t.Run("DeliveredExpireAfterRetention", func(t *testing.T) {
		s := newStore(t).Store
		s.SetRetention(100 * time.Millisecond)
		_, _ = s.Enqueue(ctx, event("evt_ret", "t", `{}`), []string{"a"})
		got, _ := s.Lease(ctx, "a", 1, time.Now(), lease)
		_ = s.Finish(ctx, []queue.Result{{Delivery: got[0], Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}}})
		if _, err := s.Get(ctx, got[0].ID); err != nil {
			t.Fatalf("gone before its retention: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
		if _, err := s.Get(ctx, got[0].ID); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("still there after its retention: %v", err)
		}
		if ds, _ := s.List(ctx, queue.Filter{Endpoints: []string{"a"}}); len(ds) != 0 {
			t.Fatalf("still listed after its retention: %+v", ds)
		}
		if st, _ := s.Status(ctx, "a"); st.Delivered != 1 {
			t.Fatalf("the delivered count forgot it: %+v", st)
		}
	})

	t.Run("EndpointsAreIndependent", func(t *testing.T) {
		s := newStore(t).Store
		for i := 0; i < 50; i++ {
			_, _ = s.Enqueue(ctx, event(fmt.Sprintf("evt_slow%d", i), "t", `{}`), []string{"slow"})
		}
		_, _ = s.Enqueue(ctx, event("evt_fast", "t", `{}`), []string{"fast"})
		if got, _ := s.Lease(ctx, "fast", 10, time.Now(), lease); len(got) != 1 {
			t.Fatalf("fast endpoint leased %d", len(got))
		}
	})

	t.Run("DisabledEndpointIsNotLeased", func(t *testing.T) {
		s := newStore(t).Store
		_, _ = s.Enqueue(ctx, event("evt_dis", "t", `{}`), []string{"a"})
		if err := s.SetDisabled(ctx, "a", true, "410 Gone"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Lease(ctx, "a", 1, time.Now(), lease); len(got) != 0 {
			t.Fatal("a disabled endpoint was leased")
		}
		if st, _ := s.Status(ctx, "a"); !st.Disabled || st.Reason != "410 Gone" || st.Pending != 1 {
			t.Fatalf("status = %+v", st)
		}
		_ = s.SetDisabled(ctx, "a", false, "")
		if got, _ := s.Lease(ctx, "a", 1, time.Now(), lease); len(got) != 1 {
			t.Fatal("an enabled endpoint was not leased")
		}
	})

	t.Run("ResendLatestPerType", func(t *testing.T) {
		s := newStore(t).Store
		_, _ = s.Enqueue(ctx, event("evt_x1", "x", `{"v":1}`), []string{"a"})
		time.Sleep(2 * time.Millisecond)
		_, _ = s.Enqueue(ctx, event("evt_x2", "x", `{"v":2}`), []string{"a"})
		_, _ = s.Enqueue(ctx, event("evt_y1", "y", `{"v":3}`), []string{"a"})
		got, _ := s.Lease(ctx, "a", 10, time.Now(), lease)
		var rs []queue.Result
		for _, d := range got {
			rs = append(rs, queue.Result{Delivery: d, Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}})
		}
		_ = s.Finish(ctx, rs)
		n, err := s.Resend(ctx, "a")
		if err != nil || n != 2 {
			t.Fatalf("Resend = %d, %v; want 2", n, err)
		}
		again, _ := s.Lease(ctx, "a", 10, time.Now(), lease)
		bodies := map[string]string{}
		for _, d := range again {
			bodies[d.Event.ID] = string(d.Event.Body)
		}
		if len(again) != 2 || bodies["evt_x2"] != `{"v":2}` || bodies["evt_y1"] != `{"v":3}` {
			t.Fatalf("resent: %v", bodies)
		}
	})

	t.Run("ListNewestFirstWithLimit", func(t *testing.T) {
		s := newStore(t).Store
		for i := 0; i < 5; i++ {
			ev := event(fmt.Sprintf("evt_list%d", i), "t", `{}`)
			ev.Created = time.Now().UTC().Add(time.Duration(i) * time.Second)
			_, _ = s.Enqueue(ctx, ev, []string{"a", "b"})
		}
		got, err := s.List(ctx, queue.Filter{Endpoints: []string{"a", "b"}, Limit: 3})
		if err != nil || len(got) != 3 {
			t.Fatalf("List = %d, %v", len(got), err)
		}
		if got[0].Event.ID != "evt_list4" || got[2].Event.ID != "evt_list3" {
			t.Fatalf("order: %s, %s, %s", got[0].Event.ID, got[1].Event.ID, got[2].Event.ID)
		}
		onlyA, _ := s.List(ctx, queue.Filter{Endpoints: []string{"a"}, State: queue.Pending, Limit: 100})
		if len(onlyA) != 5 {
			t.Fatalf("pending for a = %d", len(onlyA))
		}
		for _, d := range onlyA {
			if d.Endpoint != "a" {
				t.Fatalf("filter leaked endpoint %s", d.Endpoint)
			}
		}
	})

	t.Run("ConcurrentWorkersNeverShareALease", func(t *testing.T) {
		s := newStore(t).Store
		const n = 200
		for i := 0; i < n; i++ {
			_, _ = s.Enqueue(ctx, event(fmt.Sprintf("evt_c%d", i), "t", `{}`), []string{"a"})
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := s.Lease(ctx, "a", 7, time.Now(), lease)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					var rs []queue.Result
					mu.Lock()
					for _, d := range got {
						seen[d.ID]++
						rs = append(rs, queue.Result{Delivery: d, Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}})
					}
					mu.Unlock()
					if err := s.Finish(ctx, rs); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if len(seen) != n {
			t.Fatalf("%d distinct deliveries leased, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Fatalf("%s leased %d times", id, c)
			}
		}
		if st, _ := s.Status(ctx, "a"); st.Delivered != n || st.Pending != 0 {
			t.Fatalf("status = %+v", st)
		}
	})

	t.Run("DurableAcrossReopen", func(t *testing.T) {
		fx := newStore(t)
		s := fx.Store
		_, _ = s.Enqueue(ctx, event("evt_keep", "t", `{"k":1}`), []string{"a"})
		// Leased when the process "died": after reopening it is due again at once.
		if got, _ := s.Lease(ctx, "a", 1, time.Now(), lease); len(got) != 1 {
			t.Fatal("nothing leased")
		}
		_, _ = s.Enqueue(ctx, event("evt_dead", "t", `{}`), []string{"b"})
		got, _ := s.Lease(ctx, "b", 1, time.Now(), lease)
		_ = s.Finish(ctx, []queue.Result{{Delivery: got[0], Outcome: queue.Kill, Attempt: queue.Attempt{At: time.Now(), Status: 500}}})
		s = fx.Reopen()
		again, err := s.Lease(ctx, "a", 1, time.Now().Add(lease+time.Second), lease)
		if err != nil || len(again) != 1 || string(again[0].Event.Body) != `{"k":1}` {
			t.Fatalf("after reopen: %+v, %v", again, err)
		}
		if st, _ := s.Status(ctx, "b"); st.Dead != 1 {
			t.Fatalf("dead letter lost: %+v", st)
		}
	})

	t.Run("AbandonDeadLettersPending", func(t *testing.T) {
		s := newStore(t).Store
		for _, id := range []string{"evt_ab1", "evt_ab2", "evt_ab3"} {
			if _, err := s.Enqueue(ctx, event(id, "t", `{}`), []string{"a", "b"}); err != nil {
				t.Fatal(err)
			}
		}
		held, _ := s.Lease(ctx, "a", 1, time.Now(), lease)
		if len(held) != 1 {
			t.Fatal("nothing leased")
		}
		n, err := s.Abandon(ctx, "a", "subscription deleted")
		if err != nil || n != 3 {
			t.Fatalf("Abandon = %d, %v; want 3 (the leased one included)", n, err)
		}
		if st, _ := s.Status(ctx, "a"); st.Pending != 0 || st.Dead != 3 {
			t.Fatalf("after Abandon: %+v", st)
		}
		if got, _ := s.Lease(ctx, "a", 10, time.Now().Add(2*lease), lease); len(got) != 0 {
			t.Fatalf("abandoned deliveries leased: %v", ids(got))
		}
		// The lease held when it was abandoned is void: its late result is ignored.
		_ = s.Finish(ctx, []queue.Result{{Delivery: held[0], Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}}})
		d, err := s.Get(ctx, held[0].ID)
		if err != nil || d.State != queue.Dead || len(d.Attempts) != 1 || d.Attempts[0].Error != "subscription deleted" {
			t.Fatalf("abandoned delivery = %+v, %v", d, err)
		}
		if dead, _ := s.List(ctx, queue.Filter{Endpoints: []string{"a"}, State: queue.Dead}); len(dead) != 3 {
			t.Fatalf("dead list = %v", ids(dead))
		}
		if st, _ := s.Status(ctx, "b"); st.Pending != 3 || st.Dead != 0 {
			t.Fatalf("another endpoint was touched: %+v", st)
		}
		if n, _ := s.RequeueDead(ctx, "a"); n != 3 {
			t.Fatalf("RequeueDead after Abandon = %d", n)
		}
		if n, _ := s.Abandon(ctx, "nobody", "x"); n != 0 {
			t.Fatalf("Abandon(empty) = %d", n)
		}
	})

	// A deleted subscription's dead letters must stay listable without its id: the
	// endpoints Abandon was called for are named while they have dead letters.
	t.Run("AbandonedEndpointsAreNamed", func(t *testing.T) {
		s := newStore(t).Store
		for _, id := range []string{"evt_gone1", "evt_gone2"} {
			if _, err := s.Enqueue(ctx, event(id, "t", `{}`), []string{"gone", "kept", "empty"}); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.Abandoned(ctx); err != nil || len(got) != 0 {
			t.Fatalf("Abandoned before any Abandon = %v, %v", got, err)
		}
		if n, err := s.Abandon(ctx, "gone", "subscription deleted"); err != nil || n != 2 {
			t.Fatalf("Abandon = %d, %v", n, err)
		}
		if _, err := s.Abandon(ctx, "never-had-any", "subscription deleted"); err != nil {
			t.Fatal(err)
		}
		got, err := s.Abandoned(ctx)
		if err != nil || len(got) != 1 || got[0] != "gone" {
			t.Fatalf("Abandoned = %v, %v; want [gone] (an endpoint without dead letters is not named)", got, err)
		}
		dead, err := s.List(ctx, queue.Filter{Endpoints: got, State: queue.Dead})
		if err != nil || len(dead) != 2 {
			t.Fatalf("the abandoned endpoint's dead letters: %v, %v", ids(dead), err)
		}
		if n, _ := s.RequeueDead(ctx, "gone"); n != 2 {
			t.Fatalf("RequeueDead = %d", n)
		}
		if got, _ := s.Abandoned(ctx); len(got) != 0 {
			t.Fatalf("Abandoned after its dead letters were requeued = %v", got)
		}
	})

	t.Run("NotifierWakesListeners", func(t *testing.T) {
		s := newStore(t).Store
		nt, ok := s.(queue.Notifier)
		if !ok {
			t.Skip("store does not announce")
		}
		got := make(chan string, 10)
		stop := nt.Listen(func(e string) { got <- e })
		nt.Announce([]string{"a", "b"})
		for _, want := range []string{"a", "b"} {
			select {
			case e := <-got:
				if e != want {
					t.Fatalf("heard %q, want %q", e, want)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("no announcement of %q heard", want)
			}
		}
		stop()
		nt.Announce([]string{"c"})
		select {
		case e := <-got:
			t.Fatalf("heard %q after stop", e)
		case <-time.After(50 * time.Millisecond):
		}
	})

	t.Run("StatusesMatchStatus", func(t *testing.T) {
		s := newStore(t).Store
		_, _ = s.Enqueue(ctx, event("evt_st1", "t", `{}`), []string{"a", "b"})
		_, _ = s.Enqueue(ctx, event("evt_st2", "t", `{}`), []string{"a"})
		_ = s.SetDisabled(ctx, "b", true, "410")
		eps := []string{"b", "nobody", "a"}
		sts, err := s.Statuses(ctx, eps)
		if err != nil || len(sts) != 3 {
			t.Fatalf("Statuses = %v, %v", sts, err)
		}
		for i, ep := range eps {
			one, _ := s.Status(ctx, ep)
			if sts[i].Pending != one.Pending || sts[i].Disabled != one.Disabled || sts[i].Dead != one.Dead {
				t.Fatalf("Statuses[%s] = %+v, Status = %+v", ep, sts[i], one)
			}
		}
		if sts[2].Pending != 2 || !sts[0].Disabled || sts[1].Pending != 0 {
			t.Fatalf("Statuses = %+v", sts)
		}
		// OldestDue: the earliest pending delivery's due time (enqueued due now); none for
		// an endpoint without pending deliveries.
		if d := time.Since(sts[2].OldestDue); sts[2].OldestDue.IsZero() || d < 0 || d > time.Minute || !sts[1].OldestDue.IsZero() {
			t.Fatalf("OldestDue = %v (a), %v (nobody)", sts[2].OldestDue, sts[1].OldestDue)
		}
	})

	t.Run("DueReportsDueEndpoints", func(t *testing.T) {
		s := newStore(t).Store
		dc, ok := s.(queue.DueChecker)
		if !ok {
			t.Skip("store has no Due")
		}
		_, _ = s.Enqueue(ctx, event("evt_due1", "t", `{}`), []string{"now"})
		_, _ = s.Enqueue(ctx, event("evt_due2", "t", `{}`), []string{"later"})
		got, _ := s.Lease(ctx, "later", 1, time.Now(), lease)
		_ = s.Finish(ctx, []queue.Result{{Delivery: got[0], Outcome: queue.Retry, NextAt: time.Now().Add(time.Hour), Attempt: queue.Attempt{At: time.Now(), Status: 500}}})
		due, err := dc.Due(ctx, []string{"later", "none", "now"}, time.Now())
		if err != nil || len(due) != 3 || due[0] || due[1] || !due[2] {
			t.Fatalf("Due = %v, %v; want [false false true]", due, err)
		}
		if due, _ := dc.Due(ctx, []string{"later"}, time.Now().Add(2*time.Hour)); !due[0] {
			t.Fatal("a retry that came due is not reported")
		}
	})
}
