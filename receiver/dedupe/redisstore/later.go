package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/hookgate/hookgate/receiver/dedupe"
)

// A Release that fails with the store away (a Cluster failover under the request: the
// master died after the claim reached its replica) is retried in the background.
// Otherwise the claim, now on the promoted replica, answers every retry of the sender
// 409 in flight until it times out (claim_timeout, 5 minutes by default). The retries
// run every retryEvery for up to retryFor; at most maxLater claims wait (beyond that a
// claim times out as before). Close stops them.
const (
	retryEvery = 500 * time.Millisecond
	retryFor   = 5 * time.Minute
	maxLater   = 10000
)

type laterRelease struct {
	tok   dedupe.Token
	until time.Time
}

// releaseLater queues key's failed release for the background retry, starting it if it
// is not running.
func (s *Store) releaseLater(key string, tok dedupe.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.later) >= maxLater {
		return
	}
	if s.later == nil {
		s.later = map[string]laterRelease{}
	}
	s.later[key] = laterRelease{tok: tok, until: time.Now().Add(retryFor)}
	if !s.retrying {
		s.retrying = true
		s.wg.Add(1)
		go s.retryReleases()
	}
}

// retryReleases retries the queued releases until none is left or the store closes.
func (s *Store) retryReleases() {
	defer s.wg.Done()
	t := time.NewTicker(retryEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		batch := make(map[string]laterRelease, len(s.later))
		for k, v := range s.later {
			batch[k] = v
		}
		s.mu.Unlock()
		now := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		done := make([]string, 0, len(batch))
		for k, v := range batch {
			if now.After(v.until) {
				done = append(done, k) // the claim has timed out by itself
				continue
			}
			err := s.release(ctx, k, v.tok)
			if err == nil || !errors.Is(err, errUnavailable) {
				done = append(done, k) // released, or refused for good: retrying will not help
			} else if ctx.Err() != nil {
				break // the store is still away: try the rest next tick
			}
		}
		cancel()
		s.mu.Lock()
		for _, k := range done {
			if cur, ok := s.later[k]; ok && cur == batch[k] {
				delete(s.later, k)
			}
		}
		if len(s.later) == 0 {
			s.retrying = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// Close stops the background release retries; claims still waiting time out by
// themselves. The client is the caller's to close.
func (s *Store) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
}
