package subscription

import (
	"context"
	"errors"

	"github.com/hookgate/hookgate/internal/storeerr"
)

// Errors of a Store.
var (
	// ErrNotFound: no such subscription. It is storeerr.ErrNotFound, shared by every store.
	ErrNotFound = storeerr.ErrNotFound
	// ErrVersion: the subscription changed since it was read (a concurrent change).
	ErrVersion = errors.New("the subscription was changed concurrently")
	// ErrUnavailable: the store cannot be reached right now. It is storeerr.ErrUnavailable,
	// shared by every store; the subscription stores wrap it as "subscription store
	// unavailable".
	ErrUnavailable = storeerr.ErrUnavailable
)

// Store keeps subscriptions durably, shared by every instance that uses it. The embedded
// file and Redis implement it; both pass the conformance suite in substest.
type Store interface {
	// Put writes s if the stored version is still prev (0: it must not exist yet), else
	// ErrVersion. It returns once the write is durable, and announces the change to
	// every watcher.
	Put(ctx context.Context, s Subscription, prev int64) error
	// Delete removes a subscription and announces it; false if there was none.
	Delete(ctx context.Context, id string) (bool, error)
	// Get returns one subscription, or ErrNotFound.
	Get(ctx context.Context, id string) (Subscription, error)
	// All returns every subscription, ordered by id.
	All(ctx context.Context) ([]Subscription, error)
	// Watch calls changed with the ids written or deleted by anyone (this process
	// included) from now on, and with nil when changes may have been missed (after a lost
	// connection): the watcher then reloads everything. It runs until stop is called;
	// changed is called from one goroutine at a time.
	Watch(changed func(ids []string)) (stop func())
}
