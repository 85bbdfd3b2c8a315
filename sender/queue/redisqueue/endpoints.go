package redisqueue

import (
	"context"
	_ "embed"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

// Status implements queue.Store.
func (s *Store) Status(ctx context.Context, endpoint string) (queue.EndpointStatus, error) {
	out, err := s.Statuses(ctx, []string{endpoint})
	if err != nil {
		return queue.EndpointStatus{}, err
	}
	return out[0], nil
}

// Statuses implements queue.Store: pipelines of up to 1,000 endpoints.
func (s *Store) Statuses(ctx context.Context, endpoints []string) ([]queue.EndpointStatus, error) {
	out := make([]queue.EndpointStatus, 0, len(endpoints))
	for start := 0; start < len(endpoints); start += 1000 {
		chunk := endpoints[start:min(start+1000, len(endpoints))]
		pending := make([]*redis.IntCmd, len(chunk))
		dead := make([]*redis.IntCmd, len(chunk))
		eps := make([]*redis.MapStringStringCmd, len(chunk))
		first := make([]*redis.ZSliceCmd, len(chunk))
		_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
			for i, endpoint := range chunk {
				t := s.tag(endpoint)
				pending[i] = p.ZCard(ctx, t+"due")
				dead[i] = p.ZCard(ctx, t+"dead")
				eps[i] = p.HGetAll(ctx, t+"ep")
				first[i] = p.ZRangeWithScores(ctx, t+"due", 0, 0)
			}
			return nil
		})
		if err != nil {
			return nil, classify("status", err)
		}
		for i := range chunk {
			h := eps[i].Val()
			st := queue.EndpointStatus{Pending: pending[i].Val(), Dead: dead[i].Val(), Disabled: h["disabled"] == "1", Reason: h["reason"]}
			st.Delivered, _ = strconv.ParseInt(h["delivered"], 10, 64)
			if z := first[i].Val(); len(z) == 1 {
				st.OldestDue = time.UnixMicro(int64(math.Round(z[0].Score * 1000))).UTC()
			}
			if b := h["b_json"]; b != "" {
				_ = json.Unmarshal([]byte(b), &st.Breaker)
			}
			if h["last"] != "" {
				var a queue.Attempt
				if json.Unmarshal([]byte(h["last"]), &a) == nil {
					st.Last = &a
				}
			}
			out = append(out, st)
		}
	}
	return out, nil
}

// SetDisabled implements queue.Store.
func (s *Store) SetDisabled(ctx context.Context, endpoint string, disabled bool, reason string) error {
	k := s.tag(endpoint) + "ep"
	if disabled {
		return classify("disable", s.c.HSet(ctx, k, "disabled", "1", "reason", reason).Err())
	}
	return classify("enable", s.c.HDel(ctx, k, "disabled", "reason").Err())
}

//go:embed abandon.lua
var abandonLua string

// KEYS: due, dead. ARGV: dprefix, aprefix, now, attemptJSON, batch
var abandonScript = redis.NewScript(abandonLua)

// Abandon implements queue.Store. It works in batches, so a long queue does not block
// Redis in one script.
func (s *Store) Abandon(ctx context.Context, endpoint, reason string) (int, error) {
	t := s.tag(endpoint)
	att, _ := json.Marshal(queue.Attempt{At: time.Now().UTC(), Error: reason})
	// Named first: if the dead-lettering is cut short, the endpoint is still listed.
	if err := s.c.SAdd(ctx, s.abandonedKey(), endpoint).Err(); err != nil {
		return 0, classify("abandon", err)
	}
	const batch = 500
	total := 0
	for {
		v, err := abandonScript.Run(ctx, s.c, []string{t + "due", t + "dead"}, t+"d:", t+"a:", ms(time.Now()), att, batch).Int64Slice()
		if err != nil {
			return total, classify("abandon", err)
		}
		total += int(v[0])
		if v[1] < batch {
			return total, nil
		}
	}
}

// Due implements queue.DueChecker: one pipeline of ZCOUNTs (split by node on a cluster).
func (s *Store) Due(ctx context.Context, endpoints []string, now time.Time) ([]bool, error) {
	out := make([]bool, 0, len(endpoints))
	limit := ms(now)
	for start := 0; start < len(endpoints); start += 1000 {
		chunk := endpoints[start:min(start+1000, len(endpoints))]
		cmds := make([]*redis.IntCmd, len(chunk))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, ep := range chunk {
				cmds[i] = p.ZCount(ctx, s.tag(ep)+"due", "-inf", limit)
			}
			return nil
		})
		if err != nil {
			return nil, classify("due", err)
		}
		for _, c := range cmds {
			out = append(out, c.Val() > 0)
		}
	}
	return out, nil
}

// abandonedKey is the set of endpoints Abandon was called for (no hash tag: it is read
// and written alone, never in a script with an endpoint's keys).
func (s *Store) abandonedKey() string { return s.prefix + "q-abandoned" }

// Abandoned implements queue.Store: one SMEMBERS, then one pipeline of ZCARDs (split by
// node on a cluster). An abandoned endpoint left with neither dead letters nor pending
// deliveries is forgotten.
func (s *Store) Abandoned(ctx context.Context) ([]string, error) {
	eps, err := s.c.SMembers(ctx, s.abandonedKey()).Result()
	if err != nil {
		return nil, classify("abandoned", err)
	}
	sort.Strings(eps)
	dead, due := make([]*redis.IntCmd, len(eps)), make([]*redis.IntCmd, len(eps))
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ep := range eps {
			dead[i] = p.ZCard(ctx, s.tag(ep)+"dead")
			due[i] = p.ZCard(ctx, s.tag(ep)+"due")
		}
		return nil
	}); err != nil {
		return nil, classify("abandoned", err)
	}
	var out, forget []string
	for i, ep := range eps {
		switch {
		case dead[i].Val() > 0:
			out = append(out, ep)
		case due[i].Val() == 0:
			forget = append(forget, ep)
		}
	}
	if len(forget) > 0 {
		if err := s.c.SRem(ctx, s.abandonedKey(), forget).Err(); err != nil {
			return nil, classify("abandoned", err)
		}
	}
	return out, nil
}
