// Package redisqueue is the delivery queue on Redis, shared by every Caddy instance that
// points at the same server or cluster.
//
// Every key of one endpoint carries the hash tag {<prefix>q:<endpoint>}, so each script
// touches one Cluster slot; an event's id record has its own tag. Per endpoint:
//
//	due     sorted set: pending delivery id -> due time (ms); a lease moves the score to the
//	        lease's end, so a worker that dies lets the delivery come due again by itself
//	dead    sorted set: dead delivery id -> time it died
//	recent  sorted set: delivery id -> created (ms), trimmed to the retention
//	d:<id>  hash: the delivery (event, body, state, attempt count, lease counter)
//	a:<id>  list: the attempt history (JSON, last 50)
//	latest  hash: event type -> latest event (JSON), for resend
//	ep      hash: disabled, reason, delivered count, last attempt
//
// Durability is Redis's own: run it with appendonly yes (and appendfsync always to make a
// 202 survive a power cut, not only a crash of Caddy).
package redisqueue

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/internal/redisx"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

// Options tune a Store.
type Options struct {
	// Retention is how long delivered deliveries (and idempotency records) are kept.
	// Default 72h.
	Retention time.Duration
}

// Store is the Redis queue.
type Store struct {
	c         redis.UniversalClient
	prefix    string
	opts      Options
	retention atomic.Int64 // nanoseconds
	wake      *waker
}

var (
	_ queue.Store      = (*Store)(nil)
	_ queue.Notifier   = (*Store)(nil)
	_ queue.DueChecker = (*Store)(nil)
)

// New returns a queue on client c; every key starts with prefix.
func New(c redis.UniversalClient, prefix string, opts Options) *Store {
	if opts.Retention <= 0 {
		opts.Retention = queue.DefaultRetention
	}
	s := &Store{c: c, prefix: prefix, opts: opts}
	s.retention.Store(int64(opts.Retention))
	s.wake = newWaker(c, prefix+"wake")
	return s
}

// SetRetention implements queue.Store.
func (s *Store) SetRetention(d time.Duration) {
	if d > 0 {
		s.retention.Store(int64(d))
	}
}

func (s *Store) keep() time.Duration { return time.Duration(s.retention.Load()) }

func (s *Store) tag(ep string) string { return s.prefix + "{" + s.prefix + "q:" + ep + "}:" }

func classify(op string, err error) error { return redisx.Classify(op, err, queue.ErrUnavailable) }

// ms is t as Redis scores and fields hold times: milliseconds since 1970, with the
// microseconds as three decimals ("1764690000000.123"), so deliveries queued within one
// millisecond keep their order. Earlier releases wrote whole milliseconds, which read the
// same.
func ms(t time.Time) string {
	us := t.UnixMicro()
	if us < 0 {
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	b := strconv.AppendInt(make([]byte, 0, 20), us/1000, 10)
	frac := us % 1000
	b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	return string(b)
}

var scripts = []*redis.Script{enqueueScript, leaseScript, finishScript, releaseScript, requeueScript, extendScript, abandonScript}

// pipelined runs fn's commands in one pipeline. Scripts go by SHA (EVALSHA: the script
// text is not resent and rehashed on every call); if a server does not know one yet
// (first use, a restart, a new cluster node) every script is loaded and the pipeline runs
// again, which is safe because a NOSCRIPT reply means the script did not run.
func (s *Store) pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	cmds, err := s.c.Pipelined(ctx, fn)
	if err == nil || !anyNoScript(cmds) {
		return cmds, err
	}
	for _, sc := range scripts {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			return cmds, err
		}
	}
	return s.c.Pipelined(ctx, fn)
}

func anyNoScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			return true
		}
	}
	return false
}

