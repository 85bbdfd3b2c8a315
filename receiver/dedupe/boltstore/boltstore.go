// Package boltstore is the embedded dedupe store: one bbolt file on the local disk.
//
// Durability is sized to what a record promises. A claim lives only in memory: if the
// process dies the claim is gone, which is what an expired claim means anyway. A processed
// mark is written to the file by a background flusher that groups every mark of the last
// FlushInterval into one transaction (one fsync), so the request path never waits for the
// disk; a power cut can lose at most that interval's marks, i.e. let one duplicate through.
// A clean stop flushes everything.
package boltstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/receiver/dedupe"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketMarks  = []byte("dedupe")           // key -> expiry (unix nanos, big endian)
	bucketExpiry = []byte("dedupe_by_expiry") // expiry || key -> nothing, for sweeping
)

// Defaults.
const (
	DefaultFlushInterval = 20 * time.Millisecond
	DefaultSweepInterval = time.Minute
)

// Options tune a Store.
type Options struct {
	// FlushInterval is how long marks gather before one write. Default 20ms.
	FlushInterval time.Duration
	// SweepInterval is how often expired marks are deleted. Default 1m.
	SweepInterval time.Duration
}

type claim struct {
	tok     dedupe.Token
	expires time.Time
}

// Store is the embedded dedupe store.
type Store struct {
	h    *boltdb.Handle
	opts Options

	mu       sync.Mutex
	inflight map[string]claim
	marks    *boltdb.WriteBehind[time.Time] // committed marks (their expiry) not yet on disk
}

var _ dedupe.Store = (*Store)(nil)

// New returns a store over h. The file is opened, and the background flusher and sweeper
// started, on first use; closing h stops them, the flusher writing what is pending.
func New(h *boltdb.Handle, opts Options) *Store {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	s := &Store{
		h:        h,
		opts:     opts,
		inflight: map[string]claim{},
		// A newer commit of the same key wins over a failed write of it.
		marks: boltdb.NewWriteBehind(opts.FlushInterval, writeMarks, func(failed, cur time.Time) bool { return cur.Before(failed) }),
	}
	h.Use(boltdb.Service{Buckets: [][]byte{bucketMarks, bucketExpiry},
		Tasks:       []boltdb.Task{s.marks.Task, boltdb.Every(opts.SweepInterval, s.Sweep)},
		Unavailable: dedupe.ErrUnavailable})
	return s
}

// errUnavailable wraps every outage of this store: it reads "dedupe store unavailable", and
// errors.Is(err, storeerr.ErrUnavailable) holds for it.
var errUnavailable = storeerr.Unavailable("dedupe")

// db returns the open file (opening it on first use).
func (s *Store) db() (*boltdb.DB, error) {
	db, err := s.h.DB()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	return db, nil
}

func newToken() dedupe.Token {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return dedupe.Token(hex.EncodeToString(b[:]))
}

// inMemory tells what the in-memory state knows of key: in flight, processed (committed
// and not yet on disk, or being written), or nothing. The caller holds s.mu.
func (s *Store) inMemory(key string, now time.Time) (dedupe.State, bool) {
	if c, ok := s.inflight[key]; ok && now.Before(c.expires) {
		return dedupe.InFlight, true
	}
	if _, ok := s.marks.Find(key, func(exp time.Time) bool { return now.Before(exp) }); ok {
		return dedupe.Processed, true
	}
	return 0, false
}

