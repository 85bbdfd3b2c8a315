// Package boltdb owns the lifecycle of Hookgate's embedded store file: it opens it lazily
// (merely provisioning a config, as `caddy validate` does, never takes the file's lock),
// checks it before bbolt maps it and again, page by page, once it is mapped, creates the
// buckets its users declared, runs their background tasks while it is open, and on Close
// stops them (each finishing its work, a last flush say) before closing the file.
//
// bbolt trusts the pages it reads: a page overwritten with garbage makes it panic (or fault)
// in whatever goroutine reads it. Every transaction the stores run goes through DB, which
// turns such a panic into an error and marks the file damaged: from then on every call is
// refused with that error (a damaged B+tree is not written to), the background tasks stop,
// and the damage is reported once to the handle's OnDamage.
package boltdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/internal/group"
	"github.com/hookgate/hookgate/internal/lifecycle"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Handle is a lazily opened bbolt file. It is safe for concurrent use.
type Handle struct {
	path string

	// OnDamage, if set before the file is opened, is called once, in the goroutine that met
	// the damage, when the open file turns out to be damaged (a transaction panicked).
	OnDamage func(err error)

	mu       sync.Mutex
	db       *DB
	closed   bool
	services []Service
	unavail  []error // the services' Unavailable errors, which damage errors match

	life    lifecycle.Base // the tasks run in it: cancelled by damage, stopped by Close
	running atomic.Int32   // tasks still running

	damaged atomic.Pointer[DamageError]
}

// Task is a background task of a service: it runs from the open until stop is closed (by
// Close, or when the file turns out to be damaged), then returns.
type Task = func(db *DB, stop <-chan struct{})

// Service is one user of the file (the dedupe store, the queue): the buckets it needs and
// the background tasks it runs while the file is open.
type Service struct {
	// Buckets are created, when missing, as the file opens.
	Buckets [][]byte
	// Tasks each run in their own goroutine from the open until Close (or damage), which
	// closes stop; Close waits for them to return before it closes the file.
	Tasks []Task
	// Unavailable is the error the service's callers test for when its store cannot serve
	// (queue.ErrUnavailable, say): errors.Is(err, Unavailable) holds for the file's damage
	// errors, so they are answered as the store being away (503), not as a bad request.
	Unavailable error
}

// New returns a handle for the file at path; nothing is opened yet.
func New(path string) *Handle { return &Handle{path: path} }

// Use declares a service. Call it before the file is first opened (in the service's
// constructor); a service declared later is an error at open.
func (h *Handle) Use(s Service) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.services = append(h.services, s)
	if s.Unavailable != nil {
		h.unavail = append(h.unavail, s.Unavailable)
	}
}

// Path returns the file's path.
func (h *Handle) Path() string { return h.path }

// ErrClosed is returned by DB after Close.
var ErrClosed = errors.New("embedded store closed")

// DB opens the file on first use (creating its directory, checking an existing file) and
// returns it. A failed open is retried on the next call; once the open file is known to be
// damaged, DB returns that *DamageError.
func (h *Handle) DB() (*DB, error) {
	if d := h.damaged.Load(); d != nil {
		return nil, d
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.db != nil {
		return h.db, nil
	}
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the store directory: %w", err)
	}
	if err := checkFile(h.path); err != nil {
		return nil, err
	}
	prefetch(h.path)
	bdb, err := openBolt(h.path)
	if err != nil {
		return nil, err
	}
	if err := checkPages(h.path, bdb); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	db := &DB{h: h, db: bdb, unavail: h.unavail}
	db.g = group.New(maxGroup, db.commit)
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, s := range h.services {
			for _, b := range s.Buckets {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return fmt.Errorf("bucket %s: %w", b, err)
				}
			}
		}
		return nil
	}); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("preparing store file %s: %w", h.path, err)
	}
	h.db = db
	h.life.Start()
	for _, s := range h.services {
		for _, task := range s.Tasks {
			h.running.Add(1)
			if !h.life.Go(func(ctx context.Context) {
				defer h.running.Add(-1)
				task(db, ctx.Done())
			}) {
				h.running.Add(-1)
			}
		}
	}
	if h.damaged.Load() != nil {
		h.life.Cancel()
	}
	return db, nil
}

// openBolt opens the file with bbolt, which reads its freelist as it opens: checkFile has
// looked at that page already, and a panic there (or a fault: the file is mapped) is a
// damage error, not a crash.
func openBolt(path string) (db *bolt.DB, err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			// bbolt does not close the file when it panics while opening; the descriptor
			// (and its lock) stays with this process, which must not use the file anyway.
			err = fmt.Errorf("%w: %s: opening it: %v; restore it from a backup or move it aside to start with an empty store", ErrDamaged, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("opening store file %s: it is locked by another process (two Caddy instances cannot share an embedded store; use Redis)", path)
		}
		return nil, fmt.Errorf("opening store file %s: %w", path, err)
	}
	return db, nil
}

