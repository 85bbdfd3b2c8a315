package redisqueue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/hookgate/hookgate/internal/lifecycle"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/redis/go-redis/v9"
)

// waker carries wake-ups between instances on one Redis channel: an instance that queued
// deliveries publishes the endpoints' names; every instance subscribed wakes those
// endpoints' idle workers. Announcements are coalesced (at most one PUBLISH in flight), so
// a burst of enqueues costs a few messages, off the request path. Pub/sub is lossy (a
// message sent while an instance is reconnecting is lost), which is why workers keep a
// slow poll.
type waker struct {
	c       redis.UniversalClient
	channel string
	self    string // this instance's mark, so its own messages are not applied twice
	local   queue.Bus

	mu      sync.Mutex
	pending map[string]struct{}
	kick    chan struct{}
	life    lifecycle.Base // the publisher and the subscriber run in it, from first use to close
}

func newWaker(c redis.UniversalClient, channel string) *waker {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &waker{c: c, channel: channel, self: hex.EncodeToString(b[:]), pending: map[string]struct{}{},
		kick: make(chan struct{}, 1)}
}

// start runs the publisher and the subscriber, once, on first use.
func (w *waker) start() {
	if w.life.Start() {
		w.life.Go(w.publish)
		w.life.Go(w.subscribe)
	}
}

func (w *waker) announce(endpoints []string) {
	w.local.Announce(endpoints)
	w.start()
	w.mu.Lock()
	for _, e := range endpoints {
		w.pending[e] = struct{}{}
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// publishEvery spaces the wake-up messages: a burst of enqueues within it is one message
// (other instances wake up to that much later; this one's workers were woken at once).
const publishEvery = 5 * time.Millisecond

func (w *waker) publish(stop context.Context) {
	var last time.Time
	for {
		select {
		case <-stop.Done():
			return
		case <-w.kick:
		}
		if wait := time.Until(last.Add(publishEvery)); wait > 0 {
			select {
			case <-stop.Done():
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		w.mu.Lock()
		names := make([]string, 0, len(w.pending))
		for n := range w.pending {
			names = append(names, n)
		}
		clear(w.pending)
		w.mu.Unlock()
		if len(names) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(stop, 2*time.Second)
		_ = w.c.Publish(ctx, w.channel, w.self+"\n"+strings.Join(names, "\n")).Err() // lost: the slow poll finds them
		cancel()
	}
}

func (w *waker) subscribe(ctx context.Context) {
	ps := w.c.Subscribe(ctx, w.channel) // go-redis resubscribes by itself after a reconnect
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(10 * time.Second))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			from, names, _ := strings.Cut(m.Payload, "\n")
			if from == w.self || names == "" {
				continue
			}
			w.local.Announce(strings.Split(names, "\n"))
		}
	}
}

func (w *waker) close() { w.life.Stop(nil, nil) }

// Announce implements queue.Notifier: local workers at once, other instances through Redis.
func (s *Store) Announce(endpoints []string) {
	if len(endpoints) > 0 {
		s.wake.announce(endpoints)
	}
}

// Listen implements queue.Notifier.
func (s *Store) Listen(fn func(endpoint string)) (stop func()) {
	s.wake.start()
	return s.wake.local.Listen(fn)
}

// Close stops the store's wake-up goroutines; the client is the caller's to close.
func (s *Store) Close() { s.wake.close() }
