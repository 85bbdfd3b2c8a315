// Package redisquarantine keeps the quarantine and drift reports in Redis, shared by every
// instance. A route's keys share one hash tag (one Cluster slot), so the Lua scripts that
// hold, lease, settle and trim its requests are atomic: the items (a hash by id), the held
// ones and the history (sorted sets ordered by id, which is time order), their sizes,
// leases and byte counts, and the drift report (one hash).
//
// A held request is as durable as Redis makes its writes (appendonly and appendfsync,
// replication): the 202 follows the script's reply.
package redisquarantine

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/internal/redisx"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/redis/go-redis/v9"
)

// Store is the Redis quarantine store.
type Store struct {
	c      redis.UniversalClient
	prefix string
}

var _ quarantine.Store = (*Store)(nil)

// New returns a store on c; keys start with prefix.
func New(c redis.UniversalClient, prefix string) *Store { return &Store{c: c, prefix: prefix + "q:"} }

var errUnavailable = storeerr.Unavailable("quarantine")

func classify(op string, err error) error {
	return redisx.Classify("quarantine "+op, err, errUnavailable)
}

// keys are one route's keys.
type keys struct{ items, held, hist, sizes, lease, meta, drift string }

func (s *Store) keys(route string) keys {
	p := s.prefix + "{" + route + "}:"
	return keys{p + "items", p + "held", p + "hist", p + "sizes", p + "lease", p + "meta", p + "drift"}
}

var (
	//go:embed hold.lua
	holdLua    string
	holdScript = redis.NewScript(holdLua)
	//go:embed lease.lua
	leaseLua    string
	leaseScript = redis.NewScript(leaseLua)
	//go:embed settle.lua
	settleLua    string
	settleScript = redis.NewScript(settleLua)
	//go:embed trim.lua
	trimLua    string
	trimScript = redis.NewScript(trimLua)
	//go:embed drift.lua
	driftLua    string
	driftScript = redis.NewScript(driftLua)
)

// Hold implements quarantine.Store.
func (s *Store) Hold(ctx context.Context, it *quarantine.Item, lim quarantine.Limits) error {
	it.State = quarantine.Held
	raw, err := quarantine.Encode(it)
	if err != nil {
		return err
	}
	k := s.keys(it.Route)
	n, err := holdScript.Run(ctx, s.c, []string{k.items, k.held, k.hist, k.sizes, k.meta}, it.ID, raw, it.Size(), lim.WithDefaults().MaxBytes).Int()
	if err != nil {
		return classify("hold", err)
	}
	if n == 0 {
		return quarantine.ErrFull
	}
	return nil
}

// Get implements quarantine.Store.
func (s *Store) Get(ctx context.Context, route, id string) (quarantine.Item, error) {
	raw, err := s.c.HGet(ctx, s.keys(route).items, id).Bytes()
	if err == redis.Nil {
		return quarantine.Item{}, fmt.Errorf("quarantine get %s: %w", id, quarantine.ErrNotFound)
	}
	if err != nil {
		return quarantine.Item{}, classify("get", err)
	}
	return quarantine.Decode(raw)
}

// List implements quarantine.Store.
func (s *Store) List(ctx context.Context, route string, f quarantine.Filter) ([]quarantine.Item, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	k := s.keys(route)
	index := k.held
	if f.State != "" && f.State != quarantine.Held {
		index = k.hist
	}
	var out []quarantine.Item
	after := "-"
	if f.After != "" {
		after = "(" + f.After
	}
	for len(out) < f.Limit {
		ids, err := s.c.ZRangeByLex(ctx, index, &redis.ZRangeBy{Min: after, Max: "+", Count: int64(f.Limit)}).Result()
		if err != nil {
			return nil, classify("list", err)
		}
		if len(ids) == 0 {
			break
		}
		raws, err := s.c.HMGet(ctx, k.items, ids...).Result()
		if err != nil {
			return nil, classify("list", err)
		}
		for _, r := range raws {
			str, ok := r.(string)
			if !ok {
				continue // trimmed meanwhile
			}
			it, err := quarantine.Decode([]byte(str))
			if err != nil {
				return nil, err
			}
			if f.State != "" && it.State != f.State {
				continue
			}
			if len(out) < f.Limit {
				out = append(out, it)
			}
		}
		after = "(" + ids[len(ids)-1]
		if len(ids) < f.Limit {
			break
		}
	}
	return out, nil
}

// Lease implements quarantine.Store.
func (s *Store) Lease(ctx context.Context, route, id, token string, ttl time.Duration) (quarantine.Item, bool, error) {
	k := s.keys(route)
	now := time.Now()
	raw, err := leaseScript.Run(ctx, s.c, []string{k.items, k.held, k.lease}, id, token, now.UnixMilli(), now.Add(ttl).UnixMilli()).Text()
	if err == redis.Nil {
		return quarantine.Item{}, false, nil
	}
	if err != nil {
		return quarantine.Item{}, false, classify("lease", err)
	}
	it, err := quarantine.Decode([]byte(raw))
	return it, err == nil, err
}

