package redisqueue

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

//go:embed lease.lua
var leaseLua string

// KEYS: due, ep. ARGV: now, until, max, dprefix
var leaseScript = redis.NewScript(leaseLua)

// Lease implements queue.Store.
func (s *Store) Lease(ctx context.Context, endpoint string, max int, now time.Time, leaseFor time.Duration) ([]queue.Delivery, error) {
	t := s.tag(endpoint)
	res, err := leaseScript.Run(ctx, s.c, []string{t + "due", t + "ep"}, ms(now), ms(now.Add(leaseFor)), max, t+"d:").Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, classify("lease", err)
	}
	if len(res) != 3 {
		return nil, classify("lease", fmt.Errorf("unexpected lease reply %v", res))
	}
	flag, _ := res[0].(string)
	if flag == "open" {
		e := &queue.BreakerOpenError{Endpoint: endpoint}
		if u, _ := res[1].(string); u != "" {
			e.Until = fromMS(u)
		}
		return nil, e
	}
	v, _ := res[2].([]any)
	out := make([]queue.Delivery, 0, len(v))
	for _, row := range v {
		f, _ := row.([]any)
		if len(f) != 10 {
			continue
		}
		str := func(i int) string { s, _ := f[i].(string); return s }
		d := queue.Delivery{ID: str(0), Endpoint: endpoint, Lease: str(1), State: queue.Pending,
			Event: queue.Event{ID: str(2), Type: str(3), Body: []byte(str(4))}}
		if h := str(5); h != "" {
			d.Event.Header, _ = queue.DecodeHeader(h)
		}
		d.AttemptCount, _ = strconv.Atoi(str(6))
		d.Created = fromMS(str(7))
		d.Event.Created = d.Created
		d.NextAt = fromMS(str(8))
		d.Event.TransformError = str(9)
		d.Probe = flag == "probe"
		out = append(out, d)
	}
	return out, nil
}

//go:embed finish.lua
var finishLua string

// finishScript finishes deliveries of one endpoint (see finish.lua for its keys and
// arguments): one call per endpoint and chunk, not per delivery, as a script's cost on
// Redis is largely per call.
var finishScript = redis.NewScript(finishLua)

// finishChunk is how many deliveries one call of finishScript takes (a call holds Redis
// for its length: about 20 µs per delivery).
const finishChunk = 64

// Finish implements queue.Store.
func (s *Store) Finish(ctx context.Context, results []queue.Result) error {
	if len(results) == 0 {
		return nil
	}
	now := ms(time.Now())
	// The results of each endpoint, in the order given, in calls of finishChunk.
	var order []string
	byEndpoint := map[string][]queue.Result{}
	for _, r := range results {
		ep := r.Delivery.Endpoint
		if byEndpoint[ep] == nil {
			order = append(order, ep)
		}
		byEndpoint[ep] = append(byEndpoint[ep], r)
	}
	_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
		for _, ep := range order {
			t := s.tag(ep)
			rs := byEndpoint[ep]
			for start := 0; start < len(rs); start += finishChunk {
				chunk := rs[start:min(start+finishChunk, len(rs))]
				keys := make([]string, 0, 3+2*len(chunk))
				keys = append(keys, t+"due", t+"dead", t+"ep")
				args := make([]any, 0, 1+10*len(chunk))
				args = append(args, now)
				for _, r := range chunk {
					id := r.Delivery.ID
					att, _ := json.Marshal(r.Attempt)
					outcome := map[queue.Outcome]string{queue.Done: "done", queue.Retry: "retry", queue.Kill: "dead"}[r.Outcome]
					keep := s.keep()
					if r.Keep > 0 {
						keep = r.Keep
					}
					reshaped, body, hdr := "0", "", ""
					if v := r.Reshaped; v != nil {
						reshaped, body = "1", string(v.Body)
						hdr = queue.EncodeHeader(v.Header)
					}
					keys = append(keys, t+"d:"+id, t+"a:"+id)
					args = append(args, id, r.Delivery.Lease, outcome, ms(r.NextAt), att, max(keep.Milliseconds(), 1),
						counted(r.Uncounted), reshaped, body, hdr)
				}
				finishScript.EvalSha(ctx, p, keys, args...)
			}
		}
		return nil
	})
	return classify("finish", err)
}

//go:embed release.lua
var releaseLua string

// KEYS: due, d. ARGV: id, lease, now
var releaseScript = redis.NewScript(releaseLua)

// Release implements queue.Store.
func (s *Store) Release(ctx context.Context, leased []queue.Delivery) error {
	if len(leased) == 0 {
		return nil
	}
	now := ms(time.Now())
	_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
		for _, d := range leased {
			t := s.tag(d.Endpoint)
			// Back at the time it was due (not now): a page given back is served before
			// what was queued after it.
			at := now
			if !d.NextAt.IsZero() && d.NextAt.Before(time.Now()) {
				at = ms(d.NextAt)
			}
			releaseScript.EvalSha(ctx, p, []string{t + "due", t + "d:" + d.ID}, d.ID, d.Lease, at)
		}
		return nil
	})
	return classify("release", err)
}

//go:embed extend.lua
var extendLua string

// KEYS: due, d. ARGV: id, lease, until
var extendScript = redis.NewScript(extendLua)

// Extend implements queue.Store.
func (s *Store) Extend(ctx context.Context, leased []queue.Delivery, until time.Time) error {
	if len(leased) == 0 {
		return nil
	}
	_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
		for _, d := range leased {
			t := s.tag(d.Endpoint)
			extendScript.EvalSha(ctx, p, []string{t + "due", t + "d:" + d.ID}, d.ID, d.Lease, ms(until))
		}
		return nil
	})
	return classify("extend", err)
}

func counted(uncounted bool) string {
	if uncounted {
		return "0"
	}
	return "1"
}
