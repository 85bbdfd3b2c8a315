package sender

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
)

func newQueue(t testing.TB) queue.Store {
	h := boltdb.New(filepath.Join(t.TempDir(), "q.db"))
	s := boltqueue.New(h, boltqueue.Options{})
	t.Cleanup(func() { _ = h.Close() })
	return s
}

type recorded struct {
	header http.Header
	body   string
}

// sink is a real HTTP server whose answers a test scripts.
type sink struct {
	*httptest.Server
	mu   sync.Mutex
	got  []recorded
	hits atomic.Int64
}

func newSink(t *testing.T, answer func(n int64, w http.ResponseWriter, r *http.Request)) *sink {
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, recorded{r.Header.Clone(), string(b)})
		s.mu.Unlock()
		answer(s.hits.Add(1), w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// hangingSink never answers until the request is cancelled.
func hangingSink(t *testing.T) *sink {
	return newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
}

func (s *sink) received() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.got...)
}

func start(t *testing.T, q queue.Store, eps ...*Endpoint) *Dispatcher {
	for _, e := range eps {
		e.AllowPrivate = true
		if e.Retry == nil {
			e.Retry = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}
		}
	}
	d := NewDispatcher(q, registryOf(t, eps...), Options{PollInterval: 10 * time.Millisecond, StopGrace: time.Second})
	d.Start()
	t.Cleanup(d.Stop)
	return d
}

// registryOf is a registry of eps (prepared as they are added).
func registryOf(t *testing.T, eps ...*Endpoint) *Registry {
	t.Helper()
	reg := NewRegistry()
	for _, e := range eps {
		if err := reg.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func publish(t *testing.T, d *Dispatcher, id, typ, body string) {
	t.Helper()
	eps := d.reg.Match(typ)
	if _, err := d.store.(queue.Store).Enqueue(context.Background(), queue.Event{ID: id, Type: typ, Body: []byte(body)}, eps); err != nil {
		t.Fatal(err)
	}
	d.Notify(eps)
}

func state(t *testing.T, q queue.Store, id string) queue.Delivery {
	d, err := q.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFailsThenSucceeds(t *testing.T) {
	s := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(204)
	})
	q := newQueue(t)
	d := start(t, q, &Endpoint{Name: "erp", URL: s.URL, Header: http.Header{"X-Ploomes-Validation-Key": {"k"}}})
	publish(t, d, "evt_1", "contact.created", `{"id":1}`)
	id := queue.DeliveryID("erp", "evt_1")
	testwait.Until(t, 30*time.Second, func() bool { return state(t, q, id).State == queue.Delivered }, "delivered")
	dl := state(t, q, id)
	if dl.AttemptCount != 3 || dl.Attempts[0].Status != 503 || dl.Attempts[2].Status != 204 {
		t.Fatalf("attempts: %+v", dl.Attempts)
	}
	for _, got := range s.received() {
		if got.body != `{"id":1}` || got.header.Get("Content-Type") != "application/json" || got.header.Get("Webhook-Id") != "evt_1" ||
			got.header.Get("Webhook-Timestamp") == "" || got.header.Get("X-Ploomes-Validation-Key") != "k" {
			t.Fatalf("request: %+v", got)
		}
	}
}

func TestTimeoutIsRetriedThenDead(t *testing.T) {
	s := hangingSink(t)
	q := newQueue(t)
	d := start(t, q, &Endpoint{Name: "slow", URL: s.URL, ResponseTimeout: 100 * time.Millisecond, Retry: []time.Duration{10 * time.Millisecond}})
	publish(t, d, "evt_slow", "t", `{}`)
	id := queue.DeliveryID("slow", "evt_slow")
	testwait.Until(t, 30*time.Second, func() bool { return state(t, q, id).State == queue.Dead }, "dead")
	dl := state(t, q, id)
	if dl.AttemptCount != 2 || !strings.HasPrefix(dl.Attempts[0].Error, "timeout") || dl.Attempts[0].Latency < 100*time.Millisecond {
		t.Fatalf("attempts: %+v", dl.Attempts)
	}
}

// One endpoint that hangs must not delay another.
func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	slow := hangingSink(t)
	fast := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) {})
	q := newQueue(t)
	d := start(t, q, &Endpoint{Name: "slow", URL: slow.URL, Concurrency: 2, ResponseTimeout: 5 * time.Second},
		&Endpoint{Name: "fast", URL: fast.URL})
	for i := 0; i < 20; i++ {
		publish(t, d, "evt_"+strconv.Itoa(i), "t", `{}`)
	}
	testwait.Until(t, 30*time.Second, func() bool { return fast.hits.Load() == 20 }, "fast endpoint got all 20")
	if slow.hits.Load() > 2 {
		t.Fatalf("slow endpoint had %d attempts in flight, concurrency is 2", slow.hits.Load())
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	s := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(410) })
	q := &countingQueue{Store: newQueue(t)}
	d := start(t, q, &Endpoint{Name: "gone", URL: s.URL})
	publish(t, d, "evt_g", "t", `{}`)
	testwait.Until(t, 30*time.Second, func() bool {
		st, _ := q.Status(context.Background(), "gone")
		return st.Disabled
	}, "disabled")

	publish(t, d, "evt_g2", "t", `{}`)
	// The runner has had its chance: it leased (and got nothing, disabled) three times since.
	leases := q.leases.Load()
	testwait.Until(t, 30*time.Second, func() bool { return q.leases.Load() >= leases+3 }, "three leases after the second publish")
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("a disabled endpoint got %d requests, want 1", n)
	}
	st, _ := q.Status(context.Background(), "gone")
	if st.Pending != 2 || !strings.Contains(st.Reason, "410") {
		t.Fatalf("status: %+v", st)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	target := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) {})
	s := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	q := newQueue(t)
	d := start(t, q, &Endpoint{Name: "redir", URL: s.URL, Retry: []time.Duration{}})
	publish(t, d, "evt_r", "t", `{}`)
	id := queue.DeliveryID("redir", "evt_r")
	testwait.Until(t, 30*time.Second, func() bool { return state(t, q, id).State == queue.Dead }, "dead")
	if target.hits.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
	if st := state(t, q, id).Attempts[0].Status; st != 307 {
		t.Fatalf("status %d", st)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	var first time.Time
	var second time.Time
	s := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		second = time.Now()
	})
	q := newQueue(t)
	d := start(t, q, &Endpoint{Name: "ra", URL: s.URL})
	publish(t, d, "evt_ra", "t", `{}`)
	id := queue.DeliveryID("ra", "evt_ra")
	testwait.Until(t, 30*time.Second, func() bool { return state(t, q, id).State == queue.Delivered }, "delivered")
	if gap := second.Sub(first); gap < 900*time.Millisecond {
		t.Fatalf("retried after %v despite Retry-After: 1 (schedule says 20ms)", gap)
	}
	if got := parseRetryAfter("999999", time.Now()); got != 999999*time.Second {
		t.Fatalf("parse: %v", got)
	}
}

