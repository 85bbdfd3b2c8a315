package boltqueue

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	bolt "go.etcd.io/bbolt"
)

type lease struct {
	token string
	until time.Time
}

// Lease implements queue.Store.
func (s *Store) Lease(ctx context.Context, endpoint string, max int, now time.Time, leaseFor time.Duration) ([]queue.Delivery, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	var out []queue.Delivery
	// The lease table is locked before the read transaction begins: Finish drops a lease
	// only after its commit, so a scan that finds no lease for a delivery is guaranteed to
	// see that delivery's finished state.
	s.mu.Lock()
	defer s.mu.Unlock()
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bDisabled).Get([]byte(endpoint)) != nil {
			return nil
		}
		max, probe, err := s.gate(tx, endpoint, max, now, leaseFor)
		if err != nil {
			return err
		}
		defer func() {
			if probe && len(out) > 0 {
				out[0].Probe = true
				s.probes[endpoint] = now.Add(leaseFor)
			}
		}()
		prefix := epPrefix(endpoint)
		limit := append(append([]byte{}, prefix...), u64(now.UnixNano())...)
		c := tx.Bucket(bDue).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < max; k, _ = c.Next() {
			if bytes.Compare(k[:len(prefix)+8], limit) > 0 {
				break
			}
			idb := k[len(prefix)+8:]
			if l, ok := s.leases[string(idb)]; ok && l.until.After(now) {
				continue
			}
			id := string(idb)
			r, ok := getRecordWith(tx, id, false)
			if !ok {
				continue
			}
			tok := strconv.FormatUint(s.seq.Add(1), 10)
			s.leases[id] = lease{token: tok, until: now.Add(leaseFor)}
			out = append(out, toDelivery(r, false, tok))
		}
		return nil
	})
	return out, err
}

// held reports whether tok still holds id's lease.
func (s *Store) held(id, tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[id]
	return ok && l.token == tok
}

// Finish implements queue.Store.
func (s *Store) Finish(ctx context.Context, results []queue.Result) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	var done []queue.Result
	// Batch, so the write shares a commit (and its fsyncs) with concurrent enqueues.
	err = db.Batch(func(tx *bolt.Tx) error {
		done = done[:0]
		statuses := map[string]*epStatus{}
		for _, res := range results {
			if !s.held(res.Delivery.ID, res.Delivery.Lease) {
				continue
			}
			r, ok := getRecordRaw(tx, res.Delivery.ID)
			if !ok || r.State != queue.Pending {
				continue
			}
			if err := tx.Bucket(bDue).Delete(epKey(r.Endpoint, r.NextAt, r.ID)); err != nil {
				return err
			}
			if !res.Uncounted {
				r.N++
			}
			if v := res.Reshaped; v != nil {
				r.Event.Body, r.Event.Header, r.Event.TransformError, r.hdrEnc = v.Body, v.Header, "", ""
			}
			r.Attempts = append(r.Attempts, res.Attempt)
			if len(r.Attempts) > queue.MaxAttemptsKept {
				r.Attempts = r.Attempts[len(r.Attempts)-queue.MaxAttemptsKept:]
			}
			st := statuses[r.Endpoint]
			if st == nil {
				v := getStatus(tx, r.Endpoint)
				st = &v
				statuses[r.Endpoint] = st
			}
			a := res.Attempt
			st.Last = &a
			switch res.Outcome {
			case queue.Done:
				r.State = queue.Delivered
				keep := time.Duration(s.retention.Load())
				if res.Keep > 0 {
					keep = res.Keep
				}
				r.Expires = time.Now().Add(keep).UnixNano()
				st.Delivered++
				exp := tx.Bucket(bExpiry)
				exp.FillPercent = recordsFill // keyed by time: new keys go at the end
				if err := exp.Put(append(u64(r.Expires), r.ID...), nil); err != nil {
					return err
				}
				if err := addCount(tx, r.Endpoint, countPending, -1); err != nil {
					return err
				}
			case queue.Retry:
				r.NextAt = res.NextAt.UnixNano()
				if err := tx.Bucket(bDue).Put(epKey(r.Endpoint, r.NextAt, r.ID), nil); err != nil {
					return err
				}
			default:
				r.State = queue.Dead
				r.DeadAt = time.Now().UnixNano()
				if err := tx.Bucket(bDead).Put(epKey(r.Endpoint, r.DeadAt, r.ID), nil); err != nil {
					return err
				}
				if err := addCount(tx, r.Endpoint, countPending, -1); err != nil {
					return err
				}
				if err := addCount(tx, r.Endpoint, countDead, 1); err != nil {
					return err
				}
			}
			if err := putRecord(tx, &r); err != nil {
				return err
			}
			done = append(done, res)
		}
		for ep, st := range statuses {
			if err := putStatus(tx, ep, *st); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	s.mu.Lock()
	for _, res := range done {
		if l, ok := s.leases[res.Delivery.ID]; ok && l.token == res.Delivery.Lease {
			delete(s.leases, res.Delivery.ID)
		}
	}
	s.mu.Unlock()
	return nil
}

// Release implements queue.Store.
func (s *Store) Release(ctx context.Context, leased []queue.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range leased {
		if l, ok := s.leases[d.ID]; ok && l.token == d.Lease {
			delete(s.leases, d.ID)
		}
	}
	return nil
}

// Extend implements queue.Store.
func (s *Store) Extend(ctx context.Context, leased []queue.Delivery, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range leased {
		if l, ok := s.leases[d.ID]; ok && l.token == d.Lease {
			l.until = until
			s.leases[d.ID] = l
		}
	}
	return nil
}
