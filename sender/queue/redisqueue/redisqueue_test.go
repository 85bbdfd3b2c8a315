package redisqueue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/queuetest"
	"github.com/hookgate/hookgate/sender/queue/redisqueue"
	"github.com/redis/go-redis/v9"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	queuetest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { c.Close() })
		return c
	}))
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	queuetest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
		t.Cleanup(func() { c.Close() })
		return c
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
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	s := redisqueue.New(c, "hg:", redisqueue.Options{})
	ctx := context.Background()
	srv.Stop()
	_, err := s.Enqueue(ctx, queue.Event{ID: "evt_x", Type: "t", Body: []byte(`{}`)}, []string{"a"})
	if !errors.Is(err, queue.ErrUnavailable) {
		t.Fatalf("enqueue with Redis stopped: err = %v, want ErrUnavailable", err)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = s.Enqueue(ctx, queue.Event{ID: "evt_x", Type: "t", Body: []byte(`{}`)}, []string{"a"})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("enqueue after restart: %v", err)
	}
}

// Announcements reach the other instances on the same Redis (and their own only once).
func TestWakeUpsCrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	c1 := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	c2 := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c1.Close(); c2.Close() })
	a, b := redisqueue.New(c1, "hg:", redisqueue.Options{}), redisqueue.New(c2, "hg:", redisqueue.Options{})
	t.Cleanup(func() { a.Close(); b.Close() })
	heardB := make(chan string, 100)
	defer b.Listen(func(e string) { heardB <- e })()
	heardA := make(chan string, 100)
	defer a.Listen(func(e string) { heardA <- e })()
	deadline := time.After(3 * time.Second)
	for {
		a.Announce([]string{"sub_1"})
		select {
		case e := <-heardB:
			if e != "sub_1" {
				t.Fatalf("b heard %q", e)
			}
			time.Sleep(100 * time.Millisecond)
			// a heard each of its own announcements once, locally, not again through Redis.
			n := len(heardA)
			for range n {
				<-heardA
			}
			a.Announce([]string{"x"})
			time.Sleep(200 * time.Millisecond)
			if len(heardA) != 1 {
				t.Fatalf("a heard its own announcement %d times", len(heardA))
			}
			return
		case <-deadline:
			t.Fatal("the other instance never heard the announcement")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
