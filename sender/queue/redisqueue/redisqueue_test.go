package redisqueue_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/queuetest"
	"github.com/hookgate/hookgate/sender/queue/redisqueue"
	"github.com/redis/go-redis/v9"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	queuetest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		return srv.Client(t)
	}))
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	queuetest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		return cl.Client(t)
	}))
}

// fixtures makes each case's stores on clients from connect, under a prefix of the case's
// own: a reopened store and one beside it are on new clients, as in another process.
func fixtures(connect func(t *testing.T) redis.UniversalClient) queuetest.Factory {
	return func(t *testing.T) queuetest.Fixture {
		prefix := "hg-test:" + t.Name() + ":"
		again := func() queue.Store {
			s := redisqueue.New(connect(t), prefix, redisqueue.Options{})
			t.Cleanup(s.Close)
			return s
		}
		return queuetest.Fixture{Store: again(), Reopen: again, Beside: again}
	}
}

func TestStoppedServerIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t, redis.Options{MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	s := redisqueue.New(c, "hg:", redisqueue.Options{})
	ctx := context.Background()
	srv.Stop()
	_, err := s.Enqueue(ctx, queue.Event{ID: "evt_x", Type: "t", Body: []byte(`{}`)}, []string{"a"})
	if !errors.Is(err, queue.ErrUnavailable) {
		t.Fatalf("enqueue with Redis stopped: err = %v, want ErrUnavailable", err)
	}
	srv.Restart()
	testwait.UntilNil(t, 30*time.Second, func() error {
		_, err := s.Enqueue(ctx, queue.Event{ID: "evt_x", Type: "t", Body: []byte(`{}`)}, []string{"a"})
		return err
	}, "an enqueue after the restart")
}

// Announcements reach the other instances on the same Redis (and their own only once).
//
// A message on one pub/sub subscription arrives in the order it was published, so once a
// has heard a reply that b published after hearing a's announcement, any copy of a's own
// announcement coming back through Redis has arrived too: no wait decides the count.
func TestWakeUpsCrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	c1, c2 := srv.Client(t), srv.Client(t)
	a, b := redisqueue.New(c1, "hg:", redisqueue.Options{}), redisqueue.New(c2, "hg:", redisqueue.Options{})
	t.Cleanup(func() { a.Close(); b.Close() })
	heardB := make(chan string, 1000)
	defer b.Listen(func(e string) { heardB <- e })()
	heardA := make(chan string, 1000)
	defer a.Listen(func(e string) { heardA <- e })()
	// hear waits until ch has carried want (pub/sub is lossy while a subscription is being
	// set up, so the announcement is repeated until it is heard) and returns how many
	// times each name was heard on the way, want included.
	hear := func(who string, ch chan string, want string, announce func()) map[string]int {
		t.Helper()
		seen := map[string]int{}
		deadline := time.After(30 * time.Second)
		announce()
		for {
			select {
			case e := <-ch:
				seen[e]++
				if e == want {
					return seen
				}
			case <-deadline:
				t.Fatalf("%s never heard %q (heard %v)", who, want, seen)
			case <-time.After(100 * time.Millisecond):
				announce()
			}
		}
	}
	if got := hear("b", heardB, "sub_1", func() { a.Announce([]string{"sub_1"}) }); len(got) != 1 {
		t.Fatalf("b heard %v", got)
	}
	// b's reply, published after b heard sub_1, reaches a behind every copy of sub_1.
	hear("a", heardA, "y1", func() { b.Announce([]string{"y1"}) })
	for len(heardA) > 0 {
		<-heardA
	}
	// a heard each of its own announcements once, locally, not again through Redis.
	a.Announce([]string{"x"})
	hear("b", heardB, "x", func() {})
	got := hear("a", heardA, "y2", func() { b.Announce([]string{"y2"}) })
	if got["x"] != 1 {
		t.Fatalf("a heard its own announcement %d times", got["x"])
	}
}

// Deliveries queued before 2026-12-06 hold the event's header as JSON; they lease as before.
func TestEarlierJSONHeaderLeases(t *testing.T) {
	c, s := openStore(t)
	ctx := context.Background()
	ev := queue.Event{ID: "evt_old", Type: "t", Body: []byte(`{}`), Header: http.Header{"X-A": {"new"}}}
	if _, err := s.Enqueue(ctx, ev, []string{"ep"}); err != nil {
		t.Fatal(err)
	}
	key := "hg:{hg:q:ep}:d:" + queue.DeliveryID("ep", "evt_old")
	if err := c.HSet(ctx, key, "hdr", `{"X-A":["b","c"]}`).Err(); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Lease(ctx, "ep", 10, time.Now(), time.Minute)
	if err != nil || len(ds) != 1 || !reflect.DeepEqual(ds[0].Event.Header, http.Header{"X-A": {"b", "c"}}) {
		t.Fatalf("leased %+v (err %v), want the JSON header read", ds, err)
	}
}

// An endpoint's latest events written by earlier releases (JSON, the body in base64) are
// resent as before, beside those written now.
func TestResendReadsEarlierLatestEvents(t *testing.T) {
	c, s := openStore(t)
	ctx := context.Background()
	if _, err := s.Enqueue(ctx, queue.Event{ID: "evt_new", Type: "deal", Body: []byte(`{"n":2}`),
		Header: http.Header{"X-A": {"1"}}, TransformError: "boom"}, []string{"ep"}); err != nil {
		t.Fatal(err)
	}
	old := `{"id":"evt_old","type":"contact","body":"eyJuIjoxfQ==","header":{"X-B":["2"]},"created":"2026-12-01T00:00:00Z"}`
	if err := c.HSet(ctx, "hg:{hg:q:ep}:latest", "contact", old).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Resend(ctx, "ep"); err != nil || n != 2 {
		t.Fatalf("resend: %d, %v; want the 2 latest events", n, err)
	}
	ds, err := s.Lease(ctx, "ep", 10, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]queue.Event{}
	for _, d := range ds {
		got[d.Event.ID] = d.Event // the original and the two resent copies
	}
	if e := got["evt_old"]; string(e.Body) != `{"n":1}` || e.Type != "contact" || e.Header.Get("X-B") != "2" {
		t.Fatalf("the earlier latest event resent as %+v", e)
	}
	if e := got["evt_new"]; string(e.Body) != `{"n":2}` || e.Type != "deal" || e.Header.Get("X-A") != "1" || e.TransformError != "boom" {
		t.Fatalf("the latest event resent as %+v", e)
	}
	if len(ds) != 3 {
		t.Fatalf("leased %d deliveries, want the first and the 2 resent", len(ds))
	}
}

// openStore returns a store on a Redis of its own, and a client of that Redis.
func openStore(t *testing.T) (*redis.Client, *redisqueue.Store) {
	t.Helper()
	c := redistest.Start(t).Client(t)
	s := redisqueue.New(c, "hg:", redisqueue.Options{})
	t.Cleanup(s.Close)
	return c, s
}
