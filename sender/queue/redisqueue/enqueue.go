package redisqueue

import (
	"context"
	_ "embed"
	"errors"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

//go:embed enqueue.lua
var enqueueLua string

// KEYS: d, due, recent, latest. ARGV: id, ev, type, body, hdr, created, now, setLatest ("1"
// or empty), trimBefore, transformError
var enqueueScript = redis.NewScript(enqueueLua)

// Enqueue implements queue.Store.
func (s *Store) Enqueue(ctx context.Context, ev queue.Event, endpoints []string) (int, error) {
	if ev.Created.IsZero() {
		ev.Created = time.Now().UTC()
	}
	if !ev.Unique {
		hash := ev.BodyHash()
		evKey := s.prefix + "qe{" + ev.ID + "}"
		prev, err := s.c.SetArgs(ctx, evKey, hash, redis.SetArgs{Mode: "NX", Get: true, TTL: max(s.keep(), queue.DefaultRetention)}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return 0, classify("enqueue", err)
		}
		if err == nil && prev != hash {
			return 0, queue.ErrConflict
		}
	}
	return s.enqueue(ctx, ev, endpoints, func(ep string) string { return queue.DeliveryID(ep, ev.ID) }, true)
}

// batchChunk is how many deliveries one pipeline of a batch carries.
const batchChunk = 1000

// EnqueueBatch implements queue.Store: the events' idempotency marks in one pipeline,
// then their deliveries in pipelines of 1,000 (one slot: an endpoint's keys share a hash
// tag); delivery i is due one microsecond after delivery i-1.
func (s *Store) EnqueueBatch(ctx context.Context, endpoint string, evs []queue.Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	hashes := make([]string, len(evs))
	marks := make([]*redis.StatusCmd, len(evs))
	ttl := max(s.keep(), queue.DefaultRetention)
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range evs {
			if evs[i].Created.IsZero() {
				evs[i].Created = time.Now().UTC()
			}
			hashes[i] = evs[i].BodyHash()
			marks[i] = p.SetArgs(ctx, s.prefix+"qe{"+evs[i].ID+"}", hashes[i], redis.SetArgs{Mode: "NX", Get: true, TTL: ttl})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, classify("enqueue", err)
	}
	for i, m := range marks {
		prev, err := m.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return 0, classify("enqueue", err)
		}
		if err == nil && prev != hashes[i] {
			return 0, queue.ErrConflict
		}
	}
	last := map[string]int{} // the latest event of each type, for Resend
	for i, ev := range evs {
		last[ev.Type] = i
	}
	t := s.tag(endpoint)
	now := time.Now()
	trim := ms(now.Add(-s.keep()))
	n := 0
	for start := 0; start < len(evs); start += batchChunk {
		chunk := evs[start:min(start+batchChunk, len(evs))]
		cmds := make([]*redis.Cmd, len(chunk))
		err := s.writeAcked(ctx, []write{{key: t, add: func(p redis.Pipeliner) {
			for j, ev := range chunk {
				hdr, latest := queue.EncodeHeader(ev.Header), ""
				if last[ev.Type] == start+j {
					latest = "1"
				}
				id := queue.DeliveryID(endpoint, ev.ID)
				cmds[j] = enqueueScript.EvalSha(ctx, p, []string{t + "d:" + id, t + "due", t + "recent", t + "latest"},
					id, ev.ID, ev.Type, ev.Body, hdr, ms(ev.Created), ms(now.Add(time.Duration(start+j)*time.Microsecond)), latest, trim, ev.TransformError)
			}
		}}})
		if err != nil {
			return n, classify("enqueue", err)
		}
		for _, c := range cmds {
			v, err := c.Int()
			if err != nil {
				return n, classify("enqueue", err)
			}
			if v == 1 {
				n++
			}
		}
	}
	return n, nil
}

func (s *Store) enqueue(ctx context.Context, ev queue.Event, endpoints []string, idOf func(string) string, setLatest bool) (int, error) {
	fields := func(ev queue.Event) (hdr, latest string) {
		hdr = queue.EncodeHeader(ev.Header)
		if setLatest {
			latest = "1"
		}
		return hdr, latest
	}
	base := ev.For("")
	hdr, latest := fields(base)
	now := time.Now()
	cmds := make([]*redis.Cmd, len(endpoints))
	writes := make([]write, len(endpoints))
	for i, ep := range endpoints {
		t := s.tag(ep)
		id := idOf(ep)
		e, h, l := base, hdr, latest
		if _, ok := ev.Variants[ep]; ok {
			e = ev.For(ep)
			h, l = fields(e)
		}
		writes[i] = write{key: t, add: func(p redis.Pipeliner) {
			cmds[i] = enqueueScript.EvalSha(ctx, p, []string{t + "d:" + id, t + "due", t + "recent", t + "latest"},
				id, e.ID, e.Type, e.Body, h, ms(e.Created), ms(now), l, ms(now.Add(-s.keep())), e.TransformError)
		}}
	}
	err := s.writeAcked(ctx, writes)
	if err != nil {
		return 0, classify("enqueue", err)
	}
	n := 0
	for _, c := range cmds {
		v, err := c.Int()
		if err != nil {
			return n, classify("enqueue", err)
		}
		if v == 1 {
			n++
		}
	}
	return n, nil
}
