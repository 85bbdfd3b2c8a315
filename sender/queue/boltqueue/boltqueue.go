// Package boltqueue is the delivery queue in the embedded bbolt file.
//
// Accepted events are written with bbolt's Batch, which groups concurrent writers into one
// transaction and one fsync, and returns only when the data is on disk: an event is durable
// before its 202. Leases live in memory: one process at a time holds the file, and if it
// dies its leases die with it, so every unfinished delivery is due again at the next start.
package boltqueue

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/sender/queue"
)

var (
	bEvents     = []byte("q_events")     // event id -> body hash
	bDeliveries = []byte("q_deliveries") // delivery id -> record: deliveries written before q_records existed
	bRecords    = []byte("q_records")    // 8-byte write time, delivery id -> record (see records.go)
	bIndex      = []byte("q_index")      // delivery id -> its key in q_records
	bDue        = []byte("q_due")        // endpoint 0 nextAt id -> nil  (pending)
	bDead       = []byte("q_dead")       // endpoint 0 deadAt id -> nil
	bRecent     = []byte("q_recent")     // endpoint 0 created id -> nil (every kept delivery)
	bExpiry     = []byte("q_expiry")     // expiry id -> nil (delivered records to delete)
	bLatest     = []byte("q_latest")     // endpoint 0 type -> event (JSON)
	bEndpoints  = []byte("q_endpoints")  // endpoint -> status (JSON)
	bDisabled   = []byte("q_disabled")   // endpoint -> reason, while disabled (read by every Lease)
	bCounts     = []byte("q_counts")     // endpoint 0 'p'|'d' -> pending | dead count (8 bytes), kept in step with q_due and q_dead
	bAbandoned  = []byte("q_abandoned")  // endpoint -> nil: Abandon was called for it (a deleted subscription)
	allBuckets  = [][]byte{bEvents, bDeliveries, bRecords, bIndex, bDue, bDead, bRecent, bExpiry, bLatest, bEndpoints, bDisabled, bCounts, bAbandoned, bBreakers}
)

// Options tune a Store.
type Options struct {
	// Retention is how long delivered deliveries stay listed. Default 72h.
	Retention time.Duration
	// SweepInterval is how often expired deliveries are deleted. Default 1m.
	SweepInterval time.Duration
}

// Store is the embedded queue.
type Store struct {
	h    *boltdb.Handle
	opts Options

	queue.Bus // wake-ups: one process holds the file, so they stay in it

	mu        sync.Mutex
	leases    map[string]lease
	probes    map[string]time.Time // endpoint -> end of its breaker's probe lease
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
	s := &Store{h: h, opts: opts, leases: map[string]lease{}, probes: map[string]time.Time{}}
	s.retention.Store(int64(opts.Retention))
	sweep := boltdb.Every(opts.SweepInterval, func(*boltdb.DB) { _ = s.Sweep(time.Now()) })
	h.Use(boltdb.Service{Buckets: allBuckets, Tasks: []boltdb.Task{sweep}, Unavailable: queue.ErrUnavailable})
	return s
}

// SetRetention implements queue.Store.
func (s *Store) SetRetention(d time.Duration) {
	if d > 0 {
		s.retention.Store(int64(d))
	}
}

// errUnavailable wraps every outage of this store: it reads "queue store unavailable", and
// errors.Is(err, storeerr.ErrUnavailable) holds for it.
var errUnavailable = storeerr.Unavailable("queue")

func (s *Store) db() (*boltdb.DB, error) {
	db, err := s.h.DB()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	return db, nil
}
