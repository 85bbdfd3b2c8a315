// Package dedupetest is the conformance suite every dedupe.Store implementation must pass.
package dedupetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/receiver/dedupe"
)

// Fixture is one store under test and the other handles on its data a case may ask for.
// Every conformance suite (dedupetest, ordertest, queuetest, substest, reqlogtest) is
// given the same shape: Run(t, func(t *testing.T) Fixture), called once per case.
type Fixture struct {
	// Store is a fresh, empty store (its own file, or its own key prefix); the factory
	// cleans it up when the test ends.
	Store dedupe.Store
	// Reopen closes Store (cleanly, where it has anything to close) and returns a new
	// store over the same data, as after a restart of the process.
	Reopen func() dedupe.Store
	// Beside returns a second store over the same data that runs beside Store, as another
	// Caddy instance does; nil for a store that one process holds (the embedded file).
	Beside func() dedupe.Store
}

// Factory returns a fixture for one case.
type Factory func(t *testing.T) Fixture

// Run runs the suite, each case on a fixture of its own.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()
	key := func(t *testing.T) string { return fmt.Sprintf("test:%s:%d", t.Name(), time.Now().UnixNano()) }

	t.Run("ClaimNewThenInFlight", func(t *testing.T) {
		s, k := newStore(t).Store, key(t)
		st, tok, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		if st != dedupe.New || tok == "" {
			t.Fatalf("first claim = %v %q, want new with a token", st, tok)
		}
		st, tok2, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		if st != dedupe.InFlight || tok2 != "" {
			t.Fatalf("second claim = %v %q, want in_flight without a token", st, tok2)
		}
	})
	t.Run("CommitMakesProcessed", func(t *testing.T) {
		s, k := newStore(t).Store, key(t)
		_, _, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		must(t, s.Commit(ctx, k, time.Hour))
		for i := 0; i < 2; i++ {
			st, _, err := s.Claim(ctx, k, time.Minute)
			must(t, err)
			if st != dedupe.Processed {
				t.Fatalf("claim after commit = %v, want processed", st)
			}
		}
	})
	t.Run("ReleaseLetsRetryThrough", func(t *testing.T) {
		s, k := newStore(t).Store, key(t)
		_, tok, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		must(t, s.Release(ctx, k, tok))
		st, _, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		if st != dedupe.New {
			t.Fatalf("claim after release = %v, want new", st)
		}
	})
	t.Run("ReleaseWithWrongTokenIsNoOp", func(t *testing.T) {
		s, k := newStore(t).Store, key(t)
		_, _, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		must(t, s.Release(ctx, k, "not-the-token"))
		st, _, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		if st != dedupe.InFlight {
			t.Fatalf("claim after foreign release = %v, want in_flight", st)
		}
	})
	t.Run("ReleaseDoesNotUndoCommit", func(t *testing.T) {
		s, k := newStore(t).Store, key(t)
		_, tok, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		must(t, s.Commit(ctx, k, time.Hour))
		must(t, s.Release(ctx, k, tok))
		st, _, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		if st != dedupe.Processed {
			t.Fatalf("claim = %v, want processed", st)
		}
	})
	t.Run("ClaimExpires", func(t *testing.T) {
		s, k := newStore(t).Store, key(t)
		_, _, err := s.Claim(ctx, k, 150*time.Millisecond)
		must(t, err)
		time.Sleep(300 * time.Millisecond)
		st, _, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		if st != dedupe.New {
			t.Fatalf("claim after the first claim expired = %v, want new", st)
		}
	})
	t.Run("WindowExpires", func(t *testing.T) {
		s, k := newStore(t).Store, key(t)
		_, _, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		must(t, s.Commit(ctx, k, 150*time.Millisecond))
		time.Sleep(300 * time.Millisecond)
		st, _, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		if st != dedupe.New {
			t.Fatalf("claim after the window = %v, want new", st)
		}
	})
	t.Run("KeysAreIndependent", func(t *testing.T) {
		s, k := newStore(t).Store, key(t)
		_, _, err := s.Claim(ctx, k+"a", time.Minute)
		must(t, err)
		must(t, s.Commit(ctx, k+"a", time.Hour))
		st, _, err := s.Claim(ctx, k+"b", time.Minute)
		must(t, err)
		if st != dedupe.New {
			t.Fatalf("other key = %v, want new", st)
		}
	})
	t.Run("ConcurrentClaimsOneWinner", func(t *testing.T) {
		s, k := newStore(t).Store, key(t)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, _, err := s.Claim(ctx, k, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if st == dedupe.New {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d of 50 concurrent claims won, want exactly 1", wins.Load())
		}
	})
	t.Run("ProcessedSurvivesRestart", func(t *testing.T) {
		fx, k := newStore(t), key(t)
		s := fx.Store
		_, _, err := s.Claim(ctx, k, time.Minute)
		must(t, err)
		must(t, s.Commit(ctx, k, time.Hour))
		_, _, err = s.Claim(ctx, k+"-inflight", time.Hour)
		must(t, err)
		s2 := fx.Reopen()
		st, _, err := s2.Claim(ctx, k, time.Minute)
		must(t, err)
		if st != dedupe.Processed {
			t.Fatalf("after restart = %v, want processed", st)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
