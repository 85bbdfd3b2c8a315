// Package boltquarantine keeps the quarantine and drift reports in the embedded bbolt file:
// one bucket per route, holding its items by id (time order), an index of the held ones
// and of the history, their leases and byte counts, and its drift groups. A request is
// held in a batched transaction (one fsync shared by concurrent holds) before its 202.
package boltquarantine

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/receiver/quarantine"
	bolt "go.etcd.io/bbolt"
)

var (
	root = []byte("quarantine") // route -> its bucket

	bItems = []byte("items") // id -> encoded item
	bHeld  = []byte("held")  // id -> size (8 bytes)
	bHist  = []byte("hist")  // id -> size (8 bytes)
	bLease = []byte("lease") // id -> until (unix nanos, 8 bytes) || token
	bDrift = []byte("drift") // group key -> JSON group
	bMeta  = []byte("meta")

	kHeldBytes = []byte("held_bytes")
	kHistBytes = []byte("hist_bytes")
)

// Store is the embedded quarantine store.
type Store struct{ h *boltdb.Handle }

var _ quarantine.Store = (*Store)(nil)

// New returns a store in the file behind h.
func New(h *boltdb.Handle) *Store {
	h.Use(boltdb.Service{Buckets: [][]byte{root}, Unavailable: errUnavailable})
	return &Store{h: h}
}

// errUnavailable wraps every outage of this store.
var errUnavailable = storeerr.Unavailable("quarantine")

func (s *Store) db() (*boltdb.DB, error) {
	db, err := s.h.DB()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	return db, nil
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("quarantine %s: %w", op, err)
}

// route returns route's bucket and its parts, made when create (nil without).
type routeB struct{ b, items, held, hist, lease, drift, meta *bolt.Bucket }

func open(tx *bolt.Tx, route string, create bool) (*routeB, error) {
	top := tx.Bucket(root)
	if top == nil {
		return nil, fmt.Errorf("bucket %s missing", root)
	}
	b := top.Bucket([]byte(route))
	if b == nil {
		if !create {
			return nil, nil
		}
		var err error
		if b, err = top.CreateBucket([]byte(route)); err != nil {
			return nil, err
		}
		for _, n := range [][]byte{bItems, bHeld, bHist, bLease, bDrift, bMeta} {
			if _, err := b.CreateBucket(n); err != nil {
				return nil, err
			}
		}
	}
	return &routeB{b: b, items: b.Bucket(bItems), held: b.Bucket(bHeld), hist: b.Bucket(bHist), lease: b.Bucket(bLease),
		drift: b.Bucket(bDrift), meta: b.Bucket(bMeta)}, nil
}

func u64(v []byte) int64 {
	if len(v) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func b64(n int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}

func (r *routeB) add(key []byte, d int64) error {
	return r.meta.Put(key, b64(u64(r.meta.Get(key))+d))
}

// Hold implements quarantine.Store.
func (s *Store) Hold(ctx context.Context, it *quarantine.Item, lim quarantine.Limits) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	lim = lim.WithDefaults()
	it.State = quarantine.Held
	raw, err := quarantine.Encode(it)
	if err != nil {
		return err
	}
	size := it.Size()
	return wrap("hold", db.Batch(func(tx *bolt.Tx) error {
		r, err := open(tx, it.Route, true)
		if err != nil {
			return err
		}
		held, hist := u64(r.meta.Get(kHeldBytes)), u64(r.meta.Get(kHistBytes))
		if held+size > lim.MaxBytes {
			return quarantine.ErrFull
		}
		// Room is made from the history, oldest first.
		c := r.hist.Cursor()
		for k, v := c.First(); k != nil && held+hist+size > lim.MaxBytes; k, v = c.First() {
			hist -= u64(v)
			id := append([]byte(nil), k...)
			if err := c.Delete(); err != nil {
				return err
			}
			if err := r.items.Delete(id); err != nil {
				return err
			}
		}
		if err := r.items.Put([]byte(it.ID), raw); err != nil {
			return err
		}
		if err := r.held.Put([]byte(it.ID), b64(size)); err != nil {
			return err
		}
		if err := r.meta.Put(kHistBytes, b64(hist)); err != nil {
			return err
		}
		return r.meta.Put(kHeldBytes, b64(held+size))
	}))
}