// verifyStandard is the sender tests' one Standard Webhooks check: the specification's
// reference library, independent of the signature package the sender signs with.
func verifyStandard(secret string, h http.Header, body string) bool {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return false
	}
	return wh.Verify([]byte(body), h) == nil
}

func TestSignedWithEverySecret(t *testing.T) {
	s := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) {})
	q := newQueue(t)
	oldSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("old-secret-0123456789abcdef"))
	newSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("new-secret-0123456789abcdef"))
	d := start(t, q, &Endpoint{Name: "signed", URL: s.URL, SigningSecrets: []string{newSecret, oldSecret}})
	publish(t, d, "evt_sig", "t", `{"a":"b"}`)
	testwait.Until(t, 30*time.Second, func() bool { return s.hits.Load() == 1 }, "one request")
	got := s.received()[0]
	ts, _ := strconv.ParseInt(got.header.Get("Webhook-Timestamp"), 10, 64)
	if time.Since(time.Unix(ts, 0)).Abs() > 5*time.Second {
		t.Fatalf("timestamp %d", ts)
	}
	if !verifyStandard(newSecret, got.header, got.body) || !verifyStandard(oldSecret, got.header, got.body) {
		t.Fatalf("signature %q does not verify with both secrets", got.header.Get("Webhook-Signature"))
	}
	if verifyStandard("whsec_"+base64.StdEncoding.EncodeToString([]byte("other")), got.header, got.body) {
		t.Fatal("verified with a wrong secret")
	}
}

func TestEventPatterns(t *testing.T) {
	e := &Endpoint{Name: "x", URL: "http://example.com", Events: []string{"contact.*", "deal.won"}}
	if err := e.Prepare(); err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]bool{"contact.created": true, "deal.won": true, "deal.lost": false, "contacts": false} {
		if e.Matches(typ) != want {
			t.Errorf("Matches(%q) = %v", typ, !want)
		}
	}
	for _, bad := range []*Endpoint{{Name: "bad name", URL: "http://x"}, {Name: "x", URL: "ftp://x"}, {Name: "x", URL: "http://x", Events: []string{"["}}} {
		if err := bad.Prepare(); err == nil {
			t.Errorf("%s %s %v was accepted", bad.Name, bad.URL, bad.Events)
		}
	}
}

