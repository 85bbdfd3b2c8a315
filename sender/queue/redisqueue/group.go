package redisqueue

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Grouped writes. Each async webhook's enqueue was a pipeline of its own: a write and a
// read syscall on each side, a connection taken from the pool, for one script call, while
// the other webhooks' enqueues went out beside it on other connections. Here the enqueues
// waiting when the store is free go to Redis together: the first writer sends its write at
// once, those that arrive while it is in flight go in the next pipeline, sent by the first
// of them (in its goroutine), and so on. Each caller still returns only once its own
// write has been answered (and, with replicas_ack, acknowledged by the replicas: one WAIT
// covers the group's writes on each master), so a 202 promises what it promised before.

// maxGroupCalls caps the callers one pipeline carries.
const maxGroupCalls = 256

type groupCall struct {
	writes []write
	done   chan error    // the call's result (buffered)
	lead   chan struct{} // the call is to send the next group (buffered)
}

// group is the writers waiting for the next pipeline.
type group struct {
	mu      sync.Mutex
	waiting []*groupCall
	leading bool // a writer is sending, or has been asked to send the next group
	sent    int64
}

// Groups returns how many grouped pipelines the store has sent (tests and benchmarks).
func (s *Store) Groups() int64 {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.g.sent
}

// writeAcked runs writes as part of the next group of writes sent to Redis and returns
// their result (see runWrites). An error that a command of the group got as Redis' reply
// is its command's own: the other callers are told nil, and each caller reads its own
// commands' results, which hold their errors. Any other error (the connection, the
// replicas' acknowledgement) is every caller's.
//
// The group is sent on a context that ignores the caller's cancellation (other callers'
// writes ride on it); the client's read and write timeouts bound it.
func (s *Store) writeAcked(ctx context.Context, writes []write) error {
	c := &groupCall{writes: writes, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	s.g.mu.Lock()
	s.g.waiting = append(s.g.waiting, c)
	leader := !s.g.leading
	s.g.leading = true
	s.g.mu.Unlock()
	if leader {
		s.sendNext(ctx)
	}
	for {
		select {
		case err := <-c.done:
			return err
		case <-c.lead:
			s.sendNext(ctx)
		}
	}
}

// sendNext sends the writes waiting now (the caller's among them, unless it already has
// its result), then hands the next group to the first writer waiting after it.
func (s *Store) sendNext(ctx context.Context) {
	s.g.mu.Lock()
	calls := s.g.waiting
	if len(calls) > maxGroupCalls {
		calls = calls[:maxGroupCalls:maxGroupCalls]
	}
	s.g.waiting = s.g.waiting[len(calls):]
	s.g.sent++
	s.g.mu.Unlock()

	var all []write
	if len(calls) == 1 {
		all = calls[0].writes
	} else {
		for _, c := range calls {
			all = append(all, c.writes...)
		}
	}
	err := s.runWrites(context.WithoutCancel(ctx), all)
	var reply redis.Error
	if err != nil && s.opts.ReplicasAck <= 0 && errors.As(err, &reply) &&
		!redis.HasErrorPrefix(err, "MOVED") && !redis.HasErrorPrefix(err, "ASK") {
		err = nil // a command's own error, in its result
	}
	for _, c := range calls {
		c.done <- err
	}
	clear(calls) // the waiting list's array keeps no finished call

	s.g.mu.Lock()
	if len(s.g.waiting) == 0 {
		s.g.leading = false
		s.g.mu.Unlock()
		return
	}
	next := s.g.waiting[0]
	s.g.mu.Unlock()
	next.lead <- struct{}{}
}
