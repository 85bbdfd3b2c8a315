// Package boltqueue is the delivery queue in the embedded bbolt file.
//
// Accepted events are written with bbolt's Batch, which groups concurrent writers into one
// transaction and one fsync, and returns only when the data is on disk: an event is durable
// before its 202. Leases live in memory: one process at a time holds the file, and if it
// dies its leases die with it, so every unfinished delivery is due again at the next start.
package boltqueue

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/sender/queue"
	bolt "go.etcd.io/bbolt"
)

var (
	bEvents     = []byte("q_events")     // event id -> body hash
	bDeliveries = []byte("q_deliveries") // delivery id -> record (JSON)
	bDue        = []byte("q_due")        // endpoint 0 nextAt id -> nil  (pending)
	bDead       = []byte("q_dead")       // endpoint 0 deadAt id -> nil
	bRecent     = []byte("q_recent")     // endpoint 0 created id -> nil (every kept delivery)
	bExpiry     = []byte("q_expiry")     // expiry id -> nil (delivered records to delete)
	bLatest     = []byte("q_latest")     // endpoint 0 type -> event (JSON)
	bEndpoints  = []byte("q_endpoints")  // endpoint -> status (JSON)
	bDisabled   = []byte("q_disabled")   // endpoint -> reason, while disabled (read by every Lease)
	bCounts     = []byte("q_counts")     // endpoint 0 'p'|'d' -> pending | dead count (8 bytes), kept in step with q_due and q_dead
	bAbandoned  = []byte("q_abandoned")  // endpoint -> nil: Abandon was called for it (a deleted subscription)
	allBuckets  = [][]byte{bEvents, bDeliveries, bDue, bDead, bRecent, bExpiry, bLatest, bEndpoints, bDisabled, bCounts, bAbandoned}
)

// Options tune a Store.
type Options struct {
	// Retention is how long delivered deliveries stay listed. Default 72h.
	Retention time.Duration
	// SweepInterval is how often expired deliveries are deleted. Default 1m.
	SweepInterval time.Duration
}

type lease struct {
	token string
	until time.Time
}

// Store is the embedded queue.
type Store struct {
	h    *boltdb.Handle
	opts Options

	queue.Bus // wake-ups: one process holds the file, so they stay in it

	mu        sync.Mutex
	leases    map[string]lease
	seq       atomic.Uint64
	retention atomic.Int64 // nanoseconds
}

var (
	_ queue.Store      = (*Store)(nil)
	_ queue.Notifier   = (*Store)(nil)
	_ queue.DueChecker = (*Store)(nil)
)

// New returns a queue in the file behind h. Nothing is opened until first use; the
// retention sweeper runs while h is open.
func New(h *boltdb.Handle, opts Options) *Store {
	if opts.Retention <= 0 {
		opts.Retention = queue.DefaultRetention
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Minute
	}
	s := &Store{h: h, opts: opts, leases: map[string]lease{}}
	s.retention.Store(int64(opts.Retention))
	h.Use(boltdb.Service{Buckets: allBuckets, Tasks: []boltdb.Task{s.sweeper}, Unavailable: queue.ErrUnavailable})
	return s
}

// SetRetention implements queue.Store.
func (s *Store) SetRetention(d time.Duration) {
	if d > 0 {
		s.retention.Store(int64(d))
	}
}

// expired reports whether a delivered record is past its retention (the sweeper may not
// have deleted it yet).
func expired(r record, now time.Time) bool {
	return r.State == queue.Delivered && r.Expires > 0 && r.Expires < now.UnixNano()
}

// record is a delivery as stored (see codec.go). Times are unix nanoseconds.
type record struct {
	ID       string
	Endpoint string
	Event    queue.Event
	State    queue.State
	N        int
	Attempts []queue.Attempt
	NextAt   int64
	Created  int64
	DeadAt   int64
	Expires  int64
}

type epStatus struct {
	Delivered int64          `json:"delivered,omitempty"`
	Last      *queue.Attempt `json:"last,omitempty"`
}

func (s *Store) db() (*boltdb.DB, error) {
	db, err := s.h.DB()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", queue.ErrUnavailable, err)
	}
	return db, nil
}

func (s *Store) sweeper(_ *boltdb.DB, stop <-chan struct{}) {
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = s.Sweep(time.Now())
		}
	}
}

// Sweep deletes delivered deliveries whose retention ended before now.
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
			if r, ok := getRecord(tx, id); ok && r.State == queue.Delivered {
				_ = tx.Bucket(bRecent).Delete(epKey(r.Endpoint, r.Created, id))
				_ = tx.Bucket(bDeliveries).Delete([]byte(id))
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}

func u64(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}

// epKey is endpoint 0 time id.
func epKey(ep string, t int64, id string) []byte {
	k := make([]byte, 0, len(ep)+1+8+len(id))
	k = append(k, ep...)
	k = append(k, 0)
	k = append(k, u64(t)...)
	return append(k, id...)
}

