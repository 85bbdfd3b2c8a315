package boltqueue

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	bolt "go.etcd.io/bbolt"
)

// Status implements queue.Store.
func (s *Store) Status(ctx context.Context, endpoint string) (queue.EndpointStatus, error) {
	out, err := s.Statuses(ctx, []string{endpoint})
	if err != nil {
		return queue.EndpointStatus{}, err
	}
	return out[0], nil
}

// Statuses implements queue.Store: one read transaction.
func (s *Store) Statuses(ctx context.Context, endpoints []string) ([]queue.EndpointStatus, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	out := make([]queue.EndpointStatus, len(endpoints))
	err = db.View(func(tx *bolt.Tx) error {
		for i, endpoint := range endpoints {
			st := getStatus(tx, endpoint)
			out[i] = queue.EndpointStatus{Delivered: st.Delivered, Last: st.Last,
				Pending: getCount(tx, endpoint, countPending), Dead: getCount(tx, endpoint, countDead)}
			out[i].Breaker = getBreaker(tx, endpoint)
			prefix := epPrefix(endpoint)
			if k, _ := tx.Bucket(bDue).Cursor().Seek(prefix); len(k) >= len(prefix)+8 && bytes.HasPrefix(k, prefix) {
				out[i].OldestDue = time.Unix(0, int64(binary.BigEndian.Uint64(k[len(prefix):]))).UTC()
			}
			if reason := tx.Bucket(bDisabled).Get([]byte(endpoint)); reason != nil {
				out[i].Disabled, out[i].Reason = true, string(reason)
			}
		}
		return nil
	})
	return out, err
}

// SetDisabled implements queue.Store.
func (s *Store) SetDisabled(ctx context.Context, endpoint string, disabled bool, reason string) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		if !disabled {
			return tx.Bucket(bDisabled).Delete([]byte(endpoint))
		}
		return tx.Bucket(bDisabled).Put([]byte(endpoint), []byte(reason))
	})
}

// Abandon implements queue.Store.
func (s *Store) Abandon(ctx context.Context, endpoint, reason string) (int, error) {
	db, err := s.db()
	if err != nil {
		return 0, err
	}
	var ids []string
	err = db.Update(func(tx *bolt.Tx) error {
		ids = ids[:0]
		if err := tx.Bucket(bAbandoned).Put([]byte(endpoint), nil); err != nil {
			return err
		}
		prefix := epPrefix(endpoint)
		type due struct {
			key []byte
			id  string
		}
		var dues []due
		c := tx.Bucket(bDue).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			dues = append(dues, due{append([]byte(nil), k...), string(k[len(prefix)+8:])})
		}
		now := time.Now()
		for _, d := range dues {
			if err := tx.Bucket(bDue).Delete(d.key); err != nil {
				return err
			}
			r, ok := getRecord(tx, d.id)
			if !ok || r.State != queue.Pending {
				continue
			}
			r.State, r.DeadAt = queue.Dead, now.UnixNano()
			r.Attempts = append(r.Attempts, queue.Attempt{At: now.UTC(), Error: reason})
			if len(r.Attempts) > queue.MaxAttemptsKept {
				r.Attempts = r.Attempts[len(r.Attempts)-queue.MaxAttemptsKept:]
			}
			if err := tx.Bucket(bDead).Put(epKey(endpoint, r.DeadAt, r.ID), nil); err != nil {
				return err
			}
			if err := addCount(tx, endpoint, countPending, -1); err != nil {
				return err
			}
			if err := addCount(tx, endpoint, countDead, 1); err != nil {
				return err
			}
			if err := putRecord(tx, &r); err != nil {
				return err
			}
			ids = append(ids, r.ID)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("abandon: %w", err)
	}
	s.mu.Lock()
	for _, id := range ids {
		delete(s.leases, id)
	}
	s.mu.Unlock()
	return len(ids), nil
}

// Due implements queue.DueChecker: one read transaction, one seek per endpoint.
func (s *Store) Due(ctx context.Context, endpoints []string, now time.Time) ([]bool, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(endpoints))
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bDue).Cursor()
		for i, ep := range endpoints {
			prefix := epPrefix(ep)
			limit := append(append([]byte{}, prefix...), u64(now.UnixNano())...)
			k, _ := c.Seek(prefix)
			out[i] = k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k[:len(prefix)+8], limit) <= 0
		}
		return nil
	})
	return out, err
}

// Abandoned implements queue.Store. An abandoned endpoint left with neither dead letters
// nor pending deliveries is forgotten.
func (s *Store) Abandoned(ctx context.Context) ([]string, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	var out, forget []string
	has := func(tx *bolt.Tx, bucket []byte, ep string) bool {
		prefix := epPrefix(ep)
		k, _ := tx.Bucket(bucket).Cursor().Seek(prefix)
		return k != nil && bytes.HasPrefix(k, prefix)
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bAbandoned).ForEach(func(k, _ []byte) error {
			ep := string(k)
			switch {
			case has(tx, bDead, ep):
				out = append(out, ep)
			case !has(tx, bDue, ep):
				forget = append(forget, ep)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("abandoned endpoints: %w", err)
	}
	if len(forget) > 0 {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, ep := range forget {
				if !has(tx, bDead, ep) && !has(tx, bDue, ep) {
					if err := tx.Bucket(bAbandoned).Delete([]byte(ep)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("abandoned endpoints: %w", err)
		}
	}
	return out, nil
}
