// Package boltorder keeps the stale-event guard's newest values in the embedded bbolt
// file. Claims live in memory (one process holds the file), and so do committed values
// until a background flusher writes them, every 20 ms, in one transaction: like the dedupe
// store's marks, the request path never waits for an fsync. A claim and a commit are
// atomic under one lock, so two events of one record never both pass; a power cut can
// lose the last interval's values (an older event of those records could then pass once).
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
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/receiver/order"
	bolt "go.etcd.io/bbolt"
)

var bucket = []byte("order")

type claim struct {
	token string
	until time.Time
}

type value struct {
	v   string
	exp int64 // unix nanoseconds
}

// FlushInterval is how often committed values are written to the file.
const FlushInterval = 20 * time.Millisecond

// Store is the embedded order store.
type Store struct {
	h *boltdb.Handle

	mu     sync.Mutex
	claims map[string]claim
	values *boltdb.WriteBehind[value] // committed, not yet written (Clear holds its flushes off)
}

var _ order.Store = (*Store)(nil)

// New returns a store in the file behind h; expired values are swept every 10 minutes.
func New(h *boltdb.Handle) *Store {
	// A failed write of a value is kept unless a newer value was committed meanwhile.
	s := &Store{h: h, claims: map[string]claim{},
		values: boltdb.NewWriteBehind(FlushInterval, writeValues, func(failed, cur value) bool { return cur.v < failed.v })}
	sweep := boltdb.Every(10*time.Minute, func(*boltdb.DB) { _ = s.Sweep(time.Now()) })
	h.Use(boltdb.Service{Buckets: [][]byte{bucket}, Tasks: []boltdb.Task{sweep, s.values.Task}, Unavailable: order.ErrUnavailable})
	return s
}

// errUnavailable wraps every outage of this store: it reads "order store unavailable", and
// errors.Is(err, storeerr.ErrUnavailable) holds for it.
var errUnavailable = storeerr.Unavailable("order")

func (s *Store) db() (*boltdb.DB, error) {
	db, err := s.h.DB()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnavailable, err)
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
func (s *Store) Claim(ctx context.Context, key, v string, ttl time.Duration) (order.Verdict, string, error) {
	db, err := s.db()
	if err != nil {
		return 0, "", err
	}
	now := time.Now()
	var b [8]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	s.mu.Lock()
	if c, ok := s.claims[key]; ok && c.until.After(now) {
		s.mu.Unlock()
		return order.Busy, "", nil
	}
	// Held from here: no commit of key can happen until this claim ends.
	s.claims[key] = claim{token: tok, until: now.Add(ttl)}
	newest, found := s.memory(key, now)
	s.mu.Unlock()
	if !found {
		// Not committed since the last flush: the file has it (a flush clears its batch
		// from memory only once written).
		if err := db.View(func(tx *bolt.Tx) error {
			newest, found = decode(tx.Bucket(bucket).Get([]byte(key)), now)
			return nil
		}); err != nil {
			s.drop(key, tok)
			return 0, "", err
		}
	}
	if found && newest > v {
		s.drop(key, tok)
		return order.Stale, "", nil
	}
	return order.Pass, tok, nil
}

// memory returns key's value committed but not yet on disk; s.mu held.
func (s *Store) memory(key string, now time.Time) (string, bool) {
	x, ok := s.values.Find(key, func(x value) bool { return x.exp > now.UnixNano() })
	return x.v, ok
}

func (s *Store) drop(key, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[key]; ok && c.token == token {
		delete(s.claims, key)
	}
}

// Commit implements order.Store: under the claims' lock, so it is atomic with them; the
// flusher writes it within FlushInterval.
func (s *Store) Commit(ctx context.Context, key, v, token string, window time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[key]; !ok || c.token != token {
		return nil
	}
	delete(s.claims, key)
	now := time.Now()
	if cur, ok := s.memory(key, now); ok && cur > v {
		return nil // an older value never replaces a newer one (the file is checked at flush)
	}
	s.values.Put(key, value{v: v, exp: now.Add(window).UnixNano()})
	return nil
}

// Release implements order.Store.
func (s *Store) Release(ctx context.Context, key, token string) error {
	s.drop(key, token)
	return nil
}

// writeValues writes a batch of committed values in the write-behind's transaction,
// keeping the newer of file and memory.
func writeValues(tx *bolt.Tx, keys []string, batch map[string]value) error {
	now := time.Now()
	b := tx.Bucket(bucket)
	for _, k := range keys {
		x := batch[k]
		if cur, ok := decode(b.Get([]byte(k)), now); ok && cur > x.v {
			continue
		}
		v := make([]byte, 8, 8+len(x.v))
		binary.BigEndian.PutUint64(v, uint64(x.exp))
		if err := b.Put([]byte(k), append(v, x.v...)); err != nil {
			return err
		}
	}
	return nil
}

// Get implements order.Store: memory first (committed, not yet flushed), then the file.
func (s *Store) Get(ctx context.Context, key string) (order.Record, bool, error) {
	db, err := s.db()
	if err != nil {
		return order.Record{}, false, err
	}
	now := time.Now()
	x, ok := s.values.Find(key, nil)
	if ok && x.exp > now.UnixNano() {
		return order.Record{Value: x.v, Expires: time.Unix(0, x.exp)}, true, nil
	}
	var rec order.Record
	found := false
	err = db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucket).Get([]byte(key))
		if v, live := decode(raw, now); live {
			rec, found = order.Record{Value: v, Expires: time.Unix(0, int64(binary.BigEndian.Uint64(raw)))}, true
		}
		return nil
	})
	if err != nil {
		return order.Record{}, false, fmt.Errorf("%w: reading the order of %q: %w", errUnavailable, key, err)
	}
	return rec, found, nil
}

// Clear implements order.Store: from memory and the file, between two flushes.
func (s *Store) Clear(ctx context.Context, key string) (bool, error) {
	db, err := s.db()
	if err != nil {
		return false, err
	}
	var found bool
	s.values.Hold(func() { // no flush writes key back meanwhile
		now := time.Now()
		s.mu.Lock()
		x, inMemory := s.values.Take(key) // nothing is being written while Hold runs
		s.mu.Unlock()
		found = inMemory && x.exp > now.UnixNano()
		err = db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			raw := b.Get([]byte(key))
			if raw == nil {
				return nil
			}
			if _, live := decode(raw, now); live {
				found = true
			}
			return b.Delete([]byte(key))
		})
	})
	if err != nil {
		return false, fmt.Errorf("%w: clearing the order of %q: %w", errUnavailable, key, err)
	}
	return found, nil
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