// KEYS: d, due, recent, latest. ARGV: id, ev, type, body, hdr, created, now, latestJSON, trimBefore
var enqueueScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'ev', ARGV[2], 'type', ARGV[3], 'body', ARGV[4], 'hdr', ARGV[5],
	'created', ARGV[6], 'state', 'pending', 'n', 0, 'next', ARGV[7], 'lease', 0)
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[9])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[4], ARGV[3], ARGV[8]) end
return 1`)

// Enqueue implements queue.Store.
func (s *Store) Enqueue(ctx context.Context, ev queue.Event, endpoints []string) (int, error) {
	if ev.Created.IsZero() {
		ev.Created = time.Now().UTC()
	}
	hash := ev.BodyHash()
	evKey := s.prefix + "qe{" + ev.ID + "}"
	prev, err := s.c.SetArgs(ctx, evKey, hash, redis.SetArgs{Mode: "NX", Get: true, TTL: max(s.keep(), queue.DefaultRetention)}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, classify("enqueue", err)
	}
	if err == nil && prev != hash {
		return 0, queue.ErrConflict
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
		_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
			for j, ev := range chunk {
				hdr, latest := "", ""
				if len(ev.Header) > 0 {
					b, _ := json.Marshal(ev.Header)
					hdr = string(b)
				}
				if last[ev.Type] == start+j {
					b, _ := json.Marshal(ev)
					latest = string(b)
				}
				id := queue.DeliveryID(endpoint, ev.ID)
				cmds[j] = enqueueScript.EvalSha(ctx, p, []string{t + "d:" + id, t + "due", t + "recent", t + "latest"},
					id, ev.ID, ev.Type, ev.Body, hdr, ms(ev.Created), ms(now.Add(time.Duration(start+j)*time.Microsecond)), latest, trim)
			}
			return nil
		})
		if err != nil {
			return n, classify("enqueue", err)
		}
		for _, c := range cmds {
			if v, _ := c.Int(); v == 1 {
				n++
			}
		}
	}
	return n, nil
}

func (s *Store) enqueue(ctx context.Context, ev queue.Event, endpoints []string, idOf func(string) string, setLatest bool) (int, error) {
	hdr := ""
	if len(ev.Header) > 0 {
		b, _ := json.Marshal(ev.Header)
		hdr = string(b)
	}
	latest := ""
	if setLatest {
		b, _ := json.Marshal(ev)
		latest = string(b)
	}
	now := time.Now()
	cmds := make([]*redis.Cmd, len(endpoints))
	_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ep := range endpoints {
			t := s.tag(ep)
			id := idOf(ep)
			cmds[i] = enqueueScript.EvalSha(ctx, p, []string{t + "d:" + id, t + "due", t + "recent", t + "latest"},
				id, ev.ID, ev.Type, ev.Body, hdr, ms(ev.Created), ms(now), latest, ms(now.Add(-s.keep())))
		}
		return nil
	})
	if err != nil {
		return 0, classify("enqueue", err)
	}
	n := 0
	for _, c := range cmds {
		if v, _ := c.Int(); v == 1 {
			n++
		}
	}
	return n, nil
}

// KEYS: due, ep. ARGV: now, until, max, dprefix
var leaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'disabled') == '1' then return {} end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
	local k = ARGV[4] .. id
	if redis.call('EXISTS', k) == 0 then
		redis.call('ZREM', KEYS[1], id)
	else
		redis.call('ZADD', KEYS[1], ARGV[2], id)
		local l = redis.call('HINCRBY', k, 'lease', 1)
		local v = redis.call('HMGET', k, 'ev', 'type', 'body', 'hdr', 'n', 'created', 'next')
		out[#out+1] = {id, tostring(l), v[1], v[2], v[3], v[4], v[5], v[6], v[7]}
	end
end
return out`)

// Lease implements queue.Store.
func (s *Store) Lease(ctx context.Context, endpoint string, max int, now time.Time, leaseFor time.Duration) ([]queue.Delivery, error) {
	t := s.tag(endpoint)
	v, err := leaseScript.Run(ctx, s.c, []string{t + "due", t + "ep"}, ms(now), ms(now.Add(leaseFor)), max, t+"d:").Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, classify("lease", err)
	}
	out := make([]queue.Delivery, 0, len(v))
	for _, row := range v {
		f, _ := row.([]any)
		if len(f) != 9 {
			continue
		}
		str := func(i int) string { s, _ := f[i].(string); return s }
		d := queue.Delivery{ID: str(0), Endpoint: endpoint, Lease: str(1), State: queue.Pending,
			Event: queue.Event{ID: str(2), Type: str(3), Body: []byte(str(4))}}
		if h := str(5); h != "" {
			_ = json.Unmarshal([]byte(h), &d.Event.Header)
		}
		d.AttemptCount, _ = strconv.Atoi(str(6))
		d.Created = fromMS(str(7))
		d.Event.Created = d.Created
		d.NextAt = fromMS(str(8))
		out = append(out, d)
	}
	return out, nil
}

func fromMS(s string) time.Time {
	whole, frac, _ := strings.Cut(s, ".")
	v, _ := strconv.ParseInt(whole, 10, 64)
	us := v * 1000
	if len(frac) == 3 {
		f, _ := strconv.Atoi(frac)
		us += int64(f)
	}
	return time.UnixMicro(us).UTC()
}

