// Package storeerr holds the errors every Hookgate store (dedupe, order, queue,
// subscription, request log; embedded or Redis) reports in the same way, so that a caller
// (the admin API answering 503 or 404, a sender retrying) tests one value whatever the
// store.
//
// The stores' own packages keep their names as aliases (queue.ErrUnavailable is
// ErrUnavailable) and wrap the value with context: a queue outage reads "queue store
// unavailable: redis evalsha: ..." and errors.Is(err, ErrUnavailable) holds for it.
package storeerr

import (
	"errors"
	"fmt"
)

var (
	// ErrUnavailable marks an error that means the store cannot serve right now: a network
	// error or timeout, a closed client or file, a Redis server that is loading, down or
	// read-only, an embedded file that is damaged. Retrying later may succeed; an HTTP
	// caller answers 503.
	ErrUnavailable = errors.New("store unavailable")
	// ErrNotFound marks an error that means the record asked for does not exist.
	ErrNotFound = errors.New("not found")
)

// Unavailable returns ErrUnavailable named after one store: Unavailable("queue") reads
// "queue store unavailable". A store wraps its outages with it once, as a package
// variable, so errors.Is(err, ErrUnavailable) holds for each of them.
func Unavailable(store string) error { return fmt.Errorf("%s %w", store, ErrUnavailable) }
