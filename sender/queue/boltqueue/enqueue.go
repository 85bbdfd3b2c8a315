package boltqueue

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	bolt "go.etcd.io/bbolt"
)

// queueNew writes a new pending delivery of ev to ep, due now; hdr is ev.Header as
// queue.EncodeHeader encodes it ("" to have it encoded here).
func queueNew(tx *bolt.Tx, id, ep string, ev queue.Event, hdr string, now int64) error {
	r := record{ID: id, Endpoint: ep, Event: ev, State: queue.Pending, NextAt: now, Created: ev.Created.UnixNano(), hdrEnc: hdr}
	if err := putRecord(tx, &r); err != nil {
		return err
	}
	if err := tx.Bucket(bDue).Put(epKey(ep, r.NextAt, id), nil); err != nil {
		return err
	}
	if err := addCount(tx, ep, countPending, 1); err != nil {
		return err
	}
	recent := tx.Bucket(bRecent)
	recent.FillPercent = recordsFill // keyed by time: new keys go at the end
	return recent.Put(epKey(ep, r.Created, id), nil)
}

// Enqueue implements queue.Store.
func (s *Store) Enqueue(ctx context.Context, ev queue.Event, endpoints []string) (int, error) {
	db, err := s.db()
	if err != nil {
		return 0, err
	}
	if ev.Created.IsZero() {
		ev.Created = time.Now().UTC()
	}
	var hash []byte
	if !ev.Unique {
		hash = []byte(ev.BodyHash())
	}
	base := ev.For("")
	hdr := queue.EncodeHeader(base.Header)                    // encoded once, for the record and the latest event
	latest := encodeRecord(&record{Event: base, hdrEnc: hdr}) // the latest event of its type, for Resend
	created := 0
	err = db.Batch(func(tx *bolt.Tx) error {
		created = 0 // Batch may run this function again
		if !ev.Unique {
			evs := tx.Bucket(bEvents)
			if old := evs.Get([]byte(ev.ID)); old != nil && !bytes.Equal(old, hash) {
				return queue.ErrConflict
			}
			if err := evs.Put([]byte(ev.ID), hash); err != nil {
				return err
			}
		}
		now := time.Now().UnixNano()
		for _, ep := range endpoints {
			id := queue.DeliveryID(ep, ev.ID)
			if hasRecord(tx, id) {
				continue
			}
			epEv, epHdr, epLatest := base, hdr, latest
			if _, ok := ev.Variants[ep]; ok {
				epEv = ev.For(ep)
				epHdr = queue.EncodeHeader(epEv.Header)
				epLatest = encodeRecord(&record{Event: epEv, hdrEnc: epHdr})
				epEv = epEv.For("")
			}
			if err := queueNew(tx, id, ep, epEv, epHdr, now); err != nil {
				return err
			}
			lk := append(epPrefix(ep), ev.Type...)
			if err := tx.Bucket(bLatest).Put(lk, epLatest); err != nil {
				return err
			}
			created++
		}
		return nil
	})
	if err == queue.ErrConflict {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("enqueue %s: %w", ev.ID, err)
	}
	return created, nil
}

// EnqueueBatch implements queue.Store: one Batch transaction; delivery i is due one
// nanosecond after delivery i-1, so the due index holds them in the order given.
func (s *Store) EnqueueBatch(ctx context.Context, endpoint string, evs []queue.Event) (int, error) {
	db, err := s.db()
	if err != nil {
		return 0, err
	}
	hashes := make([][]byte, len(evs))
	for i := range evs {
		if evs[i].Created.IsZero() {
			evs[i].Created = time.Now().UTC()
		}
		hashes[i] = []byte(evs[i].BodyHash())
	}
	created := 0
	err = db.Batch(func(tx *bolt.Tx) error {
		created = 0 // Batch may run this function again
		bev := tx.Bucket(bEvents)
		for i, ev := range evs {
			if old := bev.Get([]byte(ev.ID)); old != nil && !bytes.Equal(old, hashes[i]) {
				return queue.ErrConflict
			}
		}
		now := time.Now().UnixNano()
		last := map[string]int{} // the latest event of each type, for Resend
		for i, ev := range evs {
			if err := bev.Put([]byte(ev.ID), hashes[i]); err != nil {
				return err
			}
			id := queue.DeliveryID(endpoint, ev.ID)
			if hasRecord(tx, id) {
				continue
			}
			if err := queueNew(tx, id, endpoint, ev, "", now+int64(i)); err != nil {
				return err
			}
			last[ev.Type] = i
			created++
		}
		for typ, i := range last {
			if err := tx.Bucket(bLatest).Put(append(epPrefix(endpoint), typ...), encodeRecord(&record{Event: evs[i]})); err != nil {
				return err
			}
		}
		return nil
	})
	if err == queue.ErrConflict {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("enqueue a batch of %d for %s: %w", len(evs), endpoint, err)
	}
	return created, nil
}
