// Package group runs concurrent writers' work together: everyone waiting when the last
// batch is done goes into the next one at once, led by the first of them in its own
// goroutine. The embedded store's group commit and the Redis queue's grouped enqueues use
// it.
//
// A lone writer does not wait: it leads a batch of one at once. Writers that arrive while
// a batch is running wait for the next one, so a batch lasts as long as the slowest write
// of its store (a commit and its fsyncs, a pipeline's round trip), never a fixed delay.
// Each caller returns only once its own call has its result.
package group

import "sync"

// Call is one writer's work in a batch; Run gives each call its result with Done.
type Call[T any] struct {
	// Arg is what the writer passed to Do.
	Arg  T
	done chan error    // the call's result (buffered)
	lead chan struct{} // the call is to run the next batch (buffered)
}

// Done gives the call its result. Run calls it once for every call of its batch.
func (c *Call[T]) Done(err error) { c.done <- err }

// Group batches calls. Its zero value is not usable: make one with New.
type Group[T any] struct {
	run func([]*Call[T])
	max int

	mu      sync.Mutex
	waiting []*Call[T]
	leading bool // a writer is running a batch, or has been asked to run the next one
	batches int64
}

// New returns a group whose batches of at most max calls are run by run, which must give
// every call of the batch its result (Call.Done) before it returns.
func New[T any](max int, run func([]*Call[T])) *Group[T] {
	return &Group[T]{run: run, max: max}
}

// Batches returns how many batches the group has run.
func (g *Group[T]) Batches() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.batches
}

// Waiting returns how many calls wait for a batch.
func (g *Group[T]) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiting)
}

// Do runs arg as part of the next batch and returns its result.
func (g *Group[T]) Do(arg T) error {
	c := &Call[T]{Arg: arg, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	g.mu.Lock()
	g.waiting = append(g.waiting, c)
	leader := !g.leading
	g.leading = true
	g.mu.Unlock()
	if leader {
		g.runNext()
	}
	for {
		select {
		case err := <-c.done:
			return err
		case <-c.lead:
			g.runNext()
		}
	}
}

// runNext runs the calls waiting now (the caller's among them, unless it already has its
// result), then hands the next batch to the first call waiting after them.
func (g *Group[T]) runNext() {
	g.mu.Lock()
	calls := g.waiting
	if len(calls) > g.max {
		calls = calls[:g.max:g.max]
	}
	g.waiting = g.waiting[len(calls):]
	g.batches++
	g.mu.Unlock()

	g.run(calls)
	clear(calls) // the waiting list's array keeps no finished call (nor what it holds)

	g.mu.Lock()
	if len(g.waiting) == 0 {
		g.leading = false
		g.mu.Unlock()
		return
	}
	next := g.waiting[0]
	g.mu.Unlock()
	next.lead <- struct{}{}
}
