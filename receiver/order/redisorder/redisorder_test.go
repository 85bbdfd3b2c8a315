package redisorder_test

import (
	"testing"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/receiver/order"
	"github.com/hookgate/hookgate/receiver/order/ordertest"
	"github.com/hookgate/hookgate/receiver/order/redisorder"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ordertest.Run(t, func(t *testing.T) order.Store { return redisorder.New(c, "hg-test:"+t.Name()+":") })
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	c := cl.Client(t)
	ordertest.Run(t, func(t *testing.T) order.Store { return redisorder.New(c, "hg-test:"+t.Name()+":") })
}
