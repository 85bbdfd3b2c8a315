// Package boltdb owns the lifecycle of Hookgate's embedded store file: it opens it lazily
// (merely provisioning a config, as `caddy validate` does, never takes the file's lock),
// checks it before bbolt maps it, creates the buckets its users declared, runs their
// background tasks while it is open, and on Close stops them (each finishing its work, a
// last flush say) before closing the file.
package boltdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BatchDelay is how long bbolt's Batch waits for more writers before committing.
const BatchDelay = time.Millisecond

// Handle is a lazily opened bbolt file. It is safe for concurrent use.
type Handle struct {
	path string

	mu       sync.Mutex
	db       *bolt.DB
	closed   bool
	services []Service
	stop     chan struct{}
	tasks    sync.WaitGroup
}

// Service is one user of the file (the dedupe store, the queue): the buckets it needs and
// the background tasks it runs while the file is open.
type Service struct {
	// Buckets are created, when missing, as the file opens.
	Buckets [][]byte
	// Tasks each run in their own goroutine from the open until Close, which closes stop
	// and waits for them to return before it closes the file.
	Tasks []func(db *bolt.DB, stop <-chan struct{})
}

// New returns a handle for the file at path; nothing is opened yet.
func New(path string) *Handle { return &Handle{path: path, stop: make(chan struct{})} }

// Use declares a service. Call it before the file is first opened (in the service's
// constructor); a service declared later is an error at open.
func (h *Handle) Use(s Service) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.services = append(h.services, s)
}

// Path returns the file's path.
func (h *Handle) Path() string { return h.path }

// ErrClosed is returned by DB after Close.
var ErrClosed = errors.New("embedded store closed")

// DB opens the file on first use (creating its directory) and returns it. A failed open
// is retried on the next call.
func (h *Handle) DB() (*bolt.DB, error) {
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
	db, err := bolt.Open(h.path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("opening store file %s: it is locked by another process (two Caddy instances cannot share an embedded store; use Redis)", h.path)
		}
		return nil, fmt.Errorf("opening store file %s: %w", h.path, err)
	}
	// Batch (used to make accepted events durable) groups concurrent writers into one
	// commit. Its default 10ms wait for company caps each writer at 100 commits/s; a
	// commit here costs one fsync, and writers that arrive while one runs join the next
	// batch anyway, so a short wait is enough to group them.
	db.MaxBatchDelay = BatchDelay
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
		_ = db.Close()
		return nil, fmt.Errorf("preparing store file %s: %w", h.path, err)
	}
	h.db = db
	for _, s := range h.services {
		for _, task := range s.Tasks {
			h.tasks.Add(1)
			go func() {
				defer h.tasks.Done()
				task(db, h.stop)
			}()
		}
	}
	return db, nil
}

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
	close(h.stop)
	h.tasks.Wait() // outside the lock: a task may still ask for the file (and get ErrClosed)
	if db == nil {
		return nil
	}
	return db.Close()
}
