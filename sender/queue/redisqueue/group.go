package redisqueue

import (
	"context"
	"errors"

	"github.com/hookgate/hookgate/internal/group"
	"github.com/redis/go-redis/v9"
)

// Grouped writes. Each async webhook's enqueue was a pipeline of its own: a write and a
// read syscall on each side, a connection taken from the pool, for one script call, while
// the other webhooks' enqueues went out beside it on other connections. Here the enqueues
// waiting when the store is free go to Redis together (internal/group): the first writer
// sends its write at once, those that arrive while it is in flight go in the next
// pipeline, sent by the first of them (in its goroutine), and so on. Each caller still
// returns only once its own write has been answered (and, with replicas_ack, acknowledged
// by the replicas: one WAIT covers the group's writes on each master), so a 202 promises
// what it promised before.

// maxGroupCalls caps the callers one pipeline carries.
const maxGroupCalls = 256

// groupCall is one caller's writes and the context it sends them on.
type groupCall struct {
	ctx    context.Context
	writes []write
}

// Groups returns how many grouped pipelines the store has sent (tests and benchmarks).
func (s *Store) Groups() int64 { return s.g.Batches() }

// writeAcked runs writes as part of the next group of writes sent to Redis and returns
// their result (see runWrites). An error that a command of the group got as Redis' reply
// is its command's own: the other callers are told nil, and each caller reads its own
// commands' results, which hold their errors. Any other error (the connection, the
// replicas' acknowledgement) is every caller's.
func (s *Store) writeAcked(ctx context.Context, writes []write) error {
	return s.g.Do(groupCall{ctx: ctx, writes: writes})
}

// sendGroup sends a group's writes in one pipeline, on the context of the call that leads
// it with its cancellation removed (other callers' writes ride on it; the client's read
// and write timeouts bound it).
func (s *Store) sendGroup(calls []*group.Call[groupCall]) {
	all := calls[0].Arg.writes
	if len(calls) > 1 {
		all = nil
		for _, c := range calls {
			all = append(all, c.Arg.writes...)
		}
	}
	err := s.runWrites(context.WithoutCancel(calls[0].Arg.ctx), all)
	var reply redis.Error
	if err != nil && s.opts.ReplicasAck <= 0 && errors.As(err, &reply) &&
		!redis.HasErrorPrefix(err, "MOVED") && !redis.HasErrorPrefix(err, "ASK") {
		err = nil // a command's own error, in its result
	}
	for _, c := range calls {
		c.Done(err)
	}
}
