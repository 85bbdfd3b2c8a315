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
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	queuetest.Run(t, func(t *testing.T) (queue.Store, func() queue.Store) {
		prefix := "hg-test:" + t.Name() + ":"
		return redisqueue.New(c, prefix, redisqueue.Options{}), func() queue.Store {
			c2 := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { c2.Close() })
			return redisqueue.New(c2, prefix, redisqueue.Options{})
		}
	})
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { c.Close() })
	queuetest.Run(t, func(t *testing.T) (queue.Store, func() queue.Store) {
		return redisqueue.New(c, "hg-test:"+t.Name()+":", redisqueue.Options{}), nil
	})
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
