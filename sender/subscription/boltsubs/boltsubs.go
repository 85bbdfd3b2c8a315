// Package boltsubs keeps subscriptions in the embedded bbolt file. One process holds the
// file, so change announcements stay in it (the old and the new config during a reload
// both watch).
package boltsubs

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/sender/subscription"
	bolt "go.etcd.io/bbolt"
)

var bucket = []byte("subscriptions")

// Store is the embedded subscription store.
type Store struct {
	h *boltdb.Handle

	mu       sync.Mutex
	watchers map[int]func([]string)
	next     int
}

var _ subscription.Store = (*Store)(nil)

// New returns a store in the file behind h; nothing is opened until first use.
func New(h *boltdb.Handle) *Store {
	h.Use(boltdb.Service{Buckets: [][]byte{bucket}, Unavailable: subscription.ErrUnavailable})
	return &Store{h: h, watchers: map[int]func([]string){}}
}

// errUnavailable wraps every outage of this store: it reads "subscription store unavailable", and
// errors.Is(err, storeerr.ErrUnavailable) holds for it.
var errUnavailable = storeerr.Unavailable("subscription")

func (s *Store) db() (*boltdb.DB, error) {
	db, err := s.h.DB()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	return db, nil
}

func (s *Store) announce(id string) {
	s.mu.Lock()
	ws := make([]func([]string), 0, len(s.watchers))
	for _, w := range s.watchers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w([]string{id})
	}
}

// Put implements subscription.Store.
func (s *Store) Put(ctx context.Context, sub subscription.Subscription, prev int64) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	b, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	// Batch: concurrent creates share one commit (and its fsync); each returns once durable.
	err = db.Batch(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		var cur int64
		if v := bk.Get([]byte(sub.ID)); v != nil {
			var old subscription.Subscription
			if err := json.Unmarshal(v, &old); err != nil {
				return fmt.Errorf("subscription %s: %w", sub.ID, err)
			}
			cur = old.Version
		}
		if cur != prev {
			return subscription.ErrVersion
		}
		return bk.Put([]byte(sub.ID), b)
	})
	if err != nil {
		return fmt.Errorf("storing subscription: %w", err)
	}
	s.announce(sub.ID)
	return nil
}

// Delete implements subscription.Store.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	db, err := s.db()
	if err != nil {
		return false, err
	}
	found := false
	err = db.Batch(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		found = bk.Get([]byte(id)) != nil
		if !found {
			return nil
		}
		return bk.Delete([]byte(id))
	})
	if err != nil {
		return false, fmt.Errorf("deleting subscription: %w", err)
	}
	if found {
		s.announce(id)
	}
	return found, nil
}

// Get implements subscription.Store.
func (s *Store) Get(ctx context.Context, id string) (subscription.Subscription, error) {
	db, err := s.db()
	if err != nil {
		return subscription.Subscription{}, err
	}
	var out subscription.Subscription
	err = db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("subscription %s: %w", id, subscription.ErrNotFound)
		}
		return json.Unmarshal(v, &out)
	})
	return out, err
}

// All implements subscription.Store.
func (s *Store) All(ctx context.Context) ([]subscription.Subscription, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	var out []subscription.Subscription
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var sub subscription.Subscription
			if err := json.Unmarshal(v, &sub); err != nil {
				return fmt.Errorf("subscription %s: %w", k, err)
			}
			out = append(out, sub)
			return nil
		})
	})
	return out, err
}

// Watch implements subscription.Store. Changes are announced synchronously by the writer;
// a mutex per watcher keeps its calls one at a time.
func (s *Store) Watch(changed func([]string)) (stop func()) {
	var one sync.Mutex
	s.mu.Lock()
	id := s.next
	s.next++
	s.watchers[id] = func(ids []string) {
		one.Lock()
		defer one.Unlock()
		changed(ids)
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.watchers, id)
		s.mu.Unlock()
	}
}
