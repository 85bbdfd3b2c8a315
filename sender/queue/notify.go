package queue

import (
	"context"
	"sync"
	"time"
)

// Notifier is implemented by stores that tell every worker sharing the store (in this
// process and, for a shared store, on every instance) that deliveries were queued, so an
// idle worker is woken instead of polling often. Announcements are hints: a worker still
// polls now and then, in case one is lost.
type Notifier interface {
	// Announce tells listeners that deliveries of the endpoints may be due now. It never
	// blocks on the network.
	Announce(endpoints []string)
	// Listen calls fn with every endpoint announced, until stop is called. fn must return
	// quickly.
	Listen(fn func(endpoint string)) (stop func())
}

// Bus is an in-process Notifier: Announce calls every listener at once. The embedded
// store uses it as is (one process holds the file); the Redis store adds the other
// instances.
type Bus struct {
	mu        sync.RWMutex
	listeners map[int]func(string)
	next      int
}

// Announce implements Notifier.
func (b *Bus) Announce(endpoints []string) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, fn := range b.listeners {
		for _, e := range endpoints {
			fn(e)
		}
	}
}

// Listen implements Notifier.
func (b *Bus) Listen(fn func(string)) (stop func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.listeners == nil {
		b.listeners = map[int]func(string){}
	}
	id := b.next
	b.next++
	b.listeners[id] = fn
	return func() {
		b.mu.Lock()
		delete(b.listeners, id)
		b.mu.Unlock()
	}
}

// DueChecker is implemented by stores that can tell in one round trip which endpoints
// have deliveries due. A dispatcher over such a store sweeps all its endpoints at once on
// its safety-net poll, instead of each idle endpoint leasing on its own: 1,000 idle
// endpoints then cost one batched call every few seconds.
type DueChecker interface {
	// Due reports, for each endpoint, whether a delivery of it is due at now (a leased one
	// may be reported too).
	Due(ctx context.Context, endpoints []string, now time.Time) ([]bool, error)
}
