package redissubs_test

import (
	"testing"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/sender/subscription"
	"github.com/hookgate/hookgate/sender/subscription/redissubs"
	"github.com/hookgate/hookgate/sender/subscription/substest"
)

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	substest.Run(t, func(t *testing.T) (subscription.Store, func() subscription.Store, bool) {
		prefix := "hg-test:" + t.Name() + ":"
		return redissubs.New(c, prefix), func() subscription.Store {
			c2 := srv.Client(t)
			return redissubs.New(c2, prefix)
		}, true
	})
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	c := cl.Client(t)
	substest.Run(t, func(t *testing.T) (subscription.Store, func() subscription.Store, bool) {
		prefix := "hg-test:" + t.Name() + ":"
		return redissubs.New(c, prefix), func() subscription.Store {
			c2 := cl.Client(t)
			return redissubs.New(c2, prefix)
		}, true
	})
}
