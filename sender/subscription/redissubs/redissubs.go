// Package redissubs keeps subscriptions in Redis, shared by every instance. Keys (one hash
// tag, so every script touches one Cluster slot):
//
//	subs     hash: id -> subscription (JSON)
//	subver   hash: id -> version, for compare-and-set
//	changes  stream: one entry per write or delete (field id), trimmed to about 10,000
//
// A write and its stream entry are one script, so a watcher that reads the stream from
// where it started misses nothing; a watcher that lost its connection reloads everything.
package redissubs

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hookgate/hookgate/internal/redisx"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/sender/subscription"
	"github.com/redis/go-redis/v9"
)

// Store is the Redis subscription store.
type Store struct {
	c                  redis.UniversalClient
	subs, ver, changes string
	block              time.Duration
}

var _ subscription.Store = (*Store)(nil)

// New returns a store on client c; every key starts with prefix.
func New(c redis.UniversalClient, prefix string) *Store {
	t := prefix + "{" + prefix + "subs}:"
	return &Store{c: c, subs: t + "subs", ver: t + "subver", changes: t + "changes", block: time.Second}
}

// errUnavailable wraps every outage of this store: it reads "subscription store unavailable", and
// errors.Is(err, storeerr.ErrUnavailable) holds for it.
var errUnavailable = storeerr.Unavailable("subscription")

func classify(op string, err error) error {
	return redisx.Classify(op, err, errUnavailable)
}

//go:embed put.lua
var putLua string

// KEYS: subs, subver, changes. ARGV: id, json, version, prev
var putScript = redis.NewScript(putLua)

//go:embed delete.lua
var deleteLua string

// KEYS: subs, subver, changes. ARGV: id
var deleteScript = redis.NewScript(deleteLua)

// Put implements subscription.Store. Durability is Redis's own (appendonly).
func (s *Store) Put(ctx context.Context, sub subscription.Subscription, prev int64) error {
	b, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	ok, err := putScript.Run(ctx, s.c, []string{s.subs, s.ver, s.changes}, sub.ID, b, sub.Version, prev).Int()
	if err != nil {
		return classify("store subscription", err)
	}
	if ok == 0 {
		return subscription.ErrVersion
	}
	return nil
}

// Delete implements subscription.Store.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	ok, err := deleteScript.Run(ctx, s.c, []string{s.subs, s.ver, s.changes}, id).Int()
	if err != nil {
		return false, classify("delete subscription", err)
	}
	return ok == 1, nil
}

// Get implements subscription.Store.
func (s *Store) Get(ctx context.Context, id string) (subscription.Subscription, error) {
	v, err := s.c.HGet(ctx, s.subs, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return subscription.Subscription{}, fmt.Errorf("subscription %s: %w", id, subscription.ErrNotFound)
	}
	if err != nil {
		return subscription.Subscription{}, classify("read subscription", err)
	}
	var out subscription.Subscription
	if err := json.Unmarshal(v, &out); err != nil {
		return out, fmt.Errorf("subscription %s: %w", id, err)
	}
	return out, nil
}

// All implements subscription.Store. It reads with HSCAN, in pages, so 10,000
// subscriptions do not make one huge reply.
func (s *Store) All(ctx context.Context) ([]subscription.Subscription, error) {
	var out []subscription.Subscription
	var cursor uint64
	for {
		kv, next, err := s.c.HScan(ctx, s.subs, cursor, "*", 500).Result()
		if err != nil {
			return nil, classify("list subscriptions", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			var sub subscription.Subscription
			if err := json.Unmarshal([]byte(kv[i+1]), &sub); err != nil {
				return nil, fmt.Errorf("subscription %s: %w", kv[i], err)
			}
			out = append(out, sub)
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	// HSCAN may return an entry twice (a rehash during the scan): keep one.
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	uniq := out[:0]
	for i, sub := range out {
		if i == 0 || sub.ID != out[i-1].ID {
			uniq = append(uniq, sub)
		}
	}
	return uniq, nil
}

// Watch implements subscription.Store: one goroutine reads the change stream with a
// blocking XREAD (one round trip a second when idle).
func (s *Store) Watch(changed func([]string)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	// The stream's position is read before Watch returns: a change made after it (and
	// after the caller's first load) is then always seen. Read in the goroutine, a change
	// made in between would be missed.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	last, err := s.latest(pctx)
	pcancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.watch(ctx, changed, last, err != nil)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// latest is the id of the stream's last entry ("0-0" when empty).
func (s *Store) latest(ctx context.Context) (string, error) {
	es, err := s.c.XRevRangeN(ctx, s.changes, "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(es) == 0 {
		return "0-0", nil
	}
	return es[0].ID, nil
}

func (s *Store) watch(ctx context.Context, changed func([]string), last string, broken bool) {
	var err error
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if broken {
			if last, err = s.latest(ctx); err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 2*time.Second)
				continue
			}
			broken, backoff = false, 100*time.Millisecond
			changed(nil) // anything may have changed meanwhile
		}
		res, err := s.c.XRead(ctx, &redis.XReadArgs{Streams: []string{s.changes, last}, Count: 1000, Block: s.block}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				broken = true
			}
			continue
		}
		var ids []string
		for _, st := range res {
			for _, m := range st.Messages {
				last = m.ID
				if id, ok := m.Values["id"].(string); ok {
					ids = append(ids, id)
				}
			}
		}
		if len(ids) > 0 {
			changed(ids)
		}
	}
}