// Get implements quarantine.Store.
func (s *Store) Get(ctx context.Context, route, id string) (quarantine.Item, error) {
	db, err := s.db()
	if err != nil {
		return quarantine.Item{}, err
	}
	var it quarantine.Item
	err = db.View(func(tx *bolt.Tx) error {
		r, err := open(tx, route, false)
		if err != nil {
			return err
		}
		if r == nil {
			return quarantine.ErrNotFound
		}
		raw := r.items.Get([]byte(id))
		if raw == nil {
			return quarantine.ErrNotFound
		}
		it, err = quarantine.Decode(raw)
		return err
	})
	return it, wrap("get", err)
}

// List implements quarantine.Store.
func (s *Store) List(ctx context.Context, route string, f quarantine.Filter) ([]quarantine.Item, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var out []quarantine.Item
	err = db.View(func(tx *bolt.Tx) error {
		r, err := open(tx, route, false)
		if err != nil || r == nil {
			return err
		}
		index := r.held
		if f.State != "" && f.State != quarantine.Held {
			index = r.hist
		}
		c := index.Cursor()
		k, _ := c.First()
		if f.After != "" {
			if k, _ = c.Seek([]byte(f.After)); k != nil && string(k) == f.After {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(out) < f.Limit; k, _ = c.Next() {
			it, err := quarantine.Decode(r.items.Get(k))
			if err != nil {
				return err
			}
			if f.State != "" && it.State != f.State {
				continue
			}
			out = append(out, it)
		}
		return nil
	})
	return out, wrap("list", err)
}

// leased returns the token of id's lease if it has not ended at now.
func leased(r *routeB, id []byte, now time.Time) (string, bool) {
	v := r.lease.Get(id)
	if len(v) < 8 || u64(v) <= now.UnixNano() {
		return "", false
	}
	return string(v[8:]), true
}

// Lease implements quarantine.Store.
func (s *Store) Lease(ctx context.Context, route, id, token string, ttl time.Duration) (quarantine.Item, bool, error) {
	db, err := s.db()
	if err != nil {
		return quarantine.Item{}, false, err
	}
	var it quarantine.Item
	ok := false
	err = db.Update(func(tx *bolt.Tx) error {
		r, err := open(tx, route, false)
		if err != nil || r == nil {
			return err
		}
		now := time.Now()
		if r.held.Get([]byte(id)) == nil {
			return nil
		}
		if _, busy := leased(r, []byte(id), now); busy {
			return nil
		}
		if it, err = quarantine.Decode(r.items.Get([]byte(id))); err != nil {
			return err
		}
		ok = true
		return r.lease.Put([]byte(id), append(b64(now.Add(ttl).UnixNano()), token...))
	})
	return it, ok, wrap("lease", err)
}

// Settle implements quarantine.Store.
func (s *Store) Settle(ctx context.Context, route, id, token string, o quarantine.Outcome, now time.Time) (bool, error) {
	db, err := s.db()
	if err != nil {
		return false, err
	}
	ok := false
	err = db.Update(func(tx *bolt.Tx) error {
		r, err := open(tx, route, false)
		if err != nil || r == nil {
			return err
		}
		key := []byte(id)
		if r.held.Get(key) == nil {
			return nil
		}
		if cur, busy := leased(r, key, now); busy && cur != token {
			return nil
		}
		it, err := quarantine.Decode(r.items.Get(key))
		if err != nil {
			return err
		}
		oldSize := u64(r.held.Get(key))
		quarantine.Apply(&it, o, now)
		raw, err := quarantine.Encode(&it)
		if err != nil {
			return err
		}
		size := it.Size()
		if err := r.lease.Delete(key); err != nil {
			return err
		}
		if err := r.items.Put(key, raw); err != nil {
			return err
		}
		if it.State == quarantine.Held {
			ok = true
			if err := r.held.Put(key, b64(size)); err != nil {
				return err
			}
			return r.add(kHeldBytes, size-oldSize)
		}
		if err := r.held.Delete(key); err != nil {
			return err
		}
		if err := r.hist.Put(key, b64(size)); err != nil {
			return err
		}
		if err := r.add(kHeldBytes, -oldSize); err != nil {
			return err
		}
		ok = true
		return r.add(kHistBytes, size)
	})
	return ok, wrap("settle", err)
}

// Stats implements quarantine.Store.
func (s *Store) Stats(ctx context.Context, route string) (quarantine.Stats, error) {
	db, err := s.db()
	if err != nil {
		return quarantine.Stats{}, err
	}
	var st quarantine.Stats
	err = db.View(func(tx *bolt.Tx) error {
		r, err := open(tx, route, false)
		if err != nil || r == nil {
			return err
		}
		st.Held, st.History = r.held.Stats().KeyN, r.hist.Stats().KeyN
		st.HeldBytes = u64(r.meta.Get(kHeldBytes))
		st.Bytes = st.HeldBytes + u64(r.meta.Get(kHistBytes))
		if k, _ := r.held.Cursor().First(); k != nil {
			st.Oldest = quarantine.IDTime(string(k))
		}
		return nil
	})
	return st, wrap("stats", err)
}

// Trim implements quarantine.Store: in chunks of 1,000 deletions per transaction.
func (s *Store) Trim(ctx context.Context, route string, lim quarantine.Limits, now time.Time) (int, error) {
	db, err := s.db()
	if err != nil {
		return 0, err
	}
	cut := []byte(quarantine.IDBefore(now.Add(-lim.WithDefaults().MaxAge)))
	expired := 0
	for _, which := range [][]byte{bHeld, bHist} {
		for {
			n := 0
			err := db.Update(func(tx *bolt.Tx) error {
				r, err := open(tx, route, false)
				if err != nil || r == nil {
					return err
				}
				index, sizeKey := r.held, kHeldBytes
				if bytes.Equal(which, bHist) {
					index, sizeKey = r.hist, kHistBytes
				}
				c := index.Cursor()
				var freed int64
				for k, v := c.First(); k != nil && bytes.Compare(k, cut) < 0 && n < 1000; k, v = c.First() {
					id := append([]byte(nil), k...)
					freed += u64(v)
					if err := c.Delete(); err != nil {
						return err
					}
					if err := r.items.Delete(id); err != nil {
						return err
					}
					if err := r.lease.Delete(id); err != nil {
						return err
					}
					n++
				}
				return r.add(sizeKey, -freed)
			})
			if err != nil {
				return expired, wrap("trim", err)
			}
			if bytes.Equal(which, bHeld) {
				expired += n
			}
			if n < 1000 {
				break
			}
		}
	}
	return expired, nil
}

// AddDrift implements quarantine.Store.
func (s *Store) AddDrift(ctx context.Context, route string, gs []quarantine.Group) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	return wrap("drift", db.Update(func(tx *bolt.Tx) error {
		r, err := open(tx, route, true)
		if err != nil {
			return err
		}
		n := r.drift.Stats().KeyN
		for _, d := range gs {
			key := []byte(quarantine.GroupKey(d.Kind, d.Pointer, d.Message))
			raw := r.drift.Get(key)
			if raw == nil && n >= quarantine.MaxGroups && d.Pointer != quarantine.OtherPointer {
				d = quarantine.Other(d)
				key = []byte(quarantine.GroupKey(d.Kind, d.Pointer, d.Message))
				raw = r.drift.Get(key)
			}
			var g quarantine.Group
			if raw != nil {
				if err := json.Unmarshal(raw, &g); err != nil {
					return err
				}
				quarantine.Merge(&g, d)
			} else {
				g = d
				n++
			}
			b, err := json.Marshal(g)
			if err != nil {
				return err
			}
			if err := r.drift.Put(key, b); err != nil {
				return err
			}
		}
		return nil
	}))
}

// Drift implements quarantine.Store.
func (s *Store) Drift(ctx context.Context, route string) ([]quarantine.Group, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	out := []quarantine.Group{}
	err = db.View(func(tx *bolt.Tx) error {
		r, err := open(tx, route, false)
		if err != nil || r == nil {
			return err
		}
		return r.drift.ForEach(func(k, v []byte) error {
			var g quarantine.Group
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("drift group %q: %w", strings.ReplaceAll(string(k), "\x00", " "), err)
			}
			out = append(out, g)
			return nil
		})
	})
	quarantine.SortGroups(out)
	return out, wrap("drift", err)
}

// ClearDrift implements quarantine.Store.
func (s *Store) ClearDrift(ctx context.Context, route string) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	return wrap("clear drift", db.Update(func(tx *bolt.Tx) error {
		r, err := open(tx, route, false)
		if err != nil || r == nil {
			return err
		}
		if err := r.b.DeleteBucket(bDrift); err != nil {
			return err
		}
		_, err = r.b.CreateBucket(bDrift)
		return err
	}))
}
