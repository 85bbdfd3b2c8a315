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
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	substest.Run(t, func(t *testing.T) (subscription.Store, func() subscription.Store, bool) {
		prefix := "hg-test:" + t.Name() + ":"
		return redissubs.New(c, prefix), func() subscription.Store {
			c2 := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { c2.Close() })
			return redissubs.New(c2, prefix)
		}, true
	})
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { c.Close() })
	substest.Run(t, func(t *testing.T) (subscription.Store, func() subscription.Store, bool) {
		prefix := "hg-test:" + t.Name() + ":"
		return redissubs.New(c, prefix), func() subscription.Store {
			c2 := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
			t.Cleanup(func() { c2.Close() })
			return redissubs.New(c2, prefix)
		}, true
	})
}
