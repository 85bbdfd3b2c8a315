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
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	ordertest.Run(t, func(t *testing.T) order.Store { return redisorder.New(c, "hg-test:"+t.Name()+":") })
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { c.Close() })
	ordertest.Run(t, func(t *testing.T) order.Store { return redisorder.New(c, "hg-test:"+t.Name()+":") })
}
