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
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bBreakers).Put([]byte(endpoint), v) }); err != nil {
		return fmt.Errorf("open the breaker of %s: %w", endpoint, err)
	}
	delete(s.probes, endpoint)
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
	// The lease table is held, so no lease is taken or dropped while pending deliveries
	// move: a leased one keeps its key.
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	err = db.Update(func(tx *bolt.Tx) error {
		n = 0
		was := getBreaker(tx, endpoint)
		if err := tx.Bucket(bBreakers).Put([]byte(endpoint), closed); err != nil {
			return err
		}
		if !was.Open() {
			return nil
		}
		prefix := epPrefix(endpoint)
		type move struct {
			key []byte
			id  string
		}
		var moves []move
		now := time.Now()
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
			if !ok || r.State != queue.Pending || r.NextAt <= now.UnixNano() {
				continue // due already: it keeps its place
			}
			if err := due.Delete(m.key); err != nil {
				return err
			}
			r.NextAt = min(r.Created, now.UnixNano())
			if err := due.Put(epKey(endpoint, r.NextAt, r.ID), nil); err != nil {
				return err
			}
			if err := putRecord(tx, &r); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("close the breaker of %s: %w", endpoint, err)
	}
	delete(s.probes, endpoint)
	return n, nil
}
