package boltqueue

import (
	"bytes"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	bolt "go.etcd.io/bbolt"
)

// expired reports whether a delivered record is past its retention (the sweeper may not
// have deleted it yet).
func expired(r record, now time.Time) bool {
	return r.State == queue.Delivered && r.Expires > 0 && r.Expires < now.UnixNano()
}

// Sweep deletes delivered deliveries whose retention ended before now, and their events'
// conflict records.
func (s *Store) Sweep(now time.Time) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bExpiry).Cursor()
		limit := u64(now.UnixNano())
		n := 0
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], limit) <= 0 && n < 10000; k, _ = c.Next() {
			id := string(k[8:])
			if r, ok := getRecordRaw(tx, id); ok && r.State == queue.Delivered {
				_ = tx.Bucket(bRecent).Delete(epKey(r.Endpoint, r.Created, id))
				_ = deleteRecord(tx, id)
				// The event's conflict record goes with it, as Redis expires it with the
				// retention (it was kept for ever before: one key per event published).
				_ = tx.Bucket(bEvents).Delete([]byte(r.Event.ID))
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}
