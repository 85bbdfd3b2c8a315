package redissubs_test

import (
	"testing"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/sender/subscription"
	"github.com/hookgate/hookgate/sender/subscription/redissubs"
	"github.com/hookgate/hookgate/sender/subscription/substest"
	"github.com/redis/go-redis/v9"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	substest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		return srv.Client(t)
	}))
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	substest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient {
		return cl.Client(t)
	}))
}

// fixtures makes each case's stores on clients from connect, under a prefix of the case's
// own: a reopened store and one beside it are on new clients, as in another process.
func fixtures(connect func(t *testing.T) redis.UniversalClient) substest.Factory {
	return func(t *testing.T) substest.Fixture {
		prefix := "hg-test:" + t.Name() + ":"
		again := func() subscription.Store { return redissubs.New(connect(t), prefix) }
		return substest.Fixture{Store: again(), Reopen: again, Beside: again}
	}
}
