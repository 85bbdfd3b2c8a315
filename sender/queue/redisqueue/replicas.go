package redisqueue

import (
	"context"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/internal/redisx"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

// DefaultReplicasTimeout bounds the wait for replicas when Options.ReplicasTimeout is 0.
const DefaultReplicasTimeout = time.Second

// A write is a group of commands that touch the one Cluster slot of key.
type write struct {
	key string
	add func(redis.Pipeliner)
}

// runWrites runs the writes in one pipeline (writeAcked groups the callers' writes); with
// Options.ReplicasAck set it returns only once each write's master says that many
// replicas hold it (Redis' WAIT), and otherwise fails as the store being unavailable, so
// the sender is told to retry (the write itself stays on the master: a retry finds it
// there and is not queued twice).
//
// WAIT counts the writes of its own connection, so it goes in the same pipeline as the
// writes, on the master of their slot: on a Cluster each master's writes are one
// pipeline on that master's connection (go-redis would send a keyless WAIT to any node).
func (s *Store) runWrites(ctx context.Context, writes []write) error {
	if s.opts.ReplicasAck <= 0 {
		_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
			for _, w := range writes {
				w.add(p)
			}
			return nil
		})
		return err
	}
	groups := map[*redis.Client][]write{}
	var order []*redis.Client
	for _, w := range writes {
		node, err := s.master(ctx, w.key)
		if err != nil {
			return err
		}
		if _, ok := groups[node]; !ok {
			order = append(order, node)
		}
		groups[node] = append(groups[node], w)
	}
	timeout := s.opts.ReplicasTimeout
	if timeout <= 0 {
		timeout = DefaultReplicasTimeout
	}
	for _, node := range order {
		var wait *redis.Cmd
		run := func(p redis.Pipeliner) error {
			for _, w := range groups[node] {
				w.add(p)
			}
			wait = p.Do(ctx, "wait", s.opts.ReplicasAck, timeout.Milliseconds())
			return nil
		}
		_, err := redisx.Pipelined(ctx, node, scripts, run)
		if redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK") {
			// A failover or a resharding moved the slot since the client last looked: the
			// store is unavailable for this write, and the sender's retry finds the new master.
			return fmt.Errorf("the slot's master changed: %v", err)
		}
		if err != nil {
			return err
		}
		n, err := wait.Int()
		if err != nil {
			return err
		}
		if n < s.opts.ReplicasAck {
			return fmt.Errorf("%w: the write reached %d of the %d replicas replicas_ack asks for within %s", errNotReplicated, n, s.opts.ReplicasAck, timeout)
		}
	}
	return nil
}

// errNotReplicated: too few replicas hold a write (classify makes it the store being
// unavailable as well, as every error that is not a Redis reply).
var errNotReplicated = queue.ErrNotReplicated

// master is the client of the master that holds key's slot: the Cluster's node for it,
// or the one server's client.
func (s *Store) master(ctx context.Context, key string) (*redis.Client, error) {
	switch c := s.c.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	case *redis.Client:
		return c, nil
	}
	return nil, fmt.Errorf("replicas_ack needs a Redis server or Cluster client, not %T", s.c)
}
