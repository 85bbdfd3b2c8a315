package redisqueue_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/redisqueue"
)

// enqueueAll enqueues one event per endpoint of eps at once, while Redis holds writes back
// for a moment (CLIENT PAUSE), so that they wait for the store together; it returns each
// call's result.
func enqueueAll(t *testing.T, srv *redistest.Server, s *redisqueue.Store, eps []string) ([]int, []error) {
	t.Helper()
	ctx := context.Background()
	if err := srv.Client(t).Do(ctx, "client", "pause", 300, "write").Err(); err != nil {
		t.Fatal(err)
	}
	created, errs := make([]int, len(eps)), make([]error, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := queue.Event{ID: fmt.Sprintf("evt_%03d", i), Type: "t", Body: []byte(`{"n":1}`), Unique: true}
			created[i], errs[i] = s.Enqueue(ctx, ev, []string{ep})
		}()
	}
	wg.Wait()
	return created, errs
}

// Concurrent enqueues go to Redis in a few pipelines, not one each, and every one of them
// is queued.
func TestConcurrentEnqueuesSharePipelines(t *testing.T) {
	srv := redistest.Start(t)
	s := redisqueue.New(srv.Client(t), "hg:", redisqueue.Options{})
	t.Cleanup(s.Close)
	eps := make([]string, 64)
	for i := range eps {
		eps[i] = "ep"
	}
	before := s.Groups()
	created, errs := enqueueAll(t, srv, s, eps)
	for i := range eps {
		if errs[i] != nil || created[i] != 1 {
			t.Fatalf("enqueue %d: created %d, err %v", i, created[i], errs[i])
		}
	}
	if n := s.Groups() - before; n > 8 {
		t.Fatalf("64 enqueues made while Redis held writes back went out in %d pipelines, want a few", n)
	}
	ds, err := s.Lease(context.Background(), "ep", 100, time.Now(), time.Minute)
	if err != nil || len(ds) != 64 {
		t.Fatalf("leased %d deliveries (err %v), want the 64 queued", len(ds), err)
	}
}

// A write that Redis refuses fails its own caller only: the others in its pipeline are
// queued and told so.
func TestFailedWriteFailsOnlyItsCaller(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	s := redisqueue.New(c, "hg:", redisqueue.Options{})
	t.Cleanup(s.Close)
	// The bad endpoint's due set is a string: its enqueue script fails with WRONGTYPE.
	if err := c.Set(context.Background(), "hg:{hg:q:bad}:due", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	eps := make([]string, 40)
	for i := range eps {
		eps[i] = "good"
		if i%4 == 1 {
			eps[i] = "bad"
		}
	}
	before := s.Groups()
	created, errs := enqueueAll(t, srv, s, eps)
	if n := s.Groups() - before; n >= int64(len(eps)) {
		t.Fatalf("the enqueues were not grouped (%d pipelines): the test shows nothing", n)
	}
	good := 0
	for i, ep := range eps {
		switch {
		case ep == "bad" && errs[i] == nil:
			t.Fatalf("enqueue %d to the broken endpoint succeeded (created %d)", i, created[i])
		case ep == "good" && (errs[i] != nil || created[i] != 1):
			t.Fatalf("enqueue %d beside a failed one: created %d, err %v", i, created[i], errs[i])
		case ep == "good":
			good++
		}
	}
	ds, err := s.Lease(context.Background(), "good", 100, time.Now(), time.Minute)
	if err != nil || len(ds) != good {
		t.Fatalf("leased %d deliveries of the good endpoint (err %v), want %d", len(ds), err, good)
	}
}
