package sender

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/sender/queue"
)

// countingQueue counts Lease calls and the dispatcher's sweeps (Due calls), and remembers
// every endpoint a sweep asked about.
type countingQueue struct {
	queue.Store
	leases atomic.Int64
	dues   atomic.Int64
	mu     sync.Mutex
	swept  map[string]bool
}

// sweptEver reports whether a sweep asked about endpoint.
func (c *countingQueue) sweptEver(endpoint string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.swept[endpoint]
}

func (c *countingQueue) Lease(ctx context.Context, ep string, max int, now time.Time, d time.Duration) ([]queue.Delivery, error) {
	c.leases.Add(1)
	return c.Store.Lease(ctx, ep, max, now, d)
}

func (c *countingQueue) Due(ctx context.Context, eps []string, now time.Time) ([]bool, error) {
	c.mu.Lock()
	if c.swept == nil {
		c.swept = map[string]bool{}
	}
	for _, e := range eps {
		c.swept[e] = true
	}
	c.mu.Unlock()
	defer c.dues.Add(1)
	return c.Store.(queue.DueChecker).Due(ctx, eps, now)
}

func (c *countingQueue) Announce(eps []string) { c.Store.(queue.Notifier).Announce(eps) }
func (c *countingQueue) Listen(fn func(string)) (stop func()) {
	return c.Store.(queue.Notifier).Listen(fn)
}

// With a store that announces enqueues, idle endpoints neither poll often nor keep worker
// goroutines, yet a publish is delivered at once and a retry when it comes due.
//
// No wall-clock bound decides it: the sender under test polls once an hour, so a delivery
// (and a retry) that arrives at all was woken for, not found by a poll.
func TestIdleEndpointsAreCheapAndStillPrompt(t *testing.T) {
	q := &countingQueue{Store: newQueue(t)}
	if s := New(q, Options{StopGrace: time.Second}); s.d.opts.PollInterval != 5*time.Second {
		t.Fatalf("poll with a notifying store = %v", s.d.opts.PollInterval)
	}
	s := New(q, Options{StopGrace: time.Second, PollInterval: time.Hour})
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
	// Every endpoint looks at the queue once as it starts; the idle ones find nothing, and
	// their workers go.
	testwait.Until(t, 30*time.Second, func() bool { return q.leases.Load() >= idle+1 }, "every endpoint's first lease")
	var g int
	if !testwait.Poll(30*time.Second, func() bool { g = runtime.NumGoroutine() - before; return g <= idle+40 }) {
		t.Fatalf("%d idle endpoints hold %d goroutines; want about one each", idle, g)
	}
	if e, _ := s.Registry().Get("idle-0"); e.client != nil {
		t.Fatal("an idle endpoint made its HTTP client")
	}
	q.leases.Store(0)
	if _, err := s.Publish(context.Background(), Message{Type: "t", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, func() bool { return sk.hits.Load() == 1 }, "the first attempt (only a wake-up can bring it: the poll is hourly)")
	testwait.Until(t, 30*time.Second, func() bool { return sk.hits.Load() == 2 }, "the retry (only the runner's own timer can bring it)")
	// More work for the live endpoint: each publish's wake-up must lease for it alone.
	for i := range 3 {
		if _, err := s.Publish(context.Background(), Message{Type: "t", Body: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		testwait.Until(t, 30*time.Second, func() bool { return sk.hits.Load() == int64(3+i) }, "a later delivery")
	}
	// 301 endpoints polling, or all woken by every publish, would lease hundreds of times;
	// only the endpoint that had work leases.
	if n := q.leases.Load(); n > 30 {
		t.Fatalf("%d Lease calls for 5 attempts with %d idle endpoints", n, idle)
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
	// Every endpoint's first lease (as it starts) and the first sweep are behind us.
	testwait.Until(t, 30*time.Second, func() bool { return q.leases.Load() >= 51 && q.dues.Load() >= 1 }, "every endpoint's first lease and the first sweep")
	q.leases.Store(0)
	if _, err := q.Store.Enqueue(context.Background(), queue.Event{ID: "evt_quiet", Type: "t", Body: []byte(`{}`)}, []string{"live"}); err != nil {
		t.Fatal(err)
	}
	// Nothing announced it: only a sweep (or a runner's own poll, after 60 polls) finds it.
	sweeps := q.dues.Load()
	testwait.Until(t, 30*time.Second, func() bool { return sk.hits.Load() == 1 }, "the unannounced delivery")
	if q.dues.Load() == sweeps {
		t.Fatal("the unannounced delivery was found without a sweep")
	}
	// Idle endpoints did not lease on their own meanwhile (their backstop is 60 polls).
	if n := q.leases.Load(); n > 10 {
		t.Fatalf("%d Lease calls: idle endpoints polled on their own", n)
	}
}
