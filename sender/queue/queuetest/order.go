package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
)

// leaseOrder leases everything due for endpoint and returns the delivery ids in the order
// Lease gave them.
func leaseOrder(t *testing.T, s queue.Store, endpoint string) []queue.Delivery {
	t.Helper()
	got, err := s.Lease(context.Background(), endpoint, 10000, time.Now().Add(time.Second), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func inOrder(ds []queue.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Event.ID
	}
	return out
}

// runOrder holds the cases about order: what was queued first is leased first, whether
// it was queued alone (several in one millisecond), in a batch, or requeued.
func runOrder(t *testing.T, newStore Factory) {
	ctx := context.Background()

	t.Run("LeasedInEnqueueOrderWithinAMillisecond", func(t *testing.T) {
		s := newStore(t).Store
		var want []string
		for i := range 40 {
			ev := event(queue.NewEventID(), "t", fmt.Sprintf(`{"i":%d}`, i))
			if _, err := s.Enqueue(ctx, ev, []string{"a"}); err != nil {
				t.Fatal(err)
			}
			want = append(want, ev.ID)
		}
		if got := inOrder(leaseOrder(t, s, "a")); !slices.Equal(got, want) {
			t.Fatalf("leased out of enqueue order:\n got %v\nwant %v", got, want)
		}
	})

	t.Run("ReleasedKeepTheirPlace", func(t *testing.T) {
		// A feed answer that was cut off gives its page back: it must be served before
		// what was published after it.
		s := newStore(t).Store
		var want []string
		for i := range 6 {
			ev := event(queue.NewEventID(), "t", fmt.Sprintf(`{"i":%d}`, i))
			if _, err := s.Enqueue(ctx, ev, []string{"a"}); err != nil {
				t.Fatal(err)
			}
			want = append(want, ev.ID)
		}
		first, err := s.Lease(ctx, "a", 3, time.Now(), time.Minute)
		if err != nil || len(first) != 3 {
			t.Fatalf("Lease = %d, %v", len(first), err)
		}
		time.Sleep(2 * time.Millisecond) // the release happens later than every enqueue
		if err := s.Release(ctx, first); err != nil {
			t.Fatal(err)
		}
		if got := inOrder(leaseOrder(t, s, "a")); !slices.Equal(got, want) {
			t.Fatalf("after a release:\n got %v\nwant %v", got, want)
		}
	})

	t.Run("RequeuedBeforeWhatCameAfter", func(t *testing.T) {
		// Version 1 of a record was served; version 2 is pending; version 1 is requeued
		// (a failed import): it must come back before version 2, or the caller ends on
		// the old version. An outside review found it served after.
		s := newStore(t).Store
		v1 := event(queue.NewEventID(), "t", `{"v":1}`)
		if _, err := s.Enqueue(ctx, v1, []string{"a"}); err != nil {
			t.Fatal(err)
		}
		got := leaseOrder(t, s, "a")
		if err := s.Finish(ctx, []queue.Result{{Delivery: got[0], Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // v2 is created later than v1
		v2 := event(queue.NewEventID(), "t", `{"v":2}`)
		if _, err := s.Enqueue(ctx, v2, []string{"a"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Requeue(ctx, got[0].ID); err != nil {
			t.Fatal(err)
		}
		if got := inOrder(leaseOrder(t, s, "a")); !slices.Equal(got, []string{v1.ID, v2.ID}) {
			t.Fatalf("after Requeue of v1 with v2 pending: %v, want [v1 v2]", got)
		}
	})

	t.Run("BatchEnqueuedInOrderOnce", func(t *testing.T) {
		s := newStore(t).Store
		now := time.Now().UTC()
		var evs []queue.Event
		for i := range 300 {
			// Idempotent ids: their order is not their ids' byte order.
			evs = append(evs, queue.Event{ID: queue.IdempotentEventID(fmt.Sprint("k#", i)), Type: "feed.x",
				Body: []byte(fmt.Sprintf(`{"i":%d}`, i)), Created: now.Add(time.Duration(i) * time.Microsecond)})
		}
		if n, err := s.EnqueueBatch(ctx, "feed.x", evs); err != nil || n != 300 {
			t.Fatalf("EnqueueBatch = %d, %v", n, err)
		}
		if n, err := s.EnqueueBatch(ctx, "feed.x", evs); err != nil || n != 0 {
			t.Fatalf("EnqueueBatch again = %d, %v; want 0 (idempotent)", n, err)
		}
		bad := slices.Clone(evs[:2])
		bad[1].Body = []byte(`{"i":"other"}`)
		if _, err := s.EnqueueBatch(ctx, "feed.x", bad); !errors.Is(err, queue.ErrConflict) {
			t.Fatalf("a batch reusing an id with another body: %v, want ErrConflict", err)
		}
		want := make([]string, len(evs))
		for i, ev := range evs {
			want[i] = ev.ID
		}
		got := leaseOrder(t, s, "feed.x")
		if !slices.Equal(inOrder(got), want) {
			t.Fatalf("a batch leased out of order (first %v)", inOrder(got)[:5])
		}
		if st, _ := s.Status(ctx, "feed.x"); st.Pending != 300 {
			t.Fatalf("pending = %d, want 300", st.Pending)
		}
		if string(got[7].Event.Body) != `{"i":7}` || got[7].Event.Type != "feed.x" || got[7].Created.Sub(evs[7].Created).Abs() >= time.Microsecond {
			t.Fatalf("delivery 7 = %+v", got[7])
		}
	})

	t.Run("RequeueBatchInCreationOrder", func(t *testing.T) {
		s := newStore(t).Store
		now := time.Now().UTC()
		var evs []queue.Event
		for i := range 200 {
			evs = append(evs, queue.Event{ID: queue.NewEventID(), Type: "feed.x", Body: []byte(fmt.Sprintf(`{"i":%d}`, i)),
				Created: now.Add(time.Duration(i) * time.Microsecond)})
		}
		if _, err := s.EnqueueBatch(ctx, "feed.x", evs); err != nil {
			t.Fatal(err)
		}
		finishAll := func(ds []queue.Delivery) {
			t.Helper()
			rs := make([]queue.Result, len(ds))
			for i, d := range ds {
				rs[i] = queue.Result{Delivery: d, Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}}
			}
			if err := s.Finish(ctx, rs); err != nil {
				t.Fatal(err)
			}
		}
		first := leaseOrder(t, s, "feed.x")
		finishAll(first)
		// The list, newest first, reversed: the publish order.
		listed, err := s.List(ctx, queue.Filter{Endpoints: []string{"feed.x"}, State: queue.Delivered, Limit: 1000})
		if err != nil || len(listed) != 200 {
			t.Fatalf("List = %d, %v", len(listed), err)
		}
		slices.Reverse(listed)
		if !slices.Equal(inOrder(listed), inOrder(first)) {
			t.Fatalf("List (reversed) is not the enqueue order")
		}
		ids := make([]string, len(listed))
		for i, d := range listed {
			ids[i] = d.ID
		}
		if n, err := s.RequeueBatch(ctx, append(ids, "feed.x~nosuchdelivery")); err != nil || n != 200 {
			t.Fatalf("RequeueBatch = %d, %v", n, err)
		}
		again := leaseOrder(t, s, "feed.x")
		if !slices.Equal(inOrder(again), inOrder(first)) {
			t.Fatalf("requeued out of the order given (first %v, want %v)", inOrder(again)[:4], inOrder(first)[:4])
		}
		// Whatever the order asked: requeued deliveries are due at their creation, so
		// they come back in creation order.
		finishAll(again)
		slices.Reverse(ids)
		if n, err := s.RequeueBatch(ctx, ids); err != nil || n != 200 {
			t.Fatalf("RequeueBatch reversed = %d, %v", n, err)
		}
		if got := inOrder(leaseOrder(t, s, "feed.x")); !slices.Equal(got, inOrder(first)) {
			t.Fatalf("requeued reversed: not in creation order")
		}
		if n, err := s.RequeueBatch(ctx, ids[:3]); err != nil || n != 0 {
			t.Fatalf("RequeueBatch of pending deliveries = %d, %v; want 0", n, err)
		}
	})
}
