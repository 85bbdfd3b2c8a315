// Package ordertest is the conformance suite every order.Store passes: the embedded and the
// Redis store run these same tests.
package ordertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/receiver/order"
)

// Factory returns a fresh store.
type Factory func(t *testing.T) order.Store

func enc(t *testing.T, raw string) string {
	t.Helper()
	v, err := order.Encode(order.Time, raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Run runs the suite.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()
	const ttl, window = time.Minute, time.Hour

	pass := func(t *testing.T, s order.Store, key, v string) {
		t.Helper()
		got, tok, err := s.Claim(ctx, key, v, ttl)
		if err != nil || got != order.Pass {
			t.Fatalf("Claim(%s, %s) = %v, %v; want Pass", key, v, got, err)
		}
		if err := s.Commit(ctx, key, v, tok, window); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("NewerPassesOlderIsStaleEqualPasses", func(t *testing.T) {
		s := newStore(t)
		won, lost := enc(t, "2025-10-01T14:05:00-03:00"), enc(t, "2025-10-01T17:04:00Z") // lost is a minute older
		pass(t, s, "row:7", won)
		if v, _, err := s.Claim(ctx, "row:7", lost, ttl); err != nil || v != order.Stale {
			t.Fatalf("an older event: %v, %v; want Stale", v, err)
		}
		pass(t, s, "row:7", won)  // equal: dedupe's business, not the guard's
		pass(t, s, "row:8", lost) // another record is independent
	})

	t.Run("OneClaimAtATime", func(t *testing.T) {
		s := newStore(t)
		v := enc(t, "2025-10-01T14:05:00-03:00")
		var wg sync.WaitGroup
		verdicts := make([]order.Verdict, 8)
		tokens := make([]string, 8)
		for i := range verdicts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				verdicts[i], tokens[i], _ = s.Claim(ctx, "row:1", v, ttl)
			}()
		}
		wg.Wait()
		passed := -1
		for i, vd := range verdicts {
			if vd == order.Pass {
				if passed >= 0 {
					t.Fatal("two concurrent claims of one record passed")
				}
				passed = i
			} else if vd != order.Busy {
				t.Fatalf("verdict %v, want Busy", vd)
			}
		}
		if passed < 0 {
			t.Fatal("no claim passed")
		}
		if err := s.Release(ctx, "row:1", tokens[passed]); err != nil {
			t.Fatal(err)
		}
		pass(t, s, "row:1", v) // released: free again, nothing recorded
		older := enc(t, "2025-10-01T14:00:00-03:00")
		if vd, _, _ := s.Claim(ctx, "row:1", older, ttl); vd != order.Stale {
			t.Fatalf("after the commit an older one is %v", vd)
		}
	})

	t.Run("ClaimLapses", func(t *testing.T) {
		s := newStore(t)
		v := enc(t, "2025-10-01T14:05:00Z")
		if vd, _, _ := s.Claim(ctx, "row:2", v, 100*time.Millisecond); vd != order.Pass {
			t.Fatal("first claim")
		}
		time.Sleep(200 * time.Millisecond)
		if vd, _, _ := s.Claim(ctx, "row:2", v, ttl); vd != order.Pass {
			t.Fatalf("a lapsed claim still blocks: %v", vd)
		}
	})

	t.Run("WindowEnds", func(t *testing.T) {
		s := newStore(t)
		newer, older := enc(t, "2025-10-01T14:05:00Z"), enc(t, "2025-10-01T14:00:00Z")
		_, tok, _ := s.Claim(ctx, "row:3", newer, ttl)
		if err := s.Commit(ctx, "row:3", newer, tok, 150*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if vd, _, _ := s.Claim(ctx, "row:3", older, ttl); vd != order.Pass {
			t.Fatalf("after the window an older event is %v", vd)
		}
	})

	t.Run("CommitNeverGoesBack", func(t *testing.T) {
		s := newStore(t)
		newer, older := enc(t, "2025-10-01T14:05:00Z"), enc(t, "2025-10-01T14:00:00Z")
		_, tokOld, _ := s.Claim(ctx, "row:4", older, ttl)
		_ = s.Release(ctx, "row:4", tokOld)
		pass(t, s, "row:4", newer)
		// A late commit of an older value with a stale token changes nothing.
		_ = s.Commit(ctx, "row:4", older, tokOld, window)
		if vd, _, _ := s.Claim(ctx, "row:4", older, ttl); vd != order.Stale {
			t.Fatalf("a stale token moved the newest back: %v", vd)
		}
	})
}
