package boltqueue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	bolt "go.etcd.io/bbolt"
)

// bBreakers holds each endpoint's circuit breaker (JSON queue.Breaker) while it is not
// plainly closed; Lease reads it. Probe leases live in memory with the delivery leases:
// one process holds the file.
var bBreakers = []byte("q_breakers")

func getBreaker(tx *bolt.Tx, endpoint string) queue.Breaker {
	var b queue.Breaker
	if v := tx.Bucket(bBreakers).Get([]byte(endpoint)); v != nil {
		_ = json.Unmarshal(v, &b)
	}
	return b
}

// gate is Lease's breaker check, with s.mu held: how many deliveries may be leased (max,
// one for a probe, or an error while the breaker holds them back) and whether they probe.
func (s *Store) gate(tx *bolt.Tx, endpoint string, max int, now time.Time, leaseFor time.Duration) (int, bool, error) {
	v := tx.Bucket(bBreakers).Get([]byte(endpoint))
	if v == nil {
		return max, false, nil
	}
	var b queue.Breaker
	if err := json.Unmarshal(v, &b); err != nil || !b.Open() {
		return max, false, nil
	}
	switch {
	case b.Manual:
		return 0, false, &queue.BreakerOpenError{Endpoint: endpoint}
	case now.Before(b.Until):
		return 0, false, &queue.BreakerOpenError{Endpoint: endpoint, Until: b.Until}
	}
	if until, ok := s.probes[endpoint]; ok && until.After(now) {
		return 0, false, &queue.BreakerOpenError{Endpoint: endpoint, Until: until}
	}
	return 1, true, nil
}

// OpenBreaker implements queue.Store.
func (s *Store) OpenBreaker(ctx context.Context, endpoint string, b queue.Breaker) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	b.State = queue.BreakerOpen
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	now := b.Since
	if now.IsZero() {
		now = time.Now()
	}
	// The lease table is locked inside the write transaction, as Finish does (the other
	// order deadlocks with a Finish waiting for the table while holding the writer lock).
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bBreakers).Put([]byte(endpoint), v); err != nil {
			return err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.probes, endpoint)
		_, err := s.rewind(tx, endpoint, now, "")
		return err
	})
	if err != nil {
		return fmt.Errorf("open the breaker of %s: %w", endpoint, err)
	}
	return nil
}

// CloseBreaker implements queue.Store: the state and the rewind in one transaction.
func (s *Store) CloseBreaker(ctx context.Context, endpoint string, since time.Time, keep string) (int, error) {
	db, err := s.db()
	if err != nil {
		return 0, err
	}
	closed, err := json.Marshal(queue.Breaker{State: queue.BreakerClosed, Since: since})
	if err != nil {
		return 0, err
	}
	// The lease table is held inside the transaction (the order Finish takes them), so no
	// lease is taken or dropped while pending deliveries move: a leased one keeps its key.
	n := 0
	err = db.Update(func(tx *bolt.Tx) error {
		n = 0
		was := getBreaker(tx, endpoint)
		if err := tx.Bucket(bBreakers).Put([]byte(endpoint), closed); err != nil {
			return err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.probes, endpoint)
		if !was.Open() {
			return nil
		}
		n, err = s.rewind(tx, endpoint, since, keep)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("close the breaker of %s: %w", endpoint, err)
	}
	return n, nil
}

// rewind makes every pending delivery of endpoint that is not leased and not keep due at
// its creation (or now, if it was created later), so that the probe and the drain take
// the oldest first; it returns how many moved. It runs with s.mu held.
func (s *Store) rewind(tx *bolt.Tx, endpoint string, now time.Time, keep string) (int, error) {
	n := 0
	prefix := epPrefix(endpoint)
	type move struct {
		key []byte
		id  string
	}
	var moves []move
	c := tx.Bucket(bDue).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := string(k[len(prefix)+8:])
		if l, ok := s.leases[id]; (ok && l.until.After(now)) || id == keep {
			continue
		}
		moves = append(moves, move{append([]byte(nil), k...), id})
	}
	due := tx.Bucket(bDue)
	for _, m := range moves {
		r, ok := getRecord(tx, m.id)
		if !ok || r.State != queue.Pending || r.NextAt == min(r.Created, now.UnixNano()) {
			continue // in its place already
		}
		if err := due.Delete(m.key); err != nil {
			return 0, err
		}
		r.NextAt = min(r.Created, now.UnixNano())
		if err := due.Put(epKey(endpoint, r.NextAt, r.ID), nil); err != nil {
			return 0, err
		}
		if err := putRecord(tx, &r); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
