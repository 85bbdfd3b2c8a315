package sender

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
)

// countingQueue counts Lease calls.
type countingQueue struct {
	queue.Store
	leases atomic.Int64
}

func (c *countingQueue) Lease(ctx context.Context, ep string, max int, now time.Time, d time.Duration) ([]queue.Delivery, error) {
	c.leases.Add(1)
	return c.Store.Lease(ctx, ep, max, now, d)
}

func (c *countingQueue) Due(ctx context.Context, eps []string, now time.Time) ([]bool, error) {
	return c.Store.(queue.DueChecker).Due(ctx, eps, now)
}

func (c *countingQueue) Announce(eps []string) { c.Store.(queue.Notifier).Announce(eps) }
func (c *countingQueue) Listen(fn func(string)) (stop func()) {
	return c.Store.(queue.Notifier).Listen(fn)
}

// With a store that announces enqueues, idle endpoints neither poll often nor keep worker
// goroutines, yet a publish is delivered at once and a retry when it comes due.
func TestIdleEndpointsAreCheapAndStillPrompt(t *testing.T) {
	q := &countingQueue{Store: newQueue(t)}
	s := New(q, Options{StopGrace: time.Second}) // default poll: the slow safety net
	if s.d.opts.PollInterval != 5*time.Second {
		t.Fatalf("poll with a notifying store = %v", s.d.opts.PollInterval)
	}
	before := runtime.NumGoroutine()
	const idle = 300
	for i := range idle {
		if err := s.Registry().Add(&Endpoint{Name: fmt.Sprintf("idle-%d", i), URL: "http://127.0.0.1:9/", Events: []string{"never"}}); err != nil {
			t.Fatal(err)
		}
	}
	fails := atomic.Int64{}
	sk := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			fails.Add(1)
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(200)
	})
	if err := s.Registry().Add(&Endpoint{Name: "live", URL: sk.URL, AllowPrivate: true, Events: []string{"t"},
		Retry: []time.Duration{300 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Stop)
	time.Sleep(300 * time.Millisecond)
	if g := runtime.NumGoroutine() - before; g > idle+40 {
		t.Fatalf("%d idle endpoints hold %d goroutines; want about one each", idle, g)
	}
	if e, _ := s.Registry().Get("idle-0"); e.client != nil {
		t.Fatal("an idle endpoint made its HTTP client")
	}
	q.leases.Store(0)
	t0 := time.Now()
	if _, err := s.Publish(context.Background(), Message{Type: "t", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first attempt", func() bool { return sk.hits.Load() == 1 })
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("a publish waited %v for its first attempt: the wake-up did not work", d)
	}
	waitFor(t, "the retry", func() bool { return sk.hits.Load() == 2 })
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("a 300ms retry came after %v: the runner did not wake for it", d)
	}
	time.Sleep(time.Second)
	// Over ~1.5 s, 301 endpoints polling every 250ms would lease ~1,800 times; with the
	// dispatcher's batched sweep only the endpoint that had work leases.
	if n := q.leases.Load(); n > 30 {
		t.Fatalf("%d Lease calls in 1.5s from %d idle endpoints", n, idle)
	}
}

// A delivery queued without an announcement (by an instance whose notice was lost) is
// found by the dispatcher's sweep, one batched call for every endpoint.
func TestSweepFindsUnannouncedDeliveries(t *testing.T) {
	sk := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	q := &countingQueue{Store: newQueue(t)}
	s := New(q, Options{StopGrace: time.Second, PollInterval: 200 * time.Millisecond})
	for i := range 50 {
		_ = s.Registry().Add(&Endpoint{Name: fmt.Sprintf("idle-%d", i), URL: "http://127.0.0.1:9/", Events: []string{"never"}})
	}
	if err := s.Registry().Add(&Endpoint{Name: "live", URL: sk.URL, AllowPrivate: true}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Stop)
	time.Sleep(300 * time.Millisecond)
	q.leases.Store(0)
	if _, err := q.Store.Enqueue(context.Background(), queue.Event{ID: "evt_quiet", Type: "t", Body: []byte(`{}`)}, []string{"live"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	waitFor(t, "the unannounced delivery", func() bool { return sk.hits.Load() == 1 })
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("found after %v; the sweep runs every 200ms", d)
	}
	// Idle endpoints did not lease on their own meanwhile (their backstop is 60 polls).
	if n := q.leases.Load(); n > 10 {
		t.Fatalf("%d Lease calls: idle endpoints polled on their own", n)
	}
}
