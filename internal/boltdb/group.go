package boltdb

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/hookgate/hookgate/internal/group"
	bolt "go.etcd.io/bbolt"
)

// Group commit. bbolt's own Batch closes a batch a fixed delay after its first writer and
// then waits for the writer lock: when a commit (two fdatasyncs) outlasts the delay, the
// writers that arrive meanwhile form several small batches queued behind it, each paying
// its own commit, and a lone writer always waits the delay. Here a batch is everyone who
// is waiting when the file's writer is free: the first writer commits at once, those who
// arrive while it commits go together into the next commit, led by the first of them. The
// commit runs in a caller's goroutine, under the same guard as every other transaction,
// so a damaged page met while committing is a damage error for the batch, not a crash
// (internal/group runs the batches).

// maxGroup caps the writers one commit carries (bbolt's default MaxBatchSize).
const maxGroup = 1000

// errSolo tells a caller whose function failed inside a group to run it again alone, so
// that its error (or its panic) is its own and the others' writes still commit.
var errSolo = errors.New("boltdb: run alone")

// Commits returns how many group commits the file has made since it was opened.
func (d *DB) Commits() int64 { return d.g.Batches() }

// Batch runs fn as part of the next commit of the writers waiting for the file: fn may run
// more than once (when another function of its group fails, the group runs again without
// it), and must not have effects outside the transaction. An error fn returns, or a panic
// inside it, is fn's alone: fn is run again by itself and its caller gets that run's
// result, while the rest of the group commits.
func (d *DB) Batch(fn func(*bolt.Tx) error) error {
	if dmg := d.h.damaged.Load(); dmg != nil {
		return dmg
	}
	if err := d.g.Do(fn); err != errSolo {
		return err
	}
	return d.Update(fn)
}

// commit runs calls in one transaction and gives each its result. A call whose function
// fails is sent to run alone and the others run again without it.
func (d *DB) commit(calls []*group.Call[func(*bolt.Tx) error]) {
	for len(calls) > 0 {
		failed := -1
		err := d.update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := callSafely(c.Arg, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].Done(errSolo)
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		}
		for _, c := range calls {
			c.Done(err)
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
