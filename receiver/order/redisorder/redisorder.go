// Package redisorder keeps the stale-event guard's state in Redis, shared by every
// instance: one hash per record key (its own Cluster slot), claimed, committed and
// released by Lua scripts, so two instances given two events of one record agree.
package redisorder

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"time"

	"github.com/hookgate/hookgate/internal/redisx"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/receiver/order"
	"github.com/redis/go-redis/v9"
)

// Store is the Redis order store.
type Store struct {
	c      redis.UniversalClient
	prefix string
}

var _ order.Store = (*Store)(nil)

// New returns a store on c; keys start with prefix.
func New(c redis.UniversalClient, prefix string) *Store { return &Store{c: c, prefix: prefix + "o:"} }

// errUnavailable wraps every outage of this store: it reads "order store unavailable", and
// errors.Is(err, storeerr.ErrUnavailable) holds for it.
var errUnavailable = storeerr.Unavailable("order")

func classify(op string, err error) error { return redisx.Classify(op, err, errUnavailable) }

//go:embed claim.lua
var claimLua string

// Fields: v newest value, c claim token, ce claim end (ms).
// KEYS: k. ARGV: value, token, now, claim end
var claimScript = redis.NewScript(claimLua)

//go:embed commit.lua
var commitLua string

// KEYS: k. ARGV: value, token, window ms
var commitScript = redis.NewScript(commitLua)

//go:embed release.lua
var releaseLua string

// KEYS: k. ARGV: token
var releaseScript = redis.NewScript(releaseLua)

//go:embed get.lua
var getLua string

// KEYS: k. Returns the value and its time to live (ms), or nothing.
var getScript = redis.NewScript(getLua)

//go:embed clear.lua
var clearLua string

// KEYS: k. Removes the value, keeping a claim being held (and the key's expiry with it).
var clearScript = redis.NewScript(clearLua)

// Claim implements order.Store.
func (s *Store) Claim(ctx context.Context, key, value string, ttl time.Duration) (order.Verdict, string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	now := time.Now()
	v, err := claimScript.Run(ctx, s.c, []string{s.prefix + key}, value, tok, now.UnixMilli(), now.Add(ttl).UnixMilli()).Int()
	if err != nil {
		return 0, "", classify("order claim", err)
	}
	switch v {
	case 1:
		return order.Stale, "", nil
	case 2:
		return order.Busy, "", nil
	}
	return order.Pass, tok, nil
}

// Commit implements order.Store.
func (s *Store) Commit(ctx context.Context, key, value, token string, window time.Duration) error {
	return classify("order commit", commitScript.Run(ctx, s.c, []string{s.prefix + key}, value, token, max(window.Milliseconds(), 1)).Err())
}

// Release implements order.Store.
func (s *Store) Release(ctx context.Context, key, token string) error {
	return classify("order release", releaseScript.Run(ctx, s.c, []string{s.prefix + key}, token).Err())
}

// Get implements order.Store.
func (s *Store) Get(ctx context.Context, key string) (order.Record, bool, error) {
	res, err := getScript.Run(ctx, s.c, []string{s.prefix + key}).Slice()
	if errors.Is(err, redis.Nil) {
		return order.Record{}, false, nil
	}
	if err != nil {
		return order.Record{}, false, classify("order get", err)
	}
	v, _ := res[0].(string)
	ttl, _ := res[1].(int64)
	if ttl < 0 { // no expiry: never set by Commit, but say so rather than invent one
		return order.Record{Value: v}, true, nil
	}
	return order.Record{Value: v, Expires: time.Now().Add(time.Duration(ttl) * time.Millisecond)}, true, nil
}

// Clear implements order.Store.
func (s *Store) Clear(ctx context.Context, key string) (bool, error) {
	n, err := clearScript.Run(ctx, s.c, []string{s.prefix + key}).Int()
	if err != nil {
		return false, classify("order clear", err)
	}
	return n == 1, nil
}
