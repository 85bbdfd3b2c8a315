package redisqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

// fetch reads deliveries (with attempts) of one endpoint by id, skipping vanished ones.
func (s *Store) fetch(ctx context.Context, ep string, ids []string) ([]queue.Delivery, error) {
	t := s.tag(ep)
	hs := make([]*redis.MapStringStringCmd, len(ids))
	as := make([]*redis.StringSliceCmd, len(ids))
	_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			hs[i] = p.HGetAll(ctx, t+"d:"+id)
			as[i] = p.LRange(ctx, t+"a:"+id, 0, -1)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, classify("read", err)
	}
	var out []queue.Delivery
	for i := range ids {
		h := hs[i].Val()
		if len(h) == 0 {
			continue
		}
		d := queue.Delivery{ID: h["id"], Endpoint: ep, State: queue.State(h["state"]),
			Event: queue.Event{ID: h["ev"], Type: h["type"], Body: []byte(h["body"]), TransformError: h["terr"]}}
		if h["hdr"] != "" {
			d.Event.Header, _ = queue.DecodeHeader(h["hdr"])
		}
		d.AttemptCount, _ = strconv.Atoi(h["n"])
		d.Created = fromMS(h["created"])
		d.Event.Created = d.Created
		if d.State == queue.Pending {
			d.NextAt = fromMS(h["next"])
		}
		for _, a := range as[i].Val() {
			var at queue.Attempt
			if json.Unmarshal([]byte(a), &at) == nil {
				d.Attempts = append(d.Attempts, at)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// Get implements queue.Store.
func (s *Store) Get(ctx context.Context, id string) (queue.Delivery, error) {
	ep, ok := queue.EndpointOf(id)
	if !ok {
		return queue.Delivery{}, fmt.Errorf("delivery %q: %w", id, queue.ErrNotFound)
	}
	ds, err := s.fetch(ctx, ep, []string{id})
	if err != nil {
		return queue.Delivery{}, err
	}
	if len(ds) == 0 {
		return queue.Delivery{}, fmt.Errorf("delivery %q: %w", id, queue.ErrNotFound)
	}
	return ds[0], nil
}

// List implements queue.Store.
func (s *Store) List(ctx context.Context, f queue.Filter) ([]queue.Delivery, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	index := "recent"
	switch f.State {
	case queue.Pending:
		index = "due"
	case queue.Dead:
		index = "dead"
	}
	var out []queue.Delivery
	for _, ep := range f.Endpoints {
		// Pending deliveries are ordered by due time, not creation: read them all (bounded).
		n := int64(f.Limit)
		if f.State != "" {
			n = 5000
		}
		ids, err := s.c.ZRevRange(ctx, s.tag(ep)+index, 0, n-1).Result()
		if err != nil {
			return nil, classify("list", err)
		}
		ds, err := s.fetch(ctx, ep, ids)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if f.State == "" || d.State == f.State {
				out = append(out, d)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}
