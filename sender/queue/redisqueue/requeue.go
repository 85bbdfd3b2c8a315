package redisqueue

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

//go:embed requeue.lua
var requeueLua string

// KEYS: d, a, due, dead. ARGV: id, now
var requeueScript = redis.NewScript(requeueLua)

func (s *Store) requeue(ctx context.Context, c redis.Scripter, ep, id string, at time.Time, bySHA bool) *redis.Cmd {
	t := s.tag(ep)
	keys := []string{t + "d:" + id, t + "a:" + id, t + "due", t + "dead", t + "ep"}
	if bySHA {
		return requeueScript.EvalSha(ctx, c, keys, id, ms(at))
	}
	return requeueScript.Run(ctx, c, keys, id, ms(at))
}

// RequeueBatch implements queue.Store: pipelines of 1,000; delivery i is due one
// microsecond after delivery i-1.
func (s *Store) RequeueBatch(ctx context.Context, ids []string) (int, error) {
	now := time.Now()
	n := 0
	for start := 0; start < len(ids); start += batchChunk {
		chunk := ids[start:min(start+batchChunk, len(ids))]
		cmds := make([]*redis.Cmd, 0, len(chunk))
		_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range chunk {
				if ep, ok := queue.EndpointOf(id); ok {
					cmds = append(cmds, s.requeue(ctx, p, ep, id, now.Add(time.Duration(start+i)*time.Microsecond), true))
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return n, classify("requeue", err)
		}
		for _, c := range cmds {
			if v, _ := c.Int(); v == 1 {
				n++
			}
		}
	}
	return n, nil
}

// Requeue implements queue.Store.
func (s *Store) Requeue(ctx context.Context, id string) error {
	ep, ok := queue.EndpointOf(id)
	if !ok {
		return fmt.Errorf("delivery %q: %w", id, queue.ErrNotFound)
	}
	v, err := s.requeue(ctx, s.c, ep, id, time.Now(), false).Int()
	if err != nil {
		return classify("requeue", err)
	}
	if v < 0 {
		return fmt.Errorf("delivery %q: %w", id, queue.ErrNotFound)
	}
	return nil
}

// RequeueDead implements queue.Store.
func (s *Store) RequeueDead(ctx context.Context, endpoint string) (int, error) {
	ids, err := s.c.ZRange(ctx, s.tag(endpoint)+"dead", 0, -1).Result()
	if err != nil {
		return 0, classify("requeue", err)
	}
	cmds := make([]*redis.Cmd, len(ids))
	now := time.Now()
	_, err = s.pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			// In the order they died, one microsecond apart.
			cmds[i] = s.requeue(ctx, p, endpoint, id, now.Add(time.Duration(i)*time.Microsecond), true)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, classify("requeue", err)
	}
	n := 0
	for _, c := range cmds {
		if v, _ := c.Int(); v == 1 {
			n++
		}
	}
	return n, nil
}

// Resend implements queue.Store.
func (s *Store) Resend(ctx context.Context, endpoint string) (int, error) {
	latest, err := s.c.HGetAll(ctx, s.tag(endpoint)+"latest").Result()
	if err != nil {
		return 0, classify("resend", err)
	}
	n := 0
	for _, v := range latest {
		ev, ok := decodeLatest(v)
		if !ok {
			continue
		}
		ev.Created = time.Now().UTC()
		c, err := s.enqueue(ctx, ev, []string{endpoint}, queue.NewDeliveryID, false)
		if err != nil {
			return n, err
		}
		n += c
	}
	return n, nil
}
