package sender

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/clock"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/sender/queue"
)

// flakySink answers 503 while down, else 204, and records each delivered event id once
// per 2xx, in arrival order.
type flakySink struct {
	*sink
	down      atomic.Bool
	mu        sync.Mutex
	delivered []string
}

func newFlakySink(t *testing.T) *flakySink {
	f := &flakySink{}
	f.down.Store(true)
	f.sink = newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			w.WriteHeader(503)
			return
		}
		f.mu.Lock()
		f.delivered = append(f.delivered, r.Header.Get("Webhook-Id"))
		f.mu.Unlock()
		w.WriteHeader(204)
	})
	return f
}

// settle waits until the endpoint's runner holds no lease and sleeps with no wake
// waiting, twice 10ms apart, so nothing more happens until the clock moves.
func settle(t testing.TB, d *Dispatcher, clk *clock.Fake, name string) {
	t.Helper()
	idle := func() bool {
		d.mu.Lock()
		r := d.runners[name]
		d.mu.Unlock()
		if r == nil || r.inflight.Load() != 0 || !r.sleeping.Load() || len(r.wake) != 0 || clk.Pending() == 0 {
			return false
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.held) == 0
	}
	testwait.Until(t, 30*time.Second, func() bool {
		if !idle() {
			return false
		}
		time.Sleep(10 * time.Millisecond)
		return idle()
	}, "the runner to settle")
}

func breakerOf(t testing.TB, q queue.Store, name string) queue.Breaker {
	t.Helper()
	st, err := q.Status(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Breaker
}

// On a clock the test advances, with a sink that is down: five consecutive failures open
// the breaker; while it is open nothing is attempted (however long) and no retry counter
// burns; after the cooldown one probe goes, and its failure doubles the cooldown without
// counting against the probe's schedule; when the sink is back the next probe closes the
// breaker and every pending event arrives once, oldest first, nothing dead.
func TestBreakerOpensProbesAndDrainsOldestFirst(t *testing.T) {
	s := newFlakySink(t)
	q := newQueue(t)
	clk := clock.NewFake(time.Now().Add(time.Minute))
	e := &Endpoint{Name: "app", URL: s.URL, AllowPrivate: true, Concurrency: 1, Retry: []time.Duration{time.Minute, time.Minute}}
	d := NewDispatcher(q, registryOf(t, e), Options{PollInterval: time.Hour, Clock: clk, StopGrace: time.Second})
	d.Start()
	t.Cleanup(d.Stop)
	var want []string
	for i := range 20 {
		id := fmt.Sprintf("evt_%02d", i)
		want = append(want, id)
		publish(t, d, id, "t", `{}`)
	}
	settle(t, d, clk, "app")
	if n := s.hits.Load(); n != 5 {
		t.Fatalf("%d attempts before the breaker opened, want 5", n)
	}
	b := breakerOf(t, q, "app")
	if b.State != queue.BreakerOpen || b.Cooldown != DefaultBreakerCooldown || b.Reason == "" {
		t.Fatalf("after 5 failures: %+v", b)
	}
	// Open: nothing for the cooldown, even past the failed ones' retry times.
	clk.Advance(29 * time.Second)
	settle(t, d, clk, "app")
	if n := s.hits.Load(); n != 5 {
		t.Fatalf("%d attempts while open", n)
	}
	// The probe: one attempt, failed; open again for twice as long.
	clk.Advance(time.Second)
	testwait.Until(t, 10*time.Second, func() bool { return s.hits.Load() == 6 }, "the probe")
	settle(t, d, clk, "app")
	b = breakerOf(t, q, "app")
	if b.State != queue.BreakerOpen || b.Cooldown != 2*DefaultBreakerCooldown || s.hits.Load() != 6 {
		t.Fatalf("after a failed probe: %+v, %d attempts", b, s.hits.Load())
	}
	// Nothing burnt: the first five failed once each, no one twice, none dead.
	ds, err := q.List(context.Background(), queue.Filter{Endpoints: []string{"app"}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, dl := range ds {
		if dl.State != queue.Pending || dl.AttemptCount > 1 {
			t.Fatalf("%s: %s with %d counted attempts while the breaker held it", dl.ID, dl.State, dl.AttemptCount)
		}
	}
	// Back up: the next probe closes it; every event arrives once, oldest first.
	s.down.Store(false)
	clk.Advance(time.Minute)
	testwait.Until(t, 10*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.delivered) == 20
	}, "the backlog to drain")
	settle(t, d, clk, "app")
	s.mu.Lock()
	got := append([]string(nil), s.delivered...)
	s.mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want each once, oldest first %v", got, want)
	}
	if b := breakerOf(t, q, "app"); b.State != queue.BreakerClosed {
		t.Fatalf("after the probe succeeded: %+v", b)
	}
	st, _ := q.Status(context.Background(), "app")
	if st.Dead != 0 || st.Pending != 0 || st.Delivered != 20 {
		t.Fatalf("status %+v", st)
	}
}