func epPrefix(ep string) []byte { return append([]byte(ep), 0) }

func getRecord(tx *bolt.Tx, id string) (record, bool) {
	return getRecordWith(tx, id, true)
}

func getRecordWith(tx *bolt.Tx, id string, attempts bool) (record, bool) {
	v := tx.Bucket(bDeliveries).Get([]byte(id))
	if v == nil {
		return record{}, false
	}
	r, err := decodeRecord(v, attempts)
	return r, err == nil
}

func putRecord(tx *bolt.Tx, r *record) error {
	return tx.Bucket(bDeliveries).Put([]byte(r.ID), encodeRecord(r))
}

func getStatus(tx *bolt.Tx, ep string) epStatus {
	var st epStatus
	if v := tx.Bucket(bEndpoints).Get([]byte(ep)); v != nil {
		_ = json.Unmarshal(v, &st)
	}
	return st
}

func putStatus(tx *bolt.Tx, ep string, st epStatus) error {
	v, _ := json.Marshal(st)
	return tx.Bucket(bEndpoints).Put([]byte(ep), v)
}

// Kinds of count in bCounts.
const (
	countPending = 'p'
	countDead    = 'd'
)

// addCount moves an endpoint's pending or dead count by delta, in the transaction that
// moves the delivery, so Status and every metrics scrape read a number instead of scanning.
func addCount(tx *bolt.Tx, ep string, kind byte, delta int64) error {
	k := append(epPrefix(ep), kind)
	b := tx.Bucket(bCounts)
	var n int64
	if v := b.Get(k); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	return b.Put(k, u64(max(n+delta, 0)))
}

func getCount(tx *bolt.Tx, ep string, kind byte) int64 {
	if v := tx.Bucket(bCounts).Get(append(epPrefix(ep), kind)); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// queueNew writes a new pending delivery of ev to ep, due now.
func queueNew(tx *bolt.Tx, id, ep string, ev queue.Event, now int64) error {
	r := record{ID: id, Endpoint: ep, Event: ev, State: queue.Pending, NextAt: now, Created: ev.Created.UnixNano()}
	if err := putRecord(tx, &r); err != nil {
		return err
	}
	if err := tx.Bucket(bDue).Put(epKey(ep, r.NextAt, id), nil); err != nil {
		return err
	}
	if err := addCount(tx, ep, countPending, 1); err != nil {
		return err
	}
	return tx.Bucket(bRecent).Put(epKey(ep, r.Created, id), nil)
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
	hash := []byte(ev.BodyHash())
	latest := encodeRecord(&record{Event: ev}) // the latest event of its type, for Resend
	created := 0
	err = db.Batch(func(tx *bolt.Tx) error {
		created = 0 // Batch may run this function again
		evs := tx.Bucket(bEvents)
		if old := evs.Get([]byte(ev.ID)); old != nil && !bytes.Equal(old, hash) {
			return queue.ErrConflict
		}
		if err := evs.Put([]byte(ev.ID), hash); err != nil {
			return err
		}
		now := time.Now().UnixNano()
		for _, ep := range endpoints {
			id := queue.DeliveryID(ep, ev.ID)
			if tx.Bucket(bDeliveries).Get([]byte(id)) != nil {
				continue
			}
			if err := queueNew(tx, id, ep, ev, now); err != nil {
				return err
			}
			lk := append(epPrefix(ep), ev.Type...)
			if err := tx.Bucket(bLatest).Put(lk, latest); err != nil {
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
		bev, bdel := tx.Bucket(bEvents), tx.Bucket(bDeliveries)
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
			if bdel.Get([]byte(id)) != nil {
				continue
			}
			if err := queueNew(tx, id, endpoint, ev, now+int64(i)); err != nil {
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

func toDelivery(r record, attempts bool, tok string) queue.Delivery {
	d := queue.Delivery{ID: r.ID, Endpoint: r.Endpoint, Event: r.Event, State: r.State, AttemptCount: r.N,
		Created: time.Unix(0, r.Created).UTC(), Lease: tok}
	if r.State == queue.Pending {
		d.NextAt = time.Unix(0, r.NextAt).UTC()
	}
	if attempts {
		d.Attempts = r.Attempts
	}
	return d
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
			r, ok := getRecord(tx, res.Delivery.ID)
			if !ok || r.State != queue.Pending {
				continue
			}
			if err := tx.Bucket(bDue).Delete(epKey(r.Endpoint, r.NextAt, r.ID)); err != nil {
				return err
			}
			r.N++
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
				if err := tx.Bucket(bExpiry).Put(append(u64(r.Expires), r.ID...), nil); err != nil {
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
			return queue.ErrNotFound
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
			return queue.ErrNotFound
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
			if err := queueNew(tx, queue.NewDeliveryID(endpoint), endpoint, ev, now.UnixNano()); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

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
