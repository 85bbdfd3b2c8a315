package redisorder_test

import (
	"testing"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/receiver/order"
	"github.com/hookgate/hookgate/receiver/order/ordertest"
	"github.com/hookgate/hookgate/receiver/order/redisorder"
	"github.com/redis/go-redis/v9"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	ordertest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		return srv.Client(t)
	}))
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	ordertest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		return cl.Client(t)
	}))
}

// fixtures makes each case's stores on clients from connect, under a prefix of the case's
// own: a reopened store and one beside it are on new clients, as in another process.
func fixtures(connect func(t *testing.T) redis.UniversalClient) ordertest.Factory {
	return func(t *testing.T) ordertest.Fixture {
		prefix := "hg-test:" + t.Name() + ":"
		again := func() order.Store { return redisorder.New(connect(t), prefix) }
		return ordertest.Fixture{Store: again(), Reopen: again, Beside: again}
	}
}
