// Package lifecycle is the one start/stop base of Hookgate's long-running services (the
// delivery dispatcher, the subscription manager, the request log's writer, the embedded
// store's background tasks): a service is started once and stopped once, its goroutines
// see one context that Stop cancels, and Stop returns only when every goroutine it ran
// has returned. So a config reload, which stops the old config's services, leaves none
// of their goroutines behind.
package lifecycle

import (
	"context"
	"sync"
)

type state int

const (
	idle state = iota
	running
	stopped
)

// Base is embedded in (or held by) a service. Its zero value is ready to use.
type Base struct {
	mu     sync.Mutex
	state  state
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start marks the service running and reports whether this call started it: false if it
// was started before, or stopped (a stopped service is not started again).
func (b *Base) Start() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != idle {
		return false
	}
	b.state = running
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return true
}

// Running reports whether the service was started and not yet stopped.
func (b *Base) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == running
}

// Context is cancelled when the service stops (at Stop, after its drain). Before Start
// it is nil.
func (b *Base) Context() context.Context {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ctx
}

// Go runs f in a goroutine that Stop waits for, with the service's context, and reports
// whether it did: a service that is not running runs nothing.
func (b *Base) Go(f func(ctx context.Context)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != running {
		return false
	}
	b.wg.Add(1)
	ctx := b.ctx
	go func() {
		defer b.wg.Done()
		f(ctx)
	}()
	return true
}

// Cancel cancels the service's context now, without waiting: its goroutines are told to
// return (a service that found it cannot go on, from inside one of them, says so with
// Cancel; Stop must still be called, and waits). It does nothing before Start.
func (b *Base) Cancel() {
	b.mu.Lock()
	cancel := b.cancel
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Stop stops the service once and reports whether this call stopped it. It runs drain
// (the service's own orderly shutdown while its context is still live: halting workers,
// unsubscribing; nil for none), then cancels the context, then runs after (nil for none;
// e.g. closing a channel the goroutines drain), then waits for every goroutine run with
// Go. A service never started is marked stopped and waits for nothing.
func (b *Base) Stop(drain, after func()) bool {
	b.mu.Lock()
	prev := b.state
	b.state = stopped
	cancel := b.cancel
	b.mu.Unlock()
	if prev != running {
		return false
	}
	if drain != nil {
		drain()
	}
	cancel()
	if after != nil {
		after()
	}
	b.wg.Wait()
	return true
}
