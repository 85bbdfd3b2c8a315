package boltdb

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Group commit. bbolt's own Batch closes a batch a fixed delay after its first writer and
// then waits for the writer lock: when a commit (two fdatasyncs) outlasts the delay, the
// writers that arrive meanwhile form several small batches queued behind it, each paying
// its own commit, and a lone writer always waits the delay. Here a batch is everyone who
// is waiting when the file's writer is free: the first writer commits at once, those who
// arrive while it commits go together into the next commit, led by the first of them. The
// commit runs in a caller's goroutine, under the same guard as every other transaction,
// so a damaged page met while committing is a damage error for the batch, not a crash.

// maxGroup caps the writers one commit carries (bbolt's default MaxBatchSize).
const maxGroup = 1000

// errSolo tells a caller whose function failed inside a group to run it again alone, so
// that its error (or its panic) is its own and the others' writes still commit.
var errSolo = errors.New("boltdb: run alone")

type groupCall struct {
	fn   func(*bolt.Tx) error
	done chan error    // the call's result (buffered)
	lead chan struct{} // the call is to commit the next group (buffered)
}

// group is the writers waiting for the next commit.
type group struct {
	mu      sync.Mutex
	waiting []*groupCall
	leading bool // a writer is committing, or has been asked to commit the next group
	commits int64
}

// Commits returns how many group commits the file has made since it was opened.
func (d *DB) Commits() int64 {
	d.g.mu.Lock()
	defer d.g.mu.Unlock()
	return d.g.commits
}

// Batch runs fn as part of the next commit of the writers waiting for the file: fn may run
// more than once (when another function of its group fails, the group runs again without
// it), and must not have effects outside the transaction. An error fn returns, or a panic
// inside it, is fn's alone: fn is run again by itself and its caller gets that run's
// result, while the rest of the group commits.
func (d *DB) Batch(fn func(*bolt.Tx) error) error {
	if dmg := d.h.damaged.Load(); dmg != nil {
		return dmg
	}
	c := &groupCall{fn: fn, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	d.g.mu.Lock()
	d.g.waiting = append(d.g.waiting, c)
	leader := !d.g.leading
	d.g.leading = true
	d.g.mu.Unlock()
	if leader {
		d.commitNext()
	}
	for {
		select {
		case err := <-c.done:
			if err == errSolo {
				return d.Update(fn)
			}
			return err
		case <-c.lead:
			d.commitNext()
		}
	}
}

// commitNext commits the writers waiting now (the caller among them, unless it already
// has its result), then hands the next commit to the first writer waiting after it.
func (d *DB) commitNext() {
	d.g.mu.Lock()
	calls := d.g.waiting
	if len(calls) > maxGroup {
		calls = calls[:maxGroup:maxGroup]
	}
	d.g.waiting = d.g.waiting[len(calls):]
	d.g.commits++
	d.g.mu.Unlock()

	d.commit(calls)
	clear(calls) // the waiting list's array keeps no finished call (nor what its function holds)

	d.g.mu.Lock()
	if len(d.g.waiting) == 0 {
		d.g.leading = false
		d.g.mu.Unlock()
		return
	}
	next := d.g.waiting[0]
	d.g.mu.Unlock()
	next.lead <- struct{}{}
}

// commit runs calls in one transaction and gives each its result. A call whose function
// fails is sent to run alone and the others run again without it.
func (d *DB) commit(calls []*groupCall) {
	for len(calls) > 0 {
		failed := -1
		err := d.update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := callSafely(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].done <- errSolo
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		}
		for _, c := range calls {
			c.done <- err
		}
		return
	}
}

// update is Update for a group: the damage check and the guard around bbolt's commit.
func (d *DB) update(fn func(*bolt.Tx) error) (err error) {
	if dmg := d.h.damaged.Load(); dmg != nil {
		return dmg
	}
	defer d.recoverInto(&err, "writing", debug.SetPanicOnFault(true))
	return d.db.Update(fn)
}

// callSafely runs fn, turning a panic into an error (the call then runs alone, where the
// guard of Update sees the panic again).
func callSafely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn(tx)
}
