package redistest

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// Client returns a go-redis client for the server, closed when the test ends. opts, if
// given, is the base (its Addr is overwritten), for tests that tune retries or timeouts.
func (s *Server) Client(t testing.TB, opts ...redis.Options) *redis.Client {
	t.Helper()
	var o redis.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Addr = s.Addr()
	c := redis.NewClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Client returns a go-redis Cluster client for the cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}
