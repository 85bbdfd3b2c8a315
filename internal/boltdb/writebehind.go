package boltdb

import (
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// WriteBehind holds values in memory until its flusher writes them to the file, all that
// gathered in one interval in one transaction (one fsync): the request path that puts a
// value never waits for the disk, and a power cut loses at most one interval's values.
// Its Task flushes once more as the handle closes, so a clean stop loses nothing.
//
// A value stays readable (Find) while it is being written, and leaves memory only once
// its transaction has committed: a reader that misses it in memory finds it in the file.
// If a write fails, its values go back to be retried at the next flush (a value put
// meanwhile wins unless Retry prefers the failed one).
//
// The store that uses it may call Put and Find while holding a lock of its own (they take
// only the buffer's lock), to make them atomic with its own state.
type WriteBehind[V any] struct {
	interval time.Duration
	write    func(tx *bolt.Tx, keys []string, batch map[string]V) error
	retry    func(failed, current V) bool

	flushMu  sync.Mutex // held by a flush, and by Hold
	mu       sync.Mutex
	pending  map[string]V // put, not yet being written
	flushing map[string]V // being written by a flush right now
	kick     chan struct{}
}

// NewWriteBehind returns a buffer whose flushes wait interval after the first value put
// for more to gather, then call write with the values in one read-write transaction; keys
// are the batch's keys in order (what a B+tree inserts fastest). retry, called when a
// write failed and a key was put again meanwhile, reports whether the failed value should
// replace the current one; nil keeps the current one.
func NewWriteBehind[V any](interval time.Duration, write func(tx *bolt.Tx, keys []string, batch map[string]V) error,
	retry func(failed, current V) bool) *WriteBehind[V] {
	if retry == nil {
		retry = func(V, V) bool { return false }
	}
	return &WriteBehind[V]{interval: interval, write: write, retry: retry, pending: map[string]V{},
		kick: make(chan struct{}, 1)}
}

// Put buffers v as key's value (replacing one not yet being written) and wakes the flusher.
func (w *WriteBehind[V]) Put(key string, v V) {
	w.mu.Lock()
	w.pending[key] = v
	w.mu.Unlock()
	w.wake()
}

func (w *WriteBehind[V]) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Find returns key's value in memory that satisfies ok: the one put last, else the one
// being written. ok may be nil (any value).
func (w *WriteBehind[V]) Find(key string, ok func(V) bool) (V, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, found := w.pending[key]; found && (ok == nil || ok(v)) {
		return v, true
	}
	if v, found := w.flushing[key]; found && (ok == nil || ok(v)) {
		return v, true
	}
	var zero V
	return zero, false
}

// Take removes key's value put and not yet being written, and returns it. Call it within
// Hold to be sure no write of key is in progress.
func (w *WriteBehind[V]) Take(key string) (V, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.pending[key]
	delete(w.pending, key)
	return v, ok
}

// Hold runs fn while no flush runs: nothing is being written, and no flush starts until fn
// returns (so a value fn removes from memory and the file is not written back).
func (w *WriteBehind[V]) Hold(fn func()) {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	fn()
}

// Flush writes every value put so far in one transaction. On failure they are kept for
// the next flush, and the flusher is woken to retry after an interval.
func (w *WriteBehind[V]) Flush(db *DB) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	if len(w.pending) == 0 {
		w.mu.Unlock()
		return nil
	}
	// Handed to the write whole (no copy under the lock); readable as flushing meanwhile.
	batch := w.pending
	w.pending, w.flushing = make(map[string]V, len(batch)), batch
	w.mu.Unlock()
	keys := make([]string, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	err := db.Update(func(tx *bolt.Tx) error { return w.write(tx, keys, batch) })
	w.mu.Lock()
	w.flushing = nil
	if err != nil {
		for k, v := range batch {
			if cur, ok := w.pending[k]; !ok || w.retry(v, cur) {
				w.pending[k] = v
			}
		}
	}
	w.mu.Unlock()
	if err != nil {
		w.wake()
	}
	return err
}

// Task is the flusher, to declare in the store's Service: woken by a Put, it waits an
// interval for more, then flushes; when the handle stops its tasks it flushes what is
// left and returns.
func (w *WriteBehind[V]) Task(db *DB, stop <-chan struct{}) {
	for {
		select {
		case <-w.kick:
		case <-stop:
			_ = w.Flush(db)
			return
		}
		// Let more values gather: one transaction, one fsync, for all of them.
		select {
		case <-time.After(w.interval):
		case <-stop:
		}
		_ = w.Flush(db)
	}
}
