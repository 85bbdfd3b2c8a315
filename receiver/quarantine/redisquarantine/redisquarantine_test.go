package redisquarantine_test

import (
	"testing"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/hookgate/hookgate/receiver/quarantine/quarantinetest"
	"github.com/hookgate/hookgate/receiver/quarantine/redisquarantine"
	"github.com/redis/go-redis/v9"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	quarantinetest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient { return srv.Client(t) }))
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	quarantinetest.Run(t, fixtures(func(t *testing.T) redis.UniversalClient { return cl.Client(t) }))
}

func fixtures(connect func(t *testing.T) redis.UniversalClient) quarantinetest.Factory {
	return func(t *testing.T) quarantinetest.Fixture {
		prefix := "hg-test:" + t.Name() + ":"
		again := func() quarantine.Store { return redisquarantine.New(connect(t), prefix) }
		return quarantinetest.Fixture{Store: again(), Reopen: again, Beside: again}
	}
}
