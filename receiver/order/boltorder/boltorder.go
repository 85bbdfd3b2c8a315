// Package boltorder keeps the stale-event guard's newest values in the embedded bbolt
// file. Claims live in memory (one process holds the file), and so do committed values
// until a background flusher writes them, every 20 ms, in one transaction: like the dedupe
// store's marks, the request path never waits for an fsync. A claim and a commit are
// atomic under one lock, so two events of one record never both pass; a power cut can
// lose the last interval's values (an older event of those records could then pass once).
package boltorder

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
	"github.com/hookgate/hookgate/receiver/order"
	bolt "go.etcd.io/bbolt"
)

var (
	bucket       = []byte("order")           // key -> expiry (unix nanos, big endian) || value
	bucketExpiry = []byte("order_by_expiry") // expiry || key -> nothing, for sweeping
	// bucketMeta holds the index's state: metaIndexed once every record written before the
	// index existed has an entry, and until then metaBackfilled, the last key indexed.
	bucketMeta = []byte("order_meta")
)

var (
	metaIndexed    = []byte("expiry_index")
	metaBackfilled = []byte("expiry_index_after")
)

// sweepChunk is how many records one sweep transaction deletes (or indexes, on a file
// written before the index): a sweep never holds the write lock over the whole bucket.
const sweepChunk = 1000

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
	h.Use(boltdb.Service{Buckets: [][]byte{bucket, bucketExpiry, bucketMeta}, Tasks: []boltdb.Task{sweep, s.values.Task}, Unavailable: order.ErrUnavailable})
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
// keeping the newer of file and memory, and their expiry index entries.
func writeValues(tx *bolt.Tx, keys []string, batch map[string]value) error {
	now := time.Now()
	b, byExp := tx.Bucket(bucket), tx.Bucket(bucketExpiry)
	expiries := make([][]byte, 0, len(keys))
	for _, k := range keys {
		x := batch[k]
		old := b.Get([]byte(k))
		if cur, ok := decode(old, now); ok && cur > x.v {
			continue
		}
		if len(old) >= 8 {
			if err := byExp.Delete(expiryKey(old, k)); err != nil {
				return err
			}
		}
		v := make([]byte, 8, 8+len(x.v))
		binary.BigEndian.PutUint64(v, uint64(x.exp))
		if err := b.Put([]byte(k), append(v, x.v...)); err != nil {
			return err
		}
		expiries = append(expiries, expiryKey(v, k))
	}
	// In the index's own order, which bbolt inserts without shifting nodes.
	sort.Slice(expiries, func(i, j int) bool { return bytes.Compare(expiries[i], expiries[j]) < 0 })
	for _, ek := range expiries {
		if err := byExp.Put(ek, nil); err != nil {
			return err
		}
	}
	return nil
}

// expiryKey is the index key of key whose stored value is raw (its first 8 bytes are the
// expiry): expiry || key.
func expiryKey(raw []byte, key string) []byte {
	k := make([]byte, 8+len(key))
	copy(k, raw[:8])
	copy(k[8:], key)
	return k
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
			if len(raw) >= 8 {
				if err := tx.Bucket(bucketExpiry).Delete(expiryKey(raw, key)); err != nil {
					return err
				}
			}
			return b.Delete([]byte(key))
		})
	})
	if err != nil {
		return false, fmt.Errorf("%w: clearing the order of %q: %w", errUnavailable, key, err)
	}
	return found, nil
}

// Sweep deletes values whose window ended before now, and lapsed claims. It walks the
// expiry index, sweepChunk entries per transaction; a file written before the index
// existed is first indexed (and its expired values deleted) the same way, chunk by chunk.
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
	if err := backfill(db, now); err != nil {
		return fmt.Errorf("indexing the order store's expiries: %w", err)
	}
	for {
		n := 0
		err := db.Update(func(tx *bolt.Tx) error {
			b, byExp := tx.Bucket(bucket), tx.Bucket(bucketExpiry)
			c := byExp.Cursor()
			for k, _ := c.First(); k != nil && n < sweepChunk; k, _ = c.First() {
				if int64(binary.BigEndian.Uint64(k[:8])) >= now.UnixNano() {
					break // decode keeps a value live until its expiry has passed
				}
				key := append([]byte(nil), k[8:]...)
				if err := c.Delete(); err != nil {
					return err
				}
				// An entry outlived by its value (rewritten with a later expiry by a release
				// without the index) deletes nothing: the value goes only once it has expired.
				if raw := b.Get(key); raw != nil {
					if _, live := decode(raw, now); live {
						n++
						continue
					}
					if err := b.Delete(key); err != nil {
						return err
					}
				}
				n++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("sweeping the order store: %w", err)
		}
		if n < sweepChunk {
			return nil
		}
	}
}

// backfill indexes the records of a file written before the expiry index, deleting those
// that have expired, sweepChunk records per transaction, resuming after the last key it
// indexed; it marks the file indexed when it reaches the end. On an indexed file it is one
// read.
func backfill(db *boltdb.DB, now time.Time) error {
	indexed := false
	if err := db.View(func(tx *bolt.Tx) error {
		indexed = tx.Bucket(bucketMeta).Get(metaIndexed) != nil
		return nil
	}); err != nil || indexed {
		return err
	}
	for done := false; !done; {
		err := db.Update(func(tx *bolt.Tx) error {
			b, byExp, meta := tx.Bucket(bucket), tx.Bucket(bucketExpiry), tx.Bucket(bucketMeta)
			c := b.Cursor()
			var k, v []byte
			if after := meta.Get(metaBackfilled); after != nil {
				after = append([]byte(nil), after...)
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			} else {
				k, v = c.First()
			}
			var last []byte
			for n := 0; k != nil && n < sweepChunk; n++ {
				last = append(last[:0], k...)
				if _, live := decode(v, now); live {
					if err := byExp.Put(expiryKey(v, string(k)), nil); err != nil {
						return err
					}
					k, v = c.Next()
					continue
				}
				if err := c.Delete(); err != nil {
					return err
				}
				// After a Delete the cursor stands before the next key.
				k, v = c.Seek(last)
			}
			if k == nil {
				done = true
				if err := meta.Delete(metaBackfilled); err != nil {
					return err
				}
				return meta.Put(metaIndexed, []byte{1})
			}
			return meta.Put(metaBackfilled, last)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
