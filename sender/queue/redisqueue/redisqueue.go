// Package redisqueue is the delivery queue on Redis, shared by every Caddy instance that
// points at the same server or cluster.
//
// Every key of one endpoint carries the hash tag {<prefix>q:<endpoint>}, so each script
// touches one Cluster slot; an event's id record has its own tag. Per endpoint:
//
//	due     sorted set: pending delivery id -> due time (ms); a lease moves the score to the
//	        lease's end, so a worker that dies lets the delivery come due again by itself
//	dead    sorted set: dead delivery id -> time it died
//	recent  sorted set: delivery id -> created (ms), trimmed to the retention
//	d:<id>  hash: the delivery (event, body, state, attempt count, lease counter)
//	a:<id>  list: the attempt history (JSON, last 50)
//	latest  hash: event type -> latest event, for resend (latest.go)
//	ep      hash: disabled, reason, delivered count, last attempt
//
// Durability is Redis's own: run it with appendonly yes (and appendfsync always to make a
// 202 survive a power cut, not only a crash of Caddy).
package redisqueue

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/internal/group"
	"github.com/hookgate/hookgate/internal/redisx"
	"github.com/hookgate/hookgate/internal/storeerr"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

// Options tune a Store.
type Options struct {
	// Retention is how long delivered deliveries (and idempotency records) are kept.
	// Default 72h.
	Retention time.Duration
	// ReplicasAck is how many replicas must hold an enqueued delivery before Enqueue and
	// EnqueueBatch return (Redis' WAIT after the write). Default 0: once the master has it.
	ReplicasAck int
	// ReplicasTimeout bounds that wait; fewer replicas by then fail the enqueue as the store
	// being unavailable. Default DefaultReplicasTimeout (1s).
	ReplicasTimeout time.Duration
}

// Store is the Redis queue.
type Store struct {
	c         redis.UniversalClient
	prefix    string
	opts      Options
	retention atomic.Int64 // nanoseconds
	wake      *waker
	g         *group.Group[groupCall] // the writes waiting for the next pipeline (group.go)
}

var (
	_ queue.Store      = (*Store)(nil)
	_ queue.Notifier   = (*Store)(nil)
	_ queue.DueChecker = (*Store)(nil)

	_ queue.UncertainWriter = (*Store)(nil)
)

// UncertainWrites implements queue.UncertainWriter: a command whose reply was lost may
// have run, and replicas_ack's wait can run out after the primary wrote.
func (s *Store) UncertainWrites() bool { return true }

// New returns a queue on client c; every key starts with prefix.
func New(c redis.UniversalClient, prefix string, opts Options) *Store {
	if opts.Retention <= 0 {
		opts.Retention = queue.DefaultRetention
	}
	s := &Store{c: c, prefix: prefix, opts: opts}
	s.retention.Store(int64(opts.Retention))
	s.wake = newWaker(c, prefix+"wake")
	s.g = group.New(maxGroupCalls, s.sendGroup)
	return s
}

// SetRetention implements queue.Store.
func (s *Store) SetRetention(d time.Duration) {
	if d > 0 {
		s.retention.Store(int64(d))
	}
}

func (s *Store) keep() time.Duration { return time.Duration(s.retention.Load()) }

func (s *Store) tag(ep string) string { return s.prefix + "{" + s.prefix + "q:" + ep + "}:" }

// errUnavailable wraps every outage of this store: it reads "queue store unavailable", and
// errors.Is(err, storeerr.ErrUnavailable) holds for it.
var errUnavailable = storeerr.Unavailable("queue")

func classify(op string, err error) error { return redisx.Classify(op, err, errUnavailable) }

// ms is t as Redis scores and fields hold times: milliseconds since 1970, with the
// microseconds as three decimals ("1764690000000.123"), so deliveries queued within one
// millisecond keep their order. Earlier releases wrote whole milliseconds, which read the
// same.
func ms(t time.Time) string {
	us := t.UnixMicro()
	if us < 0 {
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	b := strconv.AppendInt(make([]byte, 0, 20), us/1000, 10)
	frac := us % 1000
	b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	return string(b)
}

var scripts = []*redis.Script{enqueueScript, leaseScript, finishScript, releaseScript, requeueScript, extendScript, abandonScript}

// pipelined runs fn's commands in one pipeline, its scripts by SHA (redisx.Pipelined).
func (s *Store) pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	return redisx.Pipelined(ctx, s.c, scripts, fn)
}

func fromMS(s string) time.Time {
	whole, frac, _ := strings.Cut(s, ".")
	v, _ := strconv.ParseInt(whole, 10, 64)
	us := v * 1000
	if len(frac) == 3 {
		f, _ := strconv.Atoi(frac)
		us += int64(f)
	}
	return time.UnixMicro(us).UTC()
}
