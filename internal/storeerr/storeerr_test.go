package storeerr_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/receiver/dedupe"
	"github.com/hookgate/hookgate/receiver/dedupe/boltstore"
	"github.com/hookgate/hookgate/receiver/dedupe/redisstore"
	"github.com/hookgate/hookgate/receiver/order"
	"github.com/hookgate/hookgate/receiver/order/boltorder"
	"github.com/hookgate/hookgate/receiver/order/redisorder"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
	"github.com/hookgate/hookgate/sender/queue/redisqueue"
	"github.com/hookgate/hookgate/sender/subscription"
	"github.com/hookgate/hookgate/sender/subscription/boltsubs"
	"github.com/hookgate/hookgate/sender/subscription/redissubs"
	"github.com/redis/go-redis/v9"
)

func TestUnavailableNamesTheStore(t *testing.T) {
	err := storeerr.Unavailable("queue")
	if err.Error() != "queue store unavailable" {
		t.Fatalf("message %q", err)
	}
	if !errors.Is(err, storeerr.ErrUnavailable) {
		t.Fatal("errors.Is(Unavailable(...), ErrUnavailable) is false")
	}
	if errors.Is(err, storeerr.ErrNotFound) {
		t.Fatal("an outage matches ErrNotFound")
	}
}

// The stores' own names are the leaf's values, so callers that test them keep working.
func TestPackageNamesAreTheLeaf(t *testing.T) {
	for name, got := range map[string]error{
		"dedupe.ErrUnavailable":       dedupe.ErrUnavailable,
		"order.ErrUnavailable":        order.ErrUnavailable,
		"queue.ErrUnavailable":        queue.ErrUnavailable,
		"subscription.ErrUnavailable": subscription.ErrUnavailable,
	} {
		if got != storeerr.ErrUnavailable {
			t.Errorf("%s is not storeerr.ErrUnavailable", name)
		}
	}
	for name, got := range map[string]error{
		"queue.ErrNotFound":        queue.ErrNotFound,
		"subscription.ErrNotFound": subscription.ErrNotFound,
		"reqlog.ErrNotFound":       reqlog.ErrNotFound,
	} {
		if got != storeerr.ErrNotFound {
			t.Errorf("%s is not storeerr.ErrNotFound", name)
		}
	}
}

// call is one read of a store, made after its backing is gone.
type call struct {
	store string // the name its outages carry
	do    func(context.Context) error
}

func dedupeCall(s dedupe.Store) call {
	return call{"dedupe", func(ctx context.Context) error { _, _, err := s.Claim(ctx, "k", time.Minute); return err }}
}

func orderCall(s order.Store) call {
	return call{"order", func(ctx context.Context) error { _, _, err := s.Get(ctx, "k"); return err }}
}

func queueCall(s queue.Store) call {
	return call{"queue", func(ctx context.Context) error { _, err := s.Status(ctx, "ep"); return err }}
}

func subsCall(s subscription.Store) call {
	return call{"subscription", func(ctx context.Context) error { _, err := s.All(ctx); return err }}
}

// checkOutage makes each call, which must succeed, runs down, then makes each call again:
// the error must be storeerr.ErrUnavailable, named after its store.
func checkOutage(t *testing.T, calls []call, down func()) {
	t.Helper()
	ctx := context.Background()
	for _, c := range calls {
		if err := c.do(ctx); err != nil {
			t.Fatalf("%s before the outage: %v", c.store, err)
		}
	}
	down()
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.do(ctx)
		cancel()
		if !errors.Is(err, storeerr.ErrUnavailable) {
			t.Errorf("%s store: outage error %v is not storeerr.ErrUnavailable", c.store, err)
			continue
		}
		if want := c.store + " store unavailable"; !strings.Contains(err.Error(), want) {
			t.Errorf("%s store: outage error %q does not say %q", c.store, err, want)
		}
	}
}

func TestBoltOutageIsUnavailable(t *testing.T) {
	h := boltdb.New(filepath.Join(t.TempDir(), "store.db"))
	calls := []call{
		dedupeCall(boltstore.New(h, boltstore.Options{})),
		orderCall(boltorder.New(h)),
		queueCall(boltqueue.New(h, boltqueue.Options{})),
		subsCall(boltsubs.New(h)),
	}
	checkOutage(t, calls, func() {
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func redisClient(t *testing.T, addrs ...string) redis.UniversalClient {
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs, MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func redisCalls(c redis.UniversalClient) []call {
	return []call{
		dedupeCall(redisstore.New(c, "t:")),
		orderCall(redisorder.New(c, "t:")),
		queueCall(redisqueue.New(c, "t:", redisqueue.Options{})),
		subsCall(redissubs.New(c, "t:")),
	}
}

func TestRedisOutageIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	checkOutage(t, redisCalls(redisClient(t, srv.Addr())), srv.Stop)
}

func TestRedisClusterOutageIsUnavailable(t *testing.T) {
	cl := redistest.StartCluster(t)
	checkOutage(t, redisCalls(redisClient(t, cl.Addrs()...)), func() {
		for _, n := range cl.Nodes {
			n.Stop()
		}
	})
}
