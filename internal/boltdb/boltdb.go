// Package boltdb opens Hookgate's embedded store file lazily, so that merely provisioning
// a config (as `caddy validate` does) never takes the file's lock.
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

	mu     sync.Mutex
	db     *bolt.DB
	closed bool
}

// New returns a handle for the file at path; nothing is opened yet.
func New(path string) *Handle { return &Handle{path: path} }

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
	h.db = db
	return db, nil
}

// Close closes the file if it was opened.
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	if h.db == nil {
		return nil
	}
	err := h.db.Close()
	h.db = nil
	return err
}
