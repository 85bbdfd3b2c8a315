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
	dedupetest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		return srv.Client(t)
	}))
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	dedupetest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		return cl.Client(t)
	}))
}

// fixtures makes each case's stores on clients from connect, under a prefix of the case's
// own: a reopened store and one beside it are on new clients, as in another process.
func fixtures(connect func(t *testing.T) redis.UniversalClient) dedupetest.Factory {
	return func(t *testing.T) dedupetest.Fixture {
		prefix := "hg-test:" + t.Name() + ":"
		again := func() dedupe.Store { return redisstore.New(connect(t), prefix) }
		return dedupetest.Fixture{Store: again(), Reopen: again, Beside: again}
	}
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

// A release that fails with the server away is retried in the background: the claim,
// still on the server when it comes back (here kept by its append-only file; in a Cluster
// failover, on the promoted replica), no longer answers the sender's retries "in flight"
// until it times out. Close stops the retries.
func TestFailedReleaseIsRetriedWhenTheServerIsBack(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	c := srv.Client(t, redis.Options{MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	s := redisstore.New(c, "hg:")
	t.Cleanup(s.Close)
	ctx := context.Background()
	st, tok, err := s.Claim(ctx, "a", time.Hour)
	if err != nil || st != dedupe.New {
		t.Fatalf("claim: %v %v", st, err)
	}
	srv.Stop()
	if err := s.Release(ctx, "a", tok); !errors.Is(err, dedupe.ErrUnavailable) {
		t.Fatalf("release with the server away: %v, want unavailable", err)
	}
	srv.Restart()
	testwait.Until(t, 10*time.Second, func() bool {
		st, _, err = s.Claim(ctx, "a", time.Hour)
		return err == nil && st == dedupe.New
	}, "the claim released once the server is back")
	// The retries stop with the store, also when one is waiting.
	_, tok, _ = s.Claim(ctx, "b", time.Hour)
	srv.Stop()
	_ = s.Release(ctx, "b", tok)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the release retries")
	}
}