// Settle implements quarantine.Store.
func (s *Store) Settle(ctx context.Context, route, id, token string, o quarantine.Outcome, now time.Time) (bool, error) {
	it, err := s.Get(ctx, route, id)
	if err != nil {
		if errors.Is(err, quarantine.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	if it.State != quarantine.Held {
		return false, nil
	}
	quarantine.Apply(&it, o, now)
	raw, err := quarantine.Encode(&it)
	if err != nil {
		return false, err
	}
	k := s.keys(route)
	n, err := settleScript.Run(ctx, s.c, []string{k.items, k.held, k.hist, k.sizes, k.lease, k.meta},
		id, token, string(it.State), raw, it.Size(), now.UnixMilli()).Int()
	if err != nil {
		return false, classify("settle", err)
	}
	return n == 1, nil
}

// Stats implements quarantine.Store.
func (s *Store) Stats(ctx context.Context, route string) (quarantine.Stats, error) {
	k := s.keys(route)
	pipe := s.c.Pipeline()
	held, hist := pipe.ZCard(ctx, k.held), pipe.ZCard(ctx, k.hist)
	meta := pipe.HMGet(ctx, k.meta, "held", "hist")
	first := pipe.ZRange(ctx, k.held, 0, 0)
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return quarantine.Stats{}, classify("stats", err)
	}
	st := quarantine.Stats{Held: int(held.Val()), History: int(hist.Val())}
	num := func(v any) int64 {
		str, _ := v.(string)
		n, _ := strconv.ParseInt(str, 10, 64)
		return n
	}
	if m := meta.Val(); len(m) == 2 {
		st.HeldBytes = num(m[0])
		st.Bytes = st.HeldBytes + num(m[1])
	}
	if f := first.Val(); len(f) == 1 {
		st.Oldest = quarantine.IDTime(f[0])
	}
	return st, nil
}

// Trim implements quarantine.Store: 1,000 items per script call.
func (s *Store) Trim(ctx context.Context, route string, lim quarantine.Limits, now time.Time) (int, error) {
	k := s.keys(route)
	cut := quarantine.IDBefore(now.Add(-lim.WithDefaults().MaxAge))
	expired := 0
	for {
		n, err := trimScript.Run(ctx, s.c, []string{k.items, k.held, k.hist, k.sizes, k.lease, k.meta}, cut, 1000).Int64Slice()
		if err != nil {
			return expired, classify("trim", err)
		}
		expired += int(n[0])
		if n[0] < 1000 && n[1] < 1000 {
			return expired, nil
		}
	}
}

// AddDrift implements quarantine.Store.
func (s *Store) AddDrift(ctx context.Context, route string, gs []quarantine.Group) error {
	if len(gs) == 0 {
		return nil
	}
	args := make([]any, 0, 1+6*len(gs))
	args = append(args, quarantine.MaxGroups)
	for _, g := range gs {
		o := quarantine.Other(g)
		args = append(args, quarantine.GroupKey(g.Kind, g.Pointer, g.Message), g.Count, g.First.UnixMilli(), g.Last.UnixMilli(), g.Example,
			quarantine.GroupKey(o.Kind, o.Pointer, o.Message))
	}
	return classify("drift", driftScript.Run(ctx, s.c, []string{s.keys(route).drift}, args...).Err())
}

// Drift implements quarantine.Store.
func (s *Store) Drift(ctx context.Context, route string) ([]quarantine.Group, error) {
	m, err := s.c.HGetAll(ctx, s.keys(route).drift).Result()
	if err != nil {
		return nil, classify("drift", err)
	}
	out := []quarantine.Group{}
	for f, v := range m {
		key, ok := strings.CutPrefix(f, "c:")
		if !ok {
			continue
		}
		parts := strings.SplitN(key, "\x00", 3)
		if len(parts) != 3 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		first, _ := strconv.ParseInt(m["f:"+key], 10, 64)
		last, _ := strconv.ParseInt(m["l:"+key], 10, 64)
		out = append(out, quarantine.Group{Kind: parts[0], Pointer: parts[1], Message: parts[2], Count: n,
			First: time.UnixMilli(first).UTC(), Last: time.UnixMilli(last).UTC(), Example: m["x:"+key]})
	}
	quarantine.SortGroups(out)
	return out, nil
}

// ClearDrift implements quarantine.Store.
func (s *Store) ClearDrift(ctx context.Context, route string) error {
	return classify("clear drift", s.c.Del(ctx, s.keys(route).drift).Err())
}
