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