// Damage returns the error that marked the open file damaged, or nil while it is sound.
func (h *Handle) Damage() error {
	if d := h.damaged.Load(); d != nil {
		return d
	}
	return nil
}

// Tasks returns how many background tasks are running (0 before the open, after Close, and
// once damage has stopped them).
func (h *Handle) Tasks() int { return int(h.running.Load()) }

// DamageError is the error of every call once the open file is known to be damaged.
type DamageError struct {
	// Path is the store file's path.
	Path string
	// Op is what met the damage ("reading", "writing").
	Op string
	// Panic is what bbolt panicked with.
	Panic any

	unavail []error
}

// Error names the file, what met the damage, and bbolt's panic.
func (e *DamageError) Error() string {
	return fmt.Sprintf("%s: %s: bbolt panicked while %s: %v; the store refuses every call until Caddy is restarted on a restored or new file",
		ErrDamaged, e.Path, e.Op, e.Panic)
}

// Is makes a damage error match ErrDamaged and every service's Unavailable error.
func (e *DamageError) Is(target error) bool {
	if target == ErrDamaged {
		return true
	}
	for _, u := range e.unavail {
		if target == u {
			return true
		}
	}
	return false
}

// damage records the first damage met (later ones return it), stops the tasks and reports.
func (h *Handle) damage(op string, r any, unavail []error) error {
	d := &DamageError{Path: h.path, Op: op, Panic: r, unavail: unavail}
	if !h.damaged.CompareAndSwap(nil, d) {
		return h.damaged.Load()
	}
	h.stopTasks()
	if h.OnDamage != nil {
		h.OnDamage(d)
	}
	return d
}

func (h *Handle) stopTasks() { h.life.Cancel() }

// Close stops the services' tasks (each finishes what it was doing) and then closes the
// file, if it was opened. Later calls of DB return ErrClosed.
func (h *Handle) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	db := h.db
	h.db = nil
	h.mu.Unlock()
	h.life.Stop(nil, nil) // outside the lock: a task may still ask for the file (and get ErrClosed)
	if db == nil {
		return nil
	}
	if h.damaged.Load() == nil {
		return db.db.Close()
	}
	// A write that met the damage may have left bbolt's writer lock held: its rollback
	// re-reads the freelist page, and panics again if that page is damaged too. bbolt's
	// Close waits for that lock, so it gets a moment and is then left behind (the file is
	// released when the process exits), rather than hanging Caddy's stop or reload.
	done := make(chan error, 1)
	go func() { done <- db.db.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(damagedCloseWait):
		return fmt.Errorf("closing damaged store file %s: a transaction that met the damage holds bbolt's lock; the file stays open until the process exits", h.path)
	}
}

// damagedCloseWait is how long Close waits for bbolt to close a damaged file.
const damagedCloseWait = 2 * time.Second

// DB is the open file as its services use it: bbolt's transactions, each guarded so that a
// panic inside bbolt (a damaged page; a memory fault on the mapping is made a panic too)
// becomes a *DamageError instead of taking the process down. The guard costs no
// allocation and no store round trip.
type DB struct {
	h       *Handle
	db      *bolt.DB
	unavail []error                            // the services' Unavailable errors, as the file opened
	g       *group.Group[func(*bolt.Tx) error] // the writers waiting for the next group commit (group.go)
}

// View runs fn in a read-only transaction (bolt.DB.View).
func (d *DB) View(fn func(*bolt.Tx) error) (err error) {
	if dmg := d.h.damaged.Load(); dmg != nil {
		return dmg
	}
	// Each method calls bbolt directly (no function value in between), so that fn does
	// not escape to the heap where bbolt's own method would not let it.
	defer d.recoverInto(&err, "reading", debug.SetPanicOnFault(true))
	return d.db.View(fn)
}

// Update runs fn in a read-write transaction and commits it (bolt.DB.Update).
func (d *DB) Update(fn func(*bolt.Tx) error) (err error) {
	if dmg := d.h.damaged.Load(); dmg != nil {
		return dmg
	}
	defer d.recoverInto(&err, "writing", debug.SetPanicOnFault(true))
	return d.db.Update(fn)
}

// recoverInto, deferred by each transaction method, restores the goroutine's fault mode
// and turns a panic into the file's damage error.
func (d *DB) recoverInto(err *error, op string, faultMode bool) {
	debug.SetPanicOnFault(faultMode)
	if r := recover(); r != nil {
		*err = d.h.damage(op, r, d.unavail)
	}
}