func TestTestDiagnoses(t *testing.T) {
	ok := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { io.WriteString(w, "thanks") })
	bad := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	q := newQueue(t)
	d := start(t, q, &Endpoint{Name: "ok", URL: ok.URL}, &Endpoint{Name: "bad", URL: bad.URL},
		&Endpoint{Name: "refused", URL: closed.URL}, &Endpoint{Name: "dns", URL: "http://no-such-host.invalid/"})
	cases := map[string]string{"ok": "ok", "bad": "non-2xx", "refused": "refused", "dns": "DNS"}
	for name, want := range cases {
		r, err := d.Test(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(r.Diagnosis, want) {
			t.Errorf("%s: diagnosis %q, want %s…", name, r.Diagnosis, want)
		}
		if name == "ok" && (!r.OK || r.Answer != "thanks" || r.Status != 200) {
			t.Errorf("ok: %+v", r)
		}
	}
	d2 := NewDispatcher(q, registryOf(t, &Endpoint{Name: "private", URL: ok.URL}), Options{})
	r, _ := d2.Test(context.Background(), "private")
	if !strings.HasPrefix(r.Diagnosis, "blocked") || ok.hits.Load() != 1 {
		t.Errorf("private target: %+v (sink hits %d)", r, ok.hits.Load())
	}
}

// Stop returns in bounded time with an attempt hanging, and the delivery is due again.
func TestStopIsBoundedAndReleases(t *testing.T) {
	s := hangingSink(t)
	q := newQueue(t)
	d := start(t, q, &Endpoint{Name: "hang", URL: s.URL, ResponseTimeout: time.Minute})
	publish(t, d, "evt_h", "t", `{}`)
	testwait.Until(t, 30*time.Second, func() bool { return s.hits.Load() == 1 }, "the attempt to start")
	t0 := time.Now()
	d.Stop()
	if took := time.Since(t0); took > 3*time.Second {
		t.Fatalf("Stop took %v", took)
	}
	got, _ := q.Lease(context.Background(), "hang", 1, time.Now(), time.Minute)
	if len(got) != 1 || got[0].AttemptCount != 0 {
		t.Fatalf("after Stop the delivery is not due again unattempted: %+v", got)
	}
}

// countingWorker counts a dispatcher's Lease and Extend calls over a queue.
type countingWorker struct {
	queue.Store
	leases, extends atomic.Int64
}

func (c *countingWorker) Lease(ctx context.Context, endpoint string, max int, now time.Time, leaseFor time.Duration) ([]queue.Delivery, error) {
	c.leases.Add(1)
	return c.Store.Lease(ctx, endpoint, max, now, leaseFor)
}

func (c *countingWorker) Extend(ctx context.Context, leased []queue.Delivery, until time.Time) error {
	c.extends.Add(1)
	return c.Store.Extend(ctx, leased, until)
}

// An attempt that outlasts the lease keeps it by renewal: no second worker (here, a second
// dispatcher on the same queue) attempts the delivery meanwhile. The attempt is held at the
// sink until the first dispatcher has renewed its lease twice, the first lease's end has
// passed, and the second dispatcher has asked for deliveries since then: it had every
// chance to take the delivery.
func TestLeaseIsRenewedDuringLongAttempts(t *testing.T) {
	release := make(chan struct{})
	s := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { <-release })
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	q := newQueue(t)
	const leaseFor = 3 * time.Second
	mk := func(w queue.Worker) *Dispatcher {
		e := &Endpoint{Name: "long", URL: s.URL, AllowPrivate: true, ResponseTimeout: 5 * time.Minute}
		d := NewDispatcher(w, registryOf(t, e), Options{PollInterval: 10 * time.Millisecond, LeaseFor: leaseFor})
		d.Start()
		t.Cleanup(d.Stop)
		return d
	}
	first := &countingWorker{Store: q}
	d1 := mk(first)
	publish(t, d1, "evt_long", "t", `{}`)
	testwait.Until(t, 30*time.Second, func() bool { return s.hits.Load() == 1 }, "the attempt")
	firstEnd := time.Now().Add(leaseFor) // the first lease was taken before the attempt began
	second := &countingWorker{Store: q}
	mk(second)
	testwait.Until(t, 60*time.Second, func() bool { return first.extends.Load() >= 2 && time.Now().After(firstEnd) },
		"two renewals and the first lease's end")
	seen := second.leases.Load()
	testwait.Until(t, 30*time.Second, func() bool { return second.leases.Load() > seen+3 }, "the second dispatcher to ask for deliveries")
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("%d attempts while the first was held; the lease was not renewed", n)
	}
	free()
	id := queue.DeliveryID("long", "evt_long")
	testwait.Until(t, 30*time.Second, func() bool { return state(t, q, id).State == queue.Delivered }, "delivered")
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("%d attempts; the lease was not renewed", n)
	}
}
