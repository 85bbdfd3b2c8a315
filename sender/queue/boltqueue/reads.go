package boltqueue

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	bolt "go.etcd.io/bbolt"
)

// Get implements queue.Store.
func (s *Store) Get(ctx context.Context, id string) (queue.Delivery, error) {
	db, err := s.db()
	if err != nil {
		return queue.Delivery{}, err
	}
	var d queue.Delivery
	err = db.View(func(tx *bolt.Tx) error {
		r, ok := getRecord(tx, id)
		if !ok || expired(r, time.Now()) {
			return fmt.Errorf("delivery %q: %w", id, queue.ErrNotFound)
		}
		d = toDelivery(r, true, "")
		return nil
	})
	return d, err
}

// List implements queue.Store.
func (s *Store) List(ctx context.Context, f queue.Filter) ([]queue.Delivery, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	index := bRecent
	switch f.State {
	case queue.Pending:
		index = bDue
	case queue.Dead:
		index = bDead
	}
	var out []queue.Delivery
	now := time.Now()
	err = db.View(func(tx *bolt.Tx) error {
		for _, ep := range f.Endpoints {
			prefix := epPrefix(ep)
			c := tx.Bucket(index).Cursor()
			// Walk newest first: seek past the prefix, then step back.
			end := append(append([]byte{}, prefix[:len(prefix)-1]...), 1)
			k, _ := c.Seek(end)
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
			n := 0
			for ; k != nil && bytes.HasPrefix(k, prefix) && n < f.Limit; k, _ = c.Prev() {
				r, ok := getRecord(tx, string(k[len(prefix)+8:]))
				if !ok || (f.State != "" && r.State != f.State) || expired(r, now) {
					continue
				}
				out = append(out, toDelivery(r, true, ""))
				n++
			}
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, err
}
