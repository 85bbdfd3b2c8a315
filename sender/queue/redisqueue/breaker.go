package redisqueue

import (
	"context"
	_ "embed"
	"encoding/json"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

// The breaker lives in the endpoint's ep hash, so Lease reads it in the script it already
// runs and Statuses in the HGETALL it already sends: b_state, b_until (ms), b_manual and
// b_probe (the end of a probe's lease, ms) for the scripts, b_json for the views.

//go:embed close.lua
var closeLua string

// KEYS: ep. ARGV: closed breaker JSON.
var closeScript = redis.NewScript(closeLua)

//go:embed rewind.lua
var rewindLua string

// KEYS: due. ARGV: now, keep, dprefix, offset, limit.
var rewindScript = redis.NewScript(rewindLua)

// OpenBreaker implements queue.Store: one MULTI on the endpoint's slot.
func (s *Store) OpenBreaker(ctx context.Context, endpoint string, b queue.Breaker) error {
	b.State = queue.BreakerOpen
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	manual := "0"
	if b.Manual {
		manual = "1"
	}
	k := s.tag(endpoint) + "ep"
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "b_state", "open", "b_until", ms(b.Until), "b_manual", manual, "b_json", string(v))
		p.HDel(ctx, k, "b_probe")
		return nil
	})
	if err != nil {
		return classify("open breaker", err)
	}
	now := b.Since
	if now.IsZero() {
		now = time.Now()
	}
	_, err = s.rewind(ctx, s.tag(endpoint), now, "")
	return err
}

// rewindBatch is how many pending deliveries one rewind script moves: a long backlog is
// rewound in steps, not in one script that holds Redis.
const rewindBatch = 500

// CloseBreaker implements queue.Store.
func (s *Store) CloseBreaker(ctx context.Context, endpoint string, since time.Time, keep string) (int, error) {
	v, err := json.Marshal(queue.Breaker{State: queue.BreakerClosed, Since: since})
	if err != nil {
		return 0, err
	}
	t := s.tag(endpoint)
	was, err := closeScript.Run(ctx, s.c, []string{t + "ep"}, string(v)).Int()
	if err != nil {
		return 0, classify("close breaker", err)
	}
	if was != 1 {
		return 0, nil
	}
	return s.rewind(ctx, t, since, keep)
}

// rewind runs the rewind script over the endpoint's due set in batches.
func (s *Store) rewind(ctx context.Context, tag string, now time.Time, keep string) (int, error) {
	total, offset := 0, 0
	for {
		r, err := rewindScript.Run(ctx, s.c, []string{tag + "due"}, ms(now), keep, tag+"d:", offset, rewindBatch).Int64Slice()
		if err != nil {
			return total, classify("rewind the backlog", err)
		}
		total += int(r[0])
		offset += int(r[1])
		if r[1] < rewindBatch {
			return total, nil
		}
	}
}
