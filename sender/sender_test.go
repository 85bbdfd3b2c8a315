package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
)

// newSender is a running sender over a fresh embedded queue with eps registered.
func newSender(t *testing.T, eps ...*Endpoint) *Sender {
	t.Helper()
	s := New(newQueue(t), Options{PollInterval: 10 * time.Millisecond, StopGrace: time.Second})
	for _, e := range eps {
		e.AllowPrivate = true
		if err := s.Registry().Add(e); err != nil {
			t.Fatal(err)
		}
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Publish matches the registry, queues durably, wakes the workers, and keeps idempotency.
func TestPublish(t *testing.T) {
	sk := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	s := newSender(t, &Endpoint{Name: "deals", URL: sk.URL + "/deals", Events: []string{"deal.*"}},
		&Endpoint{Name: "all", URL: sk.URL + "/all"})
	ctx := context.Background()
	res, err := s.Publish(ctx, Message{Type: "deal.won", IdempotencyKey: "order-7", Body: []byte(`{"deal":7}`)})
	if err != nil || res.Endpoints != 2 || res.Replayed || !strings.HasPrefix(res.ID, "evk_") {
		t.Fatalf("publish: %+v %v", res, err)
	}
	testwait.Until(t, 30*time.Second, func() bool { return sk.hits.Load() == 2 }, "both deliveries")
	again, err := s.Publish(ctx, Message{Type: "deal.won", IdempotencyKey: "order-7", Body: []byte(`{"deal":7}`)})
	if err != nil || !again.Replayed || again.ID != res.ID {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	if _, err := s.Publish(ctx, Message{Type: "deal.won", IdempotencyKey: "order-7", Body: []byte(`{"deal":8}`)}); !errors.Is(err, queue.ErrConflict) {
		t.Fatalf("same key, other body: %v", err)
	}
	if res, err := s.Publish(ctx, Message{Type: "contact.created", Body: []byte(`{}`)}); err != nil || res.Endpoints != 1 {
		t.Fatalf("contact.created: %+v %v", res, err)
	}
	for _, bad := range []string{"", "a b", strings.Repeat("x", 201)} {
		if _, err := s.Publish(ctx, Message{Type: bad, Body: []byte(`{}`)}); !errors.Is(err, ErrBadType) {
			t.Errorf("type %q: %v", bad, err)
		}
	}
	if _, err := s.Publish(ctx, Message{Type: "t", IdempotencyKey: strings.Repeat("k", 256), Body: []byte(`{}`)}); !errors.Is(err, ErrKeyTooLong) {
		t.Errorf("long key: %v", err)
	}
	testwait.Until(t, 30*time.Second, func() bool { return sk.hits.Load() == 3 }, "the contact event")
}

// failingQueue is a queue whose writes fail, for the hand-off's outcomes.
type failingQueue struct {
	queue.Store
	err error
}

func (f failingQueue) Enqueue(context.Context, queue.Event, []string) (int, error) { return 0, f.err }

// The async hand-off queues an accepted inbound webhook without its credentials, answers
// 202 with the event id, and says so; a queue outage is its own outcome (503), never
// "queued".
func TestForwarderOutcomes(t *testing.T) {
	sk := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	s := newSender(t)
	f, err := s.Forwarder("ploomes", "ploomes", &Endpoint{URL: sk.URL + "/in"}, []string{"X-Ploomes-Validation-Key"})
	if err != nil {
		t.Fatal(err)
	}
	if same, _ := s.Forwarder("ploomes", "ploomes", &Endpoint{URL: sk.URL + "/in"}, nil); same.Endpoint() != f.Endpoint() {
		t.Fatalf("one route, one endpoint: %s, %s", same.Endpoint(), f.Endpoint())
	}
	// The name is the route's, whatever the target and options (a reload that changes them
	// keeps the queue), and routes sharing a scope have endpoints of their own.
	s2 := newSender(t)
	moved, err := s2.Forwarder("ploomes", "ploomes", &Endpoint{URL: sk.URL + "/elsewhere", Retry: []time.Duration{time.Hour}}, nil)
	if err != nil || moved.Endpoint() != f.Endpoint() {
		t.Fatalf("a moved target renamed the route's queue: %s, %s (%v)", moved.Endpoint(), f.Endpoint(), err)
	}
	if other, _ := s2.Forwarder("ploomes-b", "ploomes", &Endpoint{URL: sk.URL + "/in"}, nil); other.Endpoint() == f.Endpoint() {
		t.Fatalf("two routes share the endpoint %s", other.Endpoint())
	}
	if e, _ := s.Registry().Get(f.Endpoint()); !e.Inbound || s.Registry().Match("ploomes") != nil {
		t.Fatalf("an inbound target takes no published events")
	}
	in := Inbound{Source: "ploomes", EventID: "abc", Verified: true, Body: []byte(`{"a":1}`),
		Header: http.Header{"X-Ploomes-Validation-Key": {"secret"}, "Authorization": {"t"}, "X-Trace": {"1"}}}
	w := httptest.NewRecorder()
	fwd, err := f.Forward(context.Background(), w, in)
	var body map[string]string
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if fwd.Outcome != problem.ReasonQueued || err != nil || w.Code != 202 || body["id"] != "abc" ||
		!strings.HasPrefix(fwd.EventID, "evt_") || fwd.DeliveryID != queue.DeliveryID(f.Endpoint(), fwd.EventID) {
		t.Fatalf("forward: %+v %v %d %s", fwd, err, w.Code, w.Body)
	}
	testwait.Until(t, 30*time.Second, func() bool { return sk.hits.Load() == 1 }, "the delivery")
	got := sk.received()[0]
	if got.body != `{"a":1}` || got.header.Get("X-Ploomes-Validation-Key") != "" || got.header.Get("Authorization") != "" ||
		got.header.Get("X-Trace") != "1" || got.header.Get("X-Webhook-Event-Id") != "abc" || got.header.Get("X-Webhook-Verified") != "true" {
		t.Fatalf("delivered: %q %v", got.body, got.header)
	}

	for _, c := range []struct {
		err     error
		outcome Outcome
		status  int
	}{{queue.ErrUnavailable, problem.ReasonQueueUnavailable, 503}, {errors.New("disk full"), problem.ReasonQueueFailed, 500}} {
		down := &Sender{queue: failingQueue{s.queue, c.err}, reg: s.reg, d: s.d}
		fd := &Forwarder{s: down, endpoint: f.endpoint, strip: f.strip}
		w := httptest.NewRecorder()
		fwd, err := fd.Forward(context.Background(), w, in)
		if outcome := fwd.Outcome; outcome != c.outcome || err == nil || w.Code != c.status || w.Header().Get("Retry-After") == "" ||
			!strings.Contains(w.Body.String(), string(c.outcome)) {
			t.Errorf("queue error %v: %+v %v %d %s", c.err, fwd, err, w.Code, w.Body)
		}
	}
}

// uncertainQueue is the embedded queue declaring, as Redis does, that a failed write may
// have happened.
type uncertainQueue struct{ *boltqueue.Store }

func (uncertainQueue) UncertainWrites() bool { return true }

// On a queue whose failed write may have happened, a deduping route's hand-off is
// idempotent: the same event id and body forwarded twice (a sender's retry after a 503
// whose write happened) is one queued event; another body under the same id is another
// event; a route without dedupe queues every forward. On the embedded queue, whose failed
// write wrote nothing, every forward gets a fresh, time-ordered id (a retry can only follow
// a write that did not happen, and the route's dedupe answers a repeat).
func TestIdempotentForwardIsOneEvent(t *testing.T) {
	for _, uncertain := range []bool{true, false} {
		t.Run(fmt.Sprint("uncertain=", uncertain), func(t *testing.T) {
			var q queue.Store = newQueue(t)
			if uncertain {
				q = uncertainQueue{q.(*boltqueue.Store)}
			}
			s := New(q, Options{PollInterval: 10 * time.Millisecond, StopGrace: time.Second})
			f, err := s.Forwarder("r", "r", &Endpoint{URL: "http://127.0.0.1:1/in"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			forward := func(in Inbound) Forwarded {
				t.Helper()
				w := httptest.NewRecorder()
				fwd, err := f.Forward(context.Background(), w, in)
				if err != nil || w.Code != 202 {
					t.Fatalf("forward: %v %d %s", err, w.Code, w.Body)
				}
				return fwd
			}
			in := Inbound{Source: "webhook", EventID: "e1", Body: []byte(`{"a":1}`), DedupeWindow: time.Hour}
			a, b := forward(in), forward(in)
			want := 4 // one per distinct event
			if uncertain {
				if a.EventID != b.EventID || a.EventID != InboundEventID(f.Endpoint(), "e1", in.Body, time.Now(), time.Hour) || !strings.HasPrefix(a.EventID, "evi_") {
					t.Fatalf("two forwards of one webhook: %s, %s", a.EventID, b.EventID)
				}
				// A repeat a dedupe window later is a new event by the route's rule: queued
				// again, not merged into the one already delivered.
				short := in
				short.DedupeWindow = 20 * time.Millisecond
				c := forward(short)
				time.Sleep(25 * time.Millisecond)
				if d := forward(short); d.EventID == c.EventID {
					t.Fatalf("a repeat after the dedupe window is the queued event %s", c.EventID)
				}
				want = 6
			} else {
				if a.EventID == b.EventID || !strings.HasPrefix(a.EventID, "evt_") || !strings.HasPrefix(b.EventID, "evt_") ||
					a.DeliveryID != f.Endpoint()+"~"+a.EventID[4:] || b.DeliveryID[:len(a.DeliveryID)-14] < a.DeliveryID[:len(a.DeliveryID)-14] {
					t.Fatalf("two forwards on the embedded queue: %s %s, deliveries %s %s, want fresh time-ordered ids",
						a.EventID, b.EventID, a.DeliveryID, b.DeliveryID)
				}
				want = 5
			}
			in.Body = []byte(`{"a":2}`)
			if c := forward(in); c.EventID == a.EventID {
				t.Fatalf("another body under the same event id is the same queued event %s", c.EventID)
			}
			in.DedupeWindow = 0
			if d, e := forward(in), forward(in); d.EventID == e.EventID {
				t.Fatalf("without dedupe two forwards are one event %s", d.EventID)
			}
			ds, err := s.Queue().List(context.Background(), queue.Filter{Endpoints: []string{f.Endpoint()}})
			if err != nil || len(ds) != want {
				t.Fatalf("queued %d deliveries (%v), want %d", len(ds), err, want)
			}
		})
	}
}

// An endpoint added at run time gets workers at once; a removed one's workers stop and its
// deliveries wait in the queue.
func TestEndpointsAddedAndRemovedAtRunTime(t *testing.T) {
	sk := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	q := &countingQueue{Store: newQueue(t)}
	s := New(q, Options{PollInterval: 10 * time.Millisecond, StopGrace: time.Second})
	t.Cleanup(s.Stop)
	s.Start()
	// Another endpoint keeps the dispatcher's sweep running (it sweeps the endpoints that
	// have runners), so the test can see it run after "late" is removed.
	if err := s.Registry().Add(&Endpoint{Name: "other", URL: sk.URL + "/other", AllowPrivate: true, Events: []string{"never"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Registry().Add(&Endpoint{Name: "late", URL: sk.URL, AllowPrivate: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish(context.Background(), Message{Type: "t", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, func() bool { return sk.hits.Load() == 1 }, "a delivery to the endpoint added at run time")
	if !s.Registry().Remove("late") || s.Registry().Remove("late") {
		t.Fatal("Remove reports wrongly")
	}
	// Queued behind the removed endpoint's back: nobody delivers it.
	if _, err := s.Queue().Enqueue(context.Background(), queue.Event{ID: "evt_x", Type: "t", Body: []byte(`{}`)}, []string{"late"}); err != nil {
		t.Fatal(err)
	}
	// The dispatcher has had its chance: its sweep ran twice since (a runner's own poll is
	// as often), and never asked about the removed endpoint.
	q.mu.Lock()
	clear(q.swept)
	q.mu.Unlock()
	sweeps := q.dues.Load()
	testwait.Until(t, 30*time.Second, func() bool { return q.dues.Load() >= sweeps+2 }, "two sweeps after the removal")
	if q.sweptEver("late") {
		t.Fatal("the dispatcher still sweeps a removed endpoint")
	}
	if n := sk.hits.Load(); n != 1 {
		t.Fatalf("a removed endpoint still delivers: %d hits", n)
	}
	if st := state(t, s.Queue(), queue.DeliveryID("late", "evt_x")); st.State != queue.Pending {
		t.Fatalf("the removed endpoint's delivery: %s", st.State)
	}
	// Added again, it delivers what waited.
	if err := s.Registry().Add(&Endpoint{Name: "late", URL: sk.URL, AllowPrivate: true}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, func() bool { return sk.hits.Load() == 2 }, "the waiting delivery")
	if err := s.Registry().Add(&Endpoint{Name: "late", URL: sk.URL, AllowPrivate: true}); err == nil {
		t.Fatal("a name taken twice")
	}
}
