package redisqueue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"time"

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
	started bool
	stop    chan struct{}
	done    sync.WaitGroup
	closed  bool
}

func newWaker(c redis.UniversalClient, channel string) *waker {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &waker{c: c, channel: channel, self: hex.EncodeToString(b[:]), pending: map[string]struct{}{},
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
}

// start runs the publisher and the subscriber, once, on first use.
func (w *waker) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.closed {
		return
	}
	w.started = true
	w.done.Add(2)
	go w.publish()
	go w.subscribe()
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

func (w *waker) publish() {
	defer w.done.Done()
	var last time.Time
	for {
		select {
		case <-w.stop:
			return
		case <-w.kick:
		}
		if wait := time.Until(last.Add(publishEvery)); wait > 0 {
			select {
			case <-w.stop:
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
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = w.c.Publish(ctx, w.channel, w.self+"\n"+strings.Join(names, "\n")).Err() // lost: the slow poll finds them
		cancel()
	}
}

func (w *waker) subscribe() {
	defer w.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps := w.c.Subscribe(ctx, w.channel) // go-redis resubscribes by itself after a reconnect
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(10 * time.Second))
	for {
		select {
		case <-w.stop:
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

func (w *waker) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	started := w.started
	w.mu.Unlock()
	if started {
		close(w.stop)
		w.done.Wait()
	}
}

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