// Claim implements dedupe.Store. The file is read without holding the store's lock, so
// concurrent claims do not queue behind each other's read transactions: a mark leaves the
// in-memory maps only after its transaction has committed, so a key not in memory when the
// read starts is on disk if it was ever committed.
func (s *Store) Claim(_ context.Context, key string, ttl time.Duration) (dedupe.State, dedupe.Token, error) {
	now := time.Now()
	s.mu.Lock()
	db, err := s.db()
	if err != nil {
		s.mu.Unlock()
		return 0, "", err
	}
	if st, ok := s.inMemory(key, now); ok {
		s.mu.Unlock()
		return st, "", nil
	}
	s.mu.Unlock()
	processed := false
	if err := db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMarks).Get([]byte(key)); len(v) == 8 {
			processed = now.UnixNano() < int64(binary.BigEndian.Uint64(v))
		}
		return nil
	}); err != nil {
		return 0, "", fmt.Errorf("%w: reading: %w", errUnavailable, err)
	}
	if processed {
		return dedupe.Processed, "", nil
	}
	tok := newToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.inMemory(key, now); ok { // claimed (or committed) meanwhile by another request
		return st, "", nil
	}
	s.inflight[key] = claim{tok: tok, expires: now.Add(ttl)}
	return dedupe.New, tok, nil
}

// Commit implements dedupe.Store.
func (s *Store) Commit(_ context.Context, key string, window time.Duration) error {
	s.mu.Lock()
	if _, err := s.db(); err != nil {
		s.mu.Unlock()
		return err
	}
	delete(s.inflight, key)
	s.marks.Put(key, time.Now().Add(window))
	s.mu.Unlock()
	return nil
}

// Release implements dedupe.Store.
func (s *Store) Release(_ context.Context, key string, tok dedupe.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.inflight[key]; ok && c.tok == tok {
		delete(s.inflight, key)
	}
	return nil
}

// writeMarks writes a batch of committed marks (key -> expiry) in the write-behind's
// transaction. Keys come in order, which is what a B+tree inserts fastest; marks stay
// readable in memory until the transaction has committed.
func writeMarks(tx *bolt.Tx, keys []string, batch map[string]time.Time) error {
	marks, byExp := tx.Bucket(bucketMarks), tx.Bucket(bucketExpiry)
	// Both indexes are written in their own key order: bbolt inserts into a node by
	// shifting it, so the time-ordered expiry keys (which all land at the end of the
	// index) cost O(n) per flush in order and O(n²) out of it.
	expiries := make([][]byte, 0, len(keys))
	for _, k := range keys {
		exp := batch[k]
		if old := marks.Get([]byte(k)); len(old) == 8 {
			_ = byExp.Delete(expiryKey(int64(binary.BigEndian.Uint64(old)), k))
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(exp.UnixNano()))
		if err := marks.Put([]byte(k), v[:]); err != nil {
			return err
		}
		expiries = append(expiries, expiryKey(exp.UnixNano(), k))
	}
	sort.Slice(expiries, func(i, j int) bool { return bytes.Compare(expiries[i], expiries[j]) < 0 })
	for _, ek := range expiries {
		if err := byExp.Put(ek, nil); err != nil {
			return err
		}
	}
	return nil
}

func expiryKey(exp int64, key string) []byte {
	b := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(exp))
	copy(b[8:], key)
	return b
}

// Sweep deletes expired marks from the file and expired claims from memory. It runs in the
// background every SweepInterval.
func (s *Store) Sweep(db *boltdb.DB) {
	now := time.Now()
	s.mu.Lock()
	for k, c := range s.inflight {
		if !now.Before(c.expires) {
			delete(s.inflight, k)
		}
	}
	s.mu.Unlock()
	for {
		n := 0
		_ = db.Update(func(tx *bolt.Tx) error {
			marks, byExp := tx.Bucket(bucketMarks), tx.Bucket(bucketExpiry)
			c := byExp.Cursor()
			for k, _ := c.First(); k != nil && n < 1000; k, _ = c.First() {
				if int64(binary.BigEndian.Uint64(k[:8])) > now.UnixNano() {
					break
				}
				key := append([]byte(nil), k[8:]...)
				if err := c.Delete(); err != nil {
					return err
				}
				if v := marks.Get(key); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) <= now.UnixNano() {
					if err := marks.Delete(key); err != nil {
						return err
					}
				}
				n++
			}
			return nil
		})
		if n < 1000 {
			return
		}
	}
}