// The ratio: 10 of 20 attempts failing in the window opens the breaker though failures
// never come five in a row; 4xx answers (the app refusing one event) never open it.
func TestBreakerRatioAndWhatCounts(t *testing.T) {
	var mode atomic.Int64 // 0: alternate 503/204, 1: always 400
	s := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if mode.Load() == 1 || n%2 == 0 {
			w.WriteHeader(map[bool]int{true: 400, false: 503}[mode.Load() == 1])
			return
		}
		w.WriteHeader(204)
	})
	q := newQueue(t)
	clk := clock.NewFake(time.Now().Add(time.Minute))
	e := &Endpoint{Name: "half", URL: s.URL, AllowPrivate: true, Concurrency: 1, Retry: []time.Duration{time.Hour}}
	d := NewDispatcher(q, registryOf(t, e), Options{PollInterval: time.Hour, Clock: clk, StopGrace: time.Second})
	d.Start()
	t.Cleanup(d.Stop)
	for i := range 30 {
		publish(t, d, fmt.Sprintf("evt_r%02d", i), "t", `{}`)
	}
	settle(t, d, clk, "half")
	if n := s.hits.Load(); n != 20 {
		t.Fatalf("%d attempts: the ratio should open the breaker at the 20th (10 failed)", n)
	}
	if b := breakerOf(t, q, "half"); b.State != queue.BreakerOpen || b.Reason != "10 of 20 attempts failed in 1m0s (last: HTTP 503)" {
		t.Fatalf("breaker %+v", b)
	}

	mode.Store(1)
	s2 := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(422) })
	q2 := newQueue(t)
	e2 := &Endpoint{Name: "picky", URL: s2.URL, AllowPrivate: true, Concurrency: 1, Retry: []time.Duration{time.Hour}}
	clk2 := clock.NewFake(time.Now().Add(time.Minute)) // settle reads its clock's timers: one dispatcher per clock
	d2 := NewDispatcher(q2, registryOf(t, e2), Options{PollInterval: time.Hour, Clock: clk2, StopGrace: time.Second})
	d2.Start()
	t.Cleanup(d2.Stop)
	for i := range 30 {
		publish(t, d2, fmt.Sprintf("evt_p%02d", i), "t", `{}`)
	}
	settle(t, d2, clk2, "picky")
	if n := s2.hits.Load(); n != 30 {
		time.Sleep(time.Second)
		st, _ := q2.Status(context.Background(), "picky")
		t.Fatalf("%d of 30 attempted: 422s opened the breaker (then %d, %+v)", n, s2.hits.Load(), st)
	}
	if b := breakerOf(t, q2, "picky"); b.State == queue.BreakerOpen {
		t.Fatalf("422s opened the breaker: %+v", b)
	}
}

// An operator holds the breaker open (no probe, however long) and closes it by hand.
func TestBreakerByHand(t *testing.T) {
	s := newFlakySink(t)
	s.down.Store(false)
	q := newQueue(t)
	clk := clock.NewFake(time.Now().Add(time.Minute))
	e := &Endpoint{Name: "held", URL: s.URL, AllowPrivate: true}
	d := NewDispatcher(q, registryOf(t, e), Options{PollInterval: time.Second, Clock: clk, StopGrace: time.Second})
	d.Start()
	t.Cleanup(d.Stop)
	if _, err := d.SetBreaker(context.Background(), "held", true); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		publish(t, d, fmt.Sprintf("evt_h%d", i), "t", `{}`)
	}
	for range 5 {
		clk.Advance(10 * time.Minute)
		settle(t, d, clk, "held")
	}
	if n := s.hits.Load(); n != 0 {
		t.Fatalf("%d attempts while held open by hand", n)
	}
	if b := breakerOf(t, q, "held"); !b.Manual || b.Reported(clk.Now()) != queue.BreakerOpen {
		t.Fatalf("held: %+v", b)
	}
	if _, err := d.SetBreaker(context.Background(), "held", false); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 10*time.Second, func() bool { return s.hits.Load() == 3 }, "the deliveries after the close")
	if _, err := d.SetBreaker(context.Background(), "nope", true); err == nil {
		t.Fatal("an unknown endpoint's breaker")
	}
}

// deadEndpointAttempts counts the attempts 1,000 pending events cost a dead endpoint over
// 10 minutes of the injected clock, with the default retry schedule.
func deadEndpointAttempts(b testing.TB, policy BreakerPolicy, span time.Duration) int64 {
	s := newSink(&testing.T{}, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	defer s.Close()
	q := newQueue(b)
	clk := clock.NewFake(time.Now().Add(time.Minute))
	e := &Endpoint{Name: "dead", URL: s.URL, AllowPrivate: true, Breaker: policy}
	d := NewDispatcher(q, registryOf(&testing.T{}, e), Options{PollInterval: time.Hour, Clock: clk, StopGrace: time.Second})
	evs := make([]queue.Event, 1000)
	for i := range evs {
		evs[i] = queue.Event{ID: queue.NewEventID(), Type: "t", Body: []byte(`{}`), Created: time.Now()}
	}
	if _, err := q.EnqueueBatch(context.Background(), "dead", evs); err != nil {
		b.Fatal(err)
	}
	d.Start()
	defer d.Stop()
	end := clk.Now().Add(span)
	for clk.Now().Before(end) { // in steps of a second: what is due in one is attempted before the next
		settle(b, d, clk, "dead")
		clk.Advance(time.Second)
	}
	settle(b, d, clk, "dead")
	return s.hits.Load()
}

// BenchmarkBreakerDeadEndpoint: what 1,000 pending events to a dead endpoint cost it in
// attempts over 10 minutes, with the breaker (the defaults) and without.
func BenchmarkBreakerDeadEndpoint(b *testing.B) {
	for range b.N {
		with := deadEndpointAttempts(b, BreakerPolicy{}, 10*time.Minute)
		without := deadEndpointAttempts(b, BreakerPolicy{Off: true}, 10*time.Minute)
		b.ReportMetric(float64(with), "attempts-with-breaker")
		b.ReportMetric(float64(without), "attempts-without")
		b.ReportMetric(float64(without)/float64(max(with, 1)), "x-fewer")
	}
}
