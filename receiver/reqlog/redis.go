package reqlog

import (
	"context"
	_ "embed"
	"encoding/json"
	"sync"
	"time"

	"github.com/hookgate/hookgate/internal/lifecycle"
	"github.com/hookgate/hookgate/internal/redisx"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/redis/go-redis/v9"
)

// Redis is the request log shared by every instance: a capped list per route (by count,
// and by bytes: see SetMaxBytes), with its size in bytes in a key beside it. Entries are
// redacted and written by a background writer in pipelined batches, never on the request
// path; when Redis is away (or the writer falls 4,096 entries behind) entries are
// dropped, and requests are not slowed.
type Redis struct {
	c      redis.UniversalClient
	prefix string

	mu       sync.Mutex
	limits   map[string]int
	maxBytes int64
	ch       chan *Entry
	life     lifecycle.Base // the writer runs in it, from the first Add to Close
}

// NewRedis returns a log on c; keys start with prefix. Its writer starts on first Add;
// Close stops it.
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	return &Redis{c: c, prefix: prefix + "rl:", limits: map[string]int{}, maxBytes: DefaultMaxBytes, ch: make(chan *Entry, 4096)}
}

func (l *Redis) key(route string) string { return l.prefix + "{" + route + "}" }

// SetLimit implements Log.
func (l *Redis) SetLimit(route string, n int) {
	l.mu.Lock()
	l.limits[route] = n
	l.mu.Unlock()
}

func (l *Redis) limit(route string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n, ok := l.limits[route]; ok && n > 0 {
		return n
	}
	return DefaultLimit
}

// Add implements Log.
func (l *Redis) Add(e *Entry) {
	if l.life.Start() {
		l.life.Go(l.write)
	}
	select {
	case l.ch <- e:
	default: // the writer is 4,096 entries behind: this one is dropped
	}
}

func (l *Redis) write(stop context.Context) {
	batch := make([]*Entry, 0, 256)
	for {
		select {
		case <-stop.Done():
			return
		case e := <-l.ch:
			batch = append(batch[:0], e)
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case e := <-l.ch:
				batch = append(batch, e)
			default:
				break drain
			}
		}
		share := l.share()
		ctx, cancel := context.WithTimeout(stop, 2*time.Second)
		// If Redis is away the batch is dropped: webhooks are not slowed for the log.
		// One script call per route in the batch, its records in arrival order: the
		// script's cost is mostly per call, not per record.
		routes, args := []string{}, map[string][]any{}
		for _, e := range batch {
			b, err := json.Marshal(e.Materialize())
			if err != nil {
				continue
			}
			if args[e.Route] == nil {
				routes = append(routes, e.Route)
				args[e.Route] = []any{l.limit(e.Route), share}
			}
			args[e.Route] = append(args[e.Route], b)
		}
		_, _ = redisx.Pipelined(ctx, l.c, logScripts, func(p redis.Pipeliner) error {
			for _, route := range routes {
				key := l.key(route)
				addScript.EvalSha(ctx, p, []string{key, key + ":bytes"}, args[route]...)
			}
			return nil
		})
		cancel()
	}
}

// Close stops the writer (entries not yet written are dropped) and waits for it.
func (l *Redis) Close() { l.life.Stop(nil, nil) }

// errUnavailable wraps the log's Redis outages: it reads "request log store unavailable",
// and errors.Is(err, storeerr.ErrUnavailable) holds for it (the admin API answers 503).
var errUnavailable = storeerr.Unavailable("request log")

// read returns route's records, newest first, up to its limit.
func (l *Redis) read(ctx context.Context, route string) ([]Record, error) {
	raw, err := l.c.LRange(ctx, l.key(route), 0, int64(l.limit(route))-1).Result()
	if err != nil {
		return nil, redisx.Classify("read the log of route "+route, err, errUnavailable)
	}
	out := make([]Record, 0, len(raw))
	for _, s := range raw {
		var r Record
		if json.Unmarshal([]byte(s), &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// List implements Log.
func (l *Redis) List(ctx context.Context, route string, f Filter) ([]Record, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	all, err := l.read(ctx, route)
	if err != nil {
		return nil, err
	}
	var out []Record
	for i := range all {
		if len(out) == f.Limit {
			break
		}
		if f.Match(&all[i]) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// Get implements Log.
func (l *Redis) Get(ctx context.Context, route, id string) (Record, error) {
	all, err := l.read(ctx, route)
	if err != nil {
		return Record{}, err
	}
	for _, r := range all {
		if r.ID == id {
			return r, nil
		}
	}
	return Record{}, ErrNotFound
}

// SetMaxBytes implements Log. On Redis the budget is shared out equally between the
// routes this instance knows (SetLimit): each route's list holds at most its share, as
// Redis counts the JSON it stores, the oldest dropped first.
func (l *Redis) SetMaxBytes(n int64) {
	if n <= 0 {
		n = DefaultMaxBytes
	}
	l.mu.Lock()
	l.maxBytes = n
	l.mu.Unlock()
}

// share is the byte budget of one route's list.
func (l *Redis) share() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.maxBytes / int64(max(1, len(l.limits)))
}

//go:embed add.lua
var addLua string

// addScript pushes records onto a route's list, oldest first, and trims it, oldest first,
// to its limit and its byte share (the list's bytes are counted in a key beside it).
// KEYS: list, bytes. ARGV: limit, share, then the records.
var addScript = redis.NewScript(addLua)

// logScripts are the scripts the writer pipelines (loaded on a NOSCRIPT reply).
var logScripts = []*redis.Script{addScript}
