package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/receiver/dedupe"
	"github.com/hookgate/hookgate/receiver/dedupe/dedupetest"
	"github.com/hookgate/hookgate/receiver/dedupe/redisstore"
	"github.com/redis/go-redis/v9"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	dedupetest.Run(t, dedupetest.Harness{
		New: func(t *testing.T) dedupe.Store { return redisstore.New(c, "hg-test:"+t.Name()+":") },
	})
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	c := cl.Client(t)
	dedupetest.Run(t, dedupetest.Harness{
		New: func(t *testing.T) dedupe.Store { return redisstore.New(c, "hg-test:") },
	})
}

func TestStoppedServerIsUnavailableThenRecovers(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t, redis.Options{MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	s := redisstore.New(c, "hg:")
	ctx := context.Background()
	if _, _, err := s.Claim(ctx, "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	_, _, err := s.Claim(ctx, "b", time.Minute)
	if !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("claim with Redis stopped: err = %v, want ErrUnavailable", err)
	}
	srv.Restart()
	var st dedupe.State
	testwait.Poll(30*time.Second, func() bool {
		st, _, err = s.Claim(ctx, "b", time.Minute)
		return err == nil
	})
	if err != nil || st != dedupe.New {
		t.Fatalf("claim after restart = %v, %v; want new", st, err)
	}
}

func BenchmarkClaimCommit(b *testing.B) {
	srv := redistest.Start(b)
	c := srv.Client(b)
	s := redisstore.New(c, "hg:")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := time.Now().String()
			_, _, _ = s.Claim(ctx, k, time.Minute)
			_ = s.Commit(ctx, k, time.Hour)
		}
	})
}
