package queuetest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
)

// runVariants checks per-endpoint variants (the output of endpoints' transforms): each
// endpoint's delivery stores its own body, header and transform error, through Lease, Get,
// List, Resend and a restart; the idempotency check stays over the original body.
func runVariants(t *testing.T, newStore Factory) {
	ctx := context.Background()
	t.Run("VariantsPerEndpoint", func(t *testing.T) {
		f := newStore(t)
		s := f.Store
		ev := event("evt_var", "deal.won", `{"Id":1,"Name":"x"}`)
		ev.Header = http.Header{"X-Source": {"ploomes"}}
		ev.Variants = map[string]queue.Variant{
			"erp": {Body: []byte(`{"id":1}`), Header: http.Header{"X-Entity": {"Deals"}}},
			"bad": {TransformError: "transform_failed: no such key: New"},
		}
		if n, err := s.Enqueue(ctx, ev, []string{"plain", "erp", "bad"}); err != nil || n != 3 {
			t.Fatalf("Enqueue = %d, %v", n, err)
		}
		check := func(t *testing.T, d queue.Delivery) {
			t.Helper()
			switch d.Endpoint {
			case "plain":
				if string(d.Event.Body) != `{"Id":1,"Name":"x"}` || d.Event.Header.Get("X-Source") != "ploomes" || d.Event.TransformError != "" {
					t.Errorf("plain: %s %v %q", d.Event.Body, d.Event.Header, d.Event.TransformError)
				}
			case "erp":
				if string(d.Event.Body) != `{"id":1}` || d.Event.Header.Get("X-Entity") != "Deals" || d.Event.Header.Get("X-Source") != "" || d.Event.TransformError != "" {
					t.Errorf("erp: %s %v %q", d.Event.Body, d.Event.Header, d.Event.TransformError)
				}
			case "bad":
				if string(d.Event.Body) != `{"Id":1,"Name":"x"}` || d.Event.TransformError != "transform_failed: no such key: New" {
					t.Errorf("bad: %s %q", d.Event.Body, d.Event.TransformError)
				}
			}
			if d.Event.ID != "evt_var" || d.Event.Type != "deal.won" {
				t.Errorf("%s: event %s %s", d.Endpoint, d.Event.ID, d.Event.Type)
			}
		}
		for _, ep := range []string{"plain", "erp", "bad"} {
			d, err := s.Get(ctx, queue.DeliveryID(ep, "evt_var"))
			if err != nil {
				t.Fatal(err)
			}
			check(t, d)
			ls, err := s.List(ctx, queue.Filter{Endpoints: []string{ep}})
			if err != nil || len(ls) != 1 {
				t.Fatalf("List(%s) = %d, %v", ep, len(ls), err)
			}
			check(t, ls[0])
		}
		// The idempotency check is over the original body: a repeat whose variant differs
		// (a transform changed by a reload) is no conflict and queues nothing.
		again := ev
		again.Variants = map[string]queue.Variant{"erp": {Body: []byte(`{"id":1,"v":2}`)}}
		if n, err := s.Enqueue(ctx, again, []string{"plain", "erp", "bad"}); err != nil || n != 0 {
			t.Fatalf("repeat with another variant = %d, %v", n, err)
		}
		other := event("evt_var", "deal.won", `{"Id":2}`)
		other.Variants = map[string]queue.Variant{"erp": {Body: []byte(`{"Id":1,"Name":"x"}`)}}
		if _, err := s.Enqueue(ctx, other, []string{"erp"}); !errors.Is(err, queue.ErrConflict) {
			t.Fatalf("another original body whose variant is the first body: %v, want ErrConflict", err)
		}
		if f.Reopen != nil {
			s = f.Reopen()
		}
		for _, ep := range []string{"plain", "erp", "bad"} {
			got, err := s.Lease(ctx, ep, 10, time.Now(), time.Minute)
			if err != nil || len(got) != 1 {
				t.Fatalf("Lease(%s) after reopening = %d, %v", ep, len(got), err)
			}
			check(t, got[0])
			if err := s.Finish(ctx, []queue.Result{{Delivery: got[0], Attempt: queue.Attempt{At: time.Now(), Status: 200}, Outcome: queue.Done}}); err != nil {
				t.Fatal(err)
			}
		}
		// Resend queues the latest event of the type as each endpoint stored it.
		for _, ep := range []string{"erp", "bad"} {
			if n, err := s.Resend(ctx, ep); err != nil || n != 1 {
				t.Fatalf("Resend(%s) = %d, %v", ep, n, err)
			}
			got, err := s.Lease(ctx, ep, 10, time.Now(), time.Minute)
			if err != nil || len(got) != 1 {
				t.Fatalf("Lease(%s) after Resend = %d, %v", ep, len(got), err)
			}
			check(t, got[0])
		}
	})
	// A delivery held by a failed transform that succeeds at an attempt stores what was
	// sent: its body and header replace the original, and the error is gone (a restart
	// keeps it); an attempt that fails to transform again changes nothing.
	t.Run("ReshapedAtAnAttempt", func(t *testing.T) {
		f := newStore(t)
		s := f.Store
		ev := event("evt_rs", "deal.won", `{"Id":1}`)
		ev.Variants = map[string]queue.Variant{"held": {TransformError: "transform_failed: no such key: New"}}
		if _, err := s.Enqueue(ctx, ev, []string{"held"}); err != nil {
			t.Fatal(err)
		}
		id := queue.DeliveryID("held", "evt_rs")
		lease := func() queue.Delivery {
			t.Helper()
			got, err := s.Lease(ctx, "held", 1, time.Now().Add(time.Hour), time.Minute)
			if err != nil || len(got) != 1 {
				t.Fatalf("Lease = %d, %v", len(got), err)
			}
			return got[0]
		}
		if err := s.Finish(ctx, []queue.Result{{Delivery: lease(), Attempt: queue.Attempt{At: time.Now(), Error: "transform_failed"}, Outcome: queue.Retry, NextAt: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		if d, err := s.Get(ctx, id); err != nil || d.Event.TransformError == "" || string(d.Event.Body) != `{"Id":1}` {
			t.Fatalf("after a failed retransform: %s %q, %v", d.Event.Body, d.Event.TransformError, err)
		}
		if err := s.Finish(ctx, []queue.Result{{Delivery: lease(), Attempt: queue.Attempt{At: time.Now(), Status: 503}, Outcome: queue.Retry, NextAt: time.Now(),
			Reshaped: &queue.Variant{Body: []byte(`{"deal":1}`), Header: http.Header{"X-Entity": {"Deals"}}}}}); err != nil {
			t.Fatal(err)
		}
		if f.Reopen != nil {
			s = f.Reopen()
		}
		d, err := s.Get(ctx, id)
		if err != nil || d.Event.TransformError != "" || string(d.Event.Body) != `{"deal":1}` || d.Event.Header.Get("X-Entity") != "Deals" {
			t.Fatalf("after the transform ran at an attempt: %s %v %q, %v", d.Event.Body, d.Event.Header, d.Event.TransformError, err)
		}
		if got := lease(); got.Event.TransformError != "" || string(got.Event.Body) != `{"deal":1}` {
			t.Fatalf("leased again: %s %q", got.Event.Body, got.Event.TransformError)
		}
	})
}
