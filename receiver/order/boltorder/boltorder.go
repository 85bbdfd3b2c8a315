// Package boltorder keeps the stale-event guard's newest values in the embedded bbolt
// file. Claims live in memory (one process holds the file); a commit is one transaction,
// durable before the request is answered.
package boltorder

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/receiver/order"
	bolt "go.etcd.io/bbolt"
)

var bucket = []byte("order")

type claim struct {
	token string
	until time.Time
}

// Store is the embedded order store.
type Store struct {
	h *boltdb.Handle

	mu     sync.Mutex
	claims map[string]claim
}

var _ order.Store = (*Store)(nil)

// New returns a store in the file behind h; expired values are swept every 10 minutes.
func New(h *boltdb.Handle) *Store {
	s := &Store{h: h, claims: map[string]claim{}}
	h.Use(boltdb.Service{Buckets: [][]byte{bucket}, Tasks: []func(*bolt.DB, <-chan struct{}){s.sweeper}})
	return s
}

func (s *Store) db() (*bolt.DB, error) {
	db, err := s.h.DB()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", order.ErrUnavailable, err)
	}
	return db, nil
}

// A stored value is 8 bytes of expiry (unix nanoseconds) then the value.
func decode(v []byte, now time.Time) (string, bool) {
	if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) < now.UnixNano() {
		return "", false
	}
	return string(v[8:]), true
}

// Claim implements order.Store.
func (s *Store) Claim(ctx context.Context, key, value string, ttl time.Duration) (order.Verdict, string, error) {
	db, err := s.db()
	if err != nil {
		return 0, "", err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[key]; ok && c.until.After(now) {
		return order.Busy, "", nil
	}
	var newest string
	var found bool
	if err := db.View(func(tx *bolt.Tx) error {
		newest, found = decode(tx.Bucket(bucket).Get([]byte(key)), now)
		return nil
	}); err != nil {
		return 0, "", err
	}
	if found && newest > value {
		return order.Stale, "", nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	s.claims[key] = claim{token: tok, until: now.Add(ttl)}
	return order.Pass, tok, nil
}

func (s *Store) holds(key, token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.claims[key]
	return ok && c.token == token
}

func (s *Store) drop(key, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[key]; ok && c.token == token {
		delete(s.claims, key)
	}
}

// Commit implements order.Store: one transaction (bbolt's Batch groups concurrent ones
// into one fsync).
func (s *Store) Commit(ctx context.Context, key, value, token string, window time.Duration) error {
	if !s.holds(key, token) {
		return nil
	}
	db, err := s.db()
	if err != nil {
		return err
	}
	now := time.Now()
	err = db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if cur, ok := decode(b.Get([]byte(key)), now); ok && cur > value {
			return nil
		}
		v := make([]byte, 8, 8+len(value))
		binary.BigEndian.PutUint64(v, uint64(now.Add(window).UnixNano()))
		return b.Put([]byte(key), append(v, value...))
	})
	if err != nil {
		return fmt.Errorf("order commit: %w", err)
	}
	s.drop(key, token)
	return nil
}

// Release implements order.Store.
func (s *Store) Release(ctx context.Context, key, token string) error {
	s.drop(key, token)
	return nil
}

func (s *Store) sweeper(db *bolt.DB, stop <-chan struct{}) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = s.Sweep(time.Now())
		}
	}
}

// Sweep deletes values whose window ended before now, and lapsed claims.
func (s *Store) Sweep(now time.Time) error {
	s.mu.Lock()
	for k, c := range s.claims {
		if !c.until.After(now) {
			delete(s.claims, k)
		}
	}
	s.mu.Unlock()
	db, err := s.db()
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if _, ok := decode(v, now); !ok {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
