package boltqueue

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	bolt "go.etcd.io/bbolt"
)

// RequeueBatch implements queue.Store: one transaction; delivery i is due one nanosecond
// after delivery i-1.
func (s *Store) RequeueBatch(ctx context.Context, ids []string) (int, error) {
	db, err := s.db()
	if err != nil {
		return 0, err
	}
	n := 0
	err = db.Update(func(tx *bolt.Tx) error {
		n = 0
		now := time.Now().UnixNano()
		for _, id := range ids {
			r, ok := getRecord(tx, id)
			if !ok || r.State == queue.Pending {
				continue
			}
			if err := s.requeue(tx, r, now+int64(n)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("requeue %d deliveries: %w", len(ids), err)
	}
	return n, nil
}

// requeue makes r pending, due now, in tx.
// requeue makes r pending, due at its creation, or at (unix nanos) if that is earlier.
func (s *Store) requeue(tx *bolt.Tx, r record, at int64) error {
	switch r.State {
	case queue.Pending:
		return nil
	case queue.Dead:
		if err := tx.Bucket(bDead).Delete(epKey(r.Endpoint, r.DeadAt, r.ID)); err != nil {
			return err
		}
		if err := addCount(tx, r.Endpoint, countDead, -1); err != nil {
			return err
		}
	case queue.Delivered:
		if err := tx.Bucket(bExpiry).Delete(append(u64(r.Expires), r.ID...)); err != nil {
			return err
		}
		if st := getStatus(tx, r.Endpoint); st.Delivered > 0 {
			st.Delivered--
			if err := putStatus(tx, r.Endpoint, st); err != nil {
				return err
			}
		}
	}
	r.State, r.DeadAt, r.Expires = queue.Pending, 0, 0
	// Due at its creation (it is past, so due now): a requeued delivery comes back in
	// its place among the pending ones, before what was queued after it.
	if r.Created > 0 && r.Created < at {
		at = r.Created
	}
	r.NextAt = at
	if err := tx.Bucket(bDue).Put(epKey(r.Endpoint, r.NextAt, r.ID), nil); err != nil {
		return err
	}
	if err := addCount(tx, r.Endpoint, countPending, 1); err != nil {
		return err
	}
	return putRecord(tx, &r)
}

// Requeue implements queue.Store.
func (s *Store) Requeue(ctx context.Context, id string) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		r, ok := getRecord(tx, id)
		if !ok {
			return fmt.Errorf("delivery %q: %w", id, queue.ErrNotFound)
		}
		return s.requeue(tx, r, time.Now().UnixNano())
	})
}

// RequeueDead implements queue.Store.
func (s *Store) RequeueDead(ctx context.Context, endpoint string) (int, error) {
	db, err := s.db()
	if err != nil {
		return 0, err
	}
	n := 0
	err = db.Update(func(tx *bolt.Tx) error {
		prefix := epPrefix(endpoint)
		var ids []string
		c := tx.Bucket(bDead).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, string(k[len(prefix)+8:]))
		}
		for _, id := range ids {
			if r, ok := getRecord(tx, id); ok {
				if err := s.requeue(tx, r, time.Now().UnixNano()); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

// Resend implements queue.Store.
func (s *Store) Resend(ctx context.Context, endpoint string) (int, error) {
	db, err := s.db()
	if err != nil {
		return 0, err
	}
	n := 0
	err = db.Update(func(tx *bolt.Tx) error {
		n = 0
		prefix := epPrefix(endpoint)
		c := tx.Bucket(bLatest).Cursor()
		now := time.Now()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			r, err := decodeRecord(v, false)
			if err != nil {
				continue
			}
			ev := r.Event
			ev.Created = now.UTC()
			if err := queueNew(tx, queue.NewDeliveryID(endpoint), endpoint, ev, "", now.UnixNano()); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