// KEYS: d, a, due, dead, ep. ARGV: id, lease, outcome, next, attemptJSON, now, retentionMS
var finishScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[2] or redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('LTRIM', KEYS[2], -50, -1)
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('HSET', KEYS[5], 'last', ARGV[5])
if ARGV[3] == 'done' then
	redis.call('ZREM', KEYS[3], ARGV[1])
	redis.call('HSET', KEYS[1], 'state', 'delivered')
	redis.call('PEXPIRE', KEYS[1], ARGV[7])
	redis.call('PEXPIRE', KEYS[2], ARGV[7])
	redis.call('HINCRBY', KEYS[5], 'delivered', 1)
elseif ARGV[3] == 'retry' then
	redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
	redis.call('HSET', KEYS[1], 'next', ARGV[4])
else
	redis.call('ZREM', KEYS[3], ARGV[1])
	redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
	redis.call('HSET', KEYS[1], 'state', 'dead')
end
return 1`)

// Finish implements queue.Store.
func (s *Store) Finish(ctx context.Context, results []queue.Result) error {
	if len(results) == 0 {
		return nil
	}
	now := ms(time.Now())
	_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range results {
			t := s.tag(r.Delivery.Endpoint)
			id := r.Delivery.ID
			att, _ := json.Marshal(r.Attempt)
			outcome := map[queue.Outcome]string{queue.Done: "done", queue.Retry: "retry", queue.Kill: "dead"}[r.Outcome]
			keep := s.keep()
			if r.Keep > 0 {
				keep = r.Keep
			}
			finishScript.EvalSha(ctx, p, []string{t + "d:" + id, t + "a:" + id, t + "due", t + "dead", t + "ep"},
				id, r.Delivery.Lease, outcome, ms(r.NextAt), att, now, max(keep.Milliseconds(), 1))
		}
		return nil
	})
	return classify("finish", err)
}

// KEYS: due, d. ARGV: id, lease, now
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'lease') == ARGV[2] then
	redis.call('HINCRBY', KEYS[2], 'lease', 1)
	redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
	return 1
end
return 0`)

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

// KEYS: due, d. ARGV: id, lease, until
var extendScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'lease') == ARGV[2] then
	return redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
end
return 0`)

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
			Event: queue.Event{ID: h["ev"], Type: h["type"], Body: []byte(h["body"])}}
		if h["hdr"] != "" {
			_ = json.Unmarshal([]byte(h["hdr"]), &d.Event.Header)
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
		return queue.Delivery{}, queue.ErrNotFound
	}
	ds, err := s.fetch(ctx, ep, []string{id})
	if err != nil {
		return queue.Delivery{}, err
	}
	if len(ds) == 0 {
		return queue.Delivery{}, queue.ErrNotFound
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

// KEYS: d, a, due, dead. ARGV: id, now
var requeueScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return -1 end
if st == 'pending' then return 0 end
if st == 'delivered' and tonumber(redis.call('HGET', KEYS[5], 'delivered') or '0') > 0 then
	redis.call('HINCRBY', KEYS[5], 'delivered', -1)
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
local due = ARGV[2]
local created = redis.call('HGET', KEYS[1], 'created')
if created and tonumber(created) and tonumber(created) < tonumber(due) then due = created end
redis.call('HSET', KEYS[1], 'state', 'pending', 'next', due)
redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('ZADD', KEYS[3], due, ARGV[1])
return 1`)

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
		return queue.ErrNotFound
	}
	v, err := s.requeue(ctx, s.c, ep, id, time.Now(), false).Int()
	if err != nil {
		return classify("requeue", err)
	}
	if v < 0 {
		return queue.ErrNotFound
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
		var ev queue.Event
		if json.Unmarshal([]byte(v), &ev) != nil {
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
		_, err := s.pipelined(ctx, func(p redis.Pipeliner) error {
			for i, endpoint := range chunk {
				t := s.tag(endpoint)
				pending[i] = p.ZCard(ctx, t+"due")
				dead[i] = p.ZCard(ctx, t+"dead")
				eps[i] = p.HGetAll(ctx, t+"ep")
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

// KEYS: due, dead. ARGV: dprefix, aprefix, now, attemptJSON, batch
var abandonScript = redis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[5]) - 1)
local n = 0
for _, id in ipairs(ids) do
	redis.call('ZREM', KEYS[1], id)
	local k = ARGV[1] .. id
	if redis.call('HGET', k, 'state') == 'pending' then
		redis.call('HSET', k, 'state', 'dead')
		redis.call('HINCRBY', k, 'lease', 1)
		redis.call('RPUSH', ARGV[2] .. id, ARGV[4])
		redis.call('LTRIM', ARGV[2] .. id, -50, -1)
		redis.call('ZADD', KEYS[2], ARGV[3], id)
		n = n + 1
	end
end
return {n, #ids}`)

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
