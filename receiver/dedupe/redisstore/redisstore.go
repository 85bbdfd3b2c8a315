// Package redisstore is the dedupe store on Redis, shared by every Caddy instance that
// points at the same server or cluster.
//
// Each operation is one round trip on one key, so it works unchanged on Redis Cluster:
// Claim is `SET key i:<token> NX PX ttl GET` (Redis ≥ 7.0), whose reply tells new,
// in flight and processed apart; Commit is `SET key p PX window`; Release is a one-key
// script that deletes the key only if it still holds the caller's token.
package redisstore

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/hookgate/hookgate/internal/redisx"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/receiver/dedupe"
	"github.com/redis/go-redis/v9"
)

// Store is the Redis dedupe store.
type Store struct {
	c      redis.Cmdable
	prefix string

	mu       sync.Mutex
	later    map[string]laterRelease // failed releases, retried in the background (later.go)
	retrying bool
	closed   bool
	stop     chan struct{}
	wg       sync.WaitGroup
}

var _ dedupe.Store = (*Store)(nil)

// New returns a store on client c; every key starts with prefix + "dedupe:".
//
// Commands go through the client's autopipeliner: the claims and commits of concurrent
// webhooks are written to Redis as one pipeline while the previous one is in flight, so N
// concurrent requests cost about one round trip each way, not N. Calls are bounded by the
// client's read and write timeouts (the autopipeliner runs commands on its own context).
// If the client cannot make one, commands go to it directly.
func New(c redis.UniversalClient, prefix string) *Store {
	s := &Store{c: c, prefix: prefix + "dedupe:", stop: make(chan struct{})}
	if ap, err := c.AutoPipeline(); err == nil {
		s.c = ap
	}
	return s
}

const processed = "p"

//go:embed release.lua
var releaseLua string

var releaseScript = redis.NewScript(releaseLua)

// errUnavailable wraps every outage of this store: it reads "dedupe store unavailable", and
// errors.Is(err, storeerr.ErrUnavailable) holds for it.
var errUnavailable = storeerr.Unavailable("dedupe")

func classify(op string, err error) error { return redisx.Classify(op, err, errUnavailable) }

// Claim implements dedupe.Store.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (dedupe.State, dedupe.Token, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	tok := dedupe.Token(hex.EncodeToString(b[:]))
	prev, err := s.c.SetArgs(ctx, s.prefix+key, "i:"+string(tok), redis.SetArgs{Mode: "NX", TTL: ttl, Get: true}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return dedupe.New, tok, nil
	case err == nil && prev == "i:"+string(tok):
		// A retry of this very SET after a dropped connection: the claim is ours.
		return dedupe.New, tok, nil
	case err != nil:
		return 0, "", classify("claim", err)
	case prev == processed:
		return dedupe.Processed, "", nil
	default:
		return dedupe.InFlight, "", nil
	}
}

// Commit implements dedupe.Store.
func (s *Store) Commit(ctx context.Context, key string, window time.Duration) error {
	return classify("commit", s.c.Set(ctx, s.prefix+key, processed, window).Err())
}

// Release implements dedupe.Store. When the store is away the release is also retried in
// the background (later.go), so a claim that outlives a failover does not hold back the
// sender's retries until it times out.
func (s *Store) Release(ctx context.Context, key string, tok dedupe.Token) error {
	err := s.release(ctx, key, tok)
	if errors.Is(err, errUnavailable) {
		s.releaseLater(key, tok)
	}
	return err
}

func (s *Store) release(ctx context.Context, key string, tok dedupe.Token) error {
	err := releaseScript.Run(ctx, s.c, []string{s.prefix + key}, "i:"+string(tok)).Err()
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	return classify("release", err)
}
