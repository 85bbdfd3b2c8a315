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

// Fixture is one store under test and the other handles on its data a case may ask for.
// Every conformance suite (dedupetest, ordertest, queuetest, substest, reqlogtest) is
// given the same shape: Run(t, func(t *testing.T) Fixture), called once per case.
type Fixture struct {
	// Store is a fresh, empty store (its own file, or its own key prefix); the factory
	// cleans it up when the test ends.
	Store order.Store
	// Reopen closes Store (cleanly, where it has anything to close) and returns a new
	// store over the same data, as after a restart of the process.
	Reopen func() order.Store
	// Beside returns a second store over the same data that runs beside Store, as another
	// Caddy instance does; nil for a store that one process holds (the embedded file).
	Beside func() order.Store
}

// Factory returns a fixture for one case.
type Factory func(t *testing.T) Fixture

func enc(t *testing.T, raw string) string {
	t.Helper()
	v, err := order.Encode(order.Time, raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Run runs the suite, each case on a fixture of its own.
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
		s := newStore(t).Store
		won, lost := enc(t, "2025-10-01T14:05:00-03:00"), enc(t, "2025-10-01T17:04:00Z") // lost is a minute older
		pass(t, s, "row:7", won)
		if v, _, err := s.Claim(ctx, "row:7", lost, ttl); err != nil || v != order.Stale {
			t.Fatalf("an older event: %v, %v; want Stale", v, err)
		}
		pass(t, s, "row:7", won)  // equal: dedupe's business, not the guard's
		pass(t, s, "row:8", lost) // another record is independent
	})

	t.Run("OneClaimAtATime", func(t *testing.T) {
		s := newStore(t).Store
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
		s := newStore(t).Store
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
		s := newStore(t).Store
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
		s := newStore(t).Store
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

	t.Run("EveryYearInOrder", func(t *testing.T) {
		// Across the whole RFC 3339 range, and both edges of the int64 nanoseconds that
		// earlier releases encoded (1600 used to encode as about 2184).
		s := newStore(t).Store
		times := []string{"0000-01-01T00:00:00+23:59", "0000-01-01T00:00:00Z", "1600-01-01T00:00:00Z",
			"1677-09-21T00:12:43.145224191Z", "1677-09-21T00:12:43.145224192Z", "1970-01-01T00:00:00Z",
			"2025-03-11T09:21:00-03:00", "2262-04-11T23:47:16.854775807Z", "2262-04-11T23:47:16.854775808Z",
			"9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999-23:59"}
		for i, raw := range times {
			v := enc(t, raw)
			pass(t, s, "row:5", v)
			for _, earlier := range times[:i] {
				if vd, _, err := s.Claim(ctx, "row:5", enc(t, earlier), ttl); err != nil || vd != order.Stale {
					t.Fatalf("%s after %s: %v, %v; want Stale", earlier, raw, vd, err)
				}
			}
		}
	})

	t.Run("GetAndClear", func(t *testing.T) {
		s := newStore(t).Store
		if _, found, err := s.Get(ctx, "row:6"); err != nil || found {
			t.Fatalf("Get of a record never seen: %v, %v", found, err)
		}
		newer, older := enc(t, "2025-10-01T14:05:00Z"), enc(t, "2025-10-01T14:00:00Z")
		before := time.Now()
		pass(t, s, "row:6", newer)
		rec, found, err := s.Get(ctx, "row:6")
		if err != nil || !found || rec.Value != newer {
			t.Fatalf("Get after a commit: %+v %v %v", rec, found, err)
		}
		if rec.Expires.Before(before.Add(window-time.Second)) || rec.Expires.After(time.Now().Add(window+time.Second)) {
			t.Fatalf("Get: expires %v, want about %v from now", rec.Expires, window)
		}
		if found, err := s.Clear(ctx, "row:6"); err != nil || !found {
			t.Fatalf("Clear: %v, %v", found, err)
		}
		if _, found, err := s.Get(ctx, "row:6"); err != nil || found {
			t.Fatalf("Get after Clear: %v, %v", found, err)
		}
		if found, err := s.Clear(ctx, "row:6"); err != nil || found {
			t.Fatalf("Clear of nothing: %v, %v", found, err)
		}
		pass(t, s, "row:6", older) // cleared: an older event passes again
		// A claim held while the record is cleared stays held, and its commit records.
		_, tok, err := s.Claim(ctx, "row:6", newer, ttl)
		if err != nil || tok == "" {
			t.Fatal("claim", err)
		}
		if found, err := s.Clear(ctx, "row:6"); err != nil || !found {
			t.Fatalf("Clear under a claim: %v, %v", found, err)
		}
		if vd, _, _ := s.Claim(ctx, "row:6", newer, ttl); vd != order.Busy {
			t.Fatalf("Clear dropped the claim being held: %v", vd)
		}
		if err := s.Commit(ctx, "row:6", newer, tok, window); err != nil {
			t.Fatal(err)
		}
		if rec, found, _ := s.Get(ctx, "row:6"); !found || rec.Value != newer {
			t.Fatalf("the held claim's commit after Clear: %+v %v", rec, found)
		}
		// Another record is untouched by a clear.
		pass(t, s, "row:7", newer)
		_, _ = s.Clear(ctx, "row:6")
		if _, found, _ := s.Get(ctx, "row:7"); !found {
			t.Fatal("Clear of one record cleared another")
		}
	})

	t.Run("CommitSurvivesReopen", func(t *testing.T) {
		fx := newStore(t)
		newer, older := enc(t, "2025-10-01T14:05:00Z"), enc(t, "2025-10-01T14:00:00Z")
		pass(t, fx.Store, "row:1", newer)
		s := fx.Reopen()
		if v, _, err := s.Claim(ctx, "row:1", older, ttl); err != nil || v != order.Stale {
			t.Fatalf("after a reopen an older event is %v, %v; want Stale", v, err)
		}
		if rec, found, err := s.Get(ctx, "row:1"); err != nil || !found || rec.Value != newer {
			t.Fatalf("after a reopen: %+v %v %v", rec, found, err)
		}
	})

	t.Run("BesideSeesCommits", func(t *testing.T) {
		fx := newStore(t)
		if fx.Beside == nil {
			t.Log("one process holds this store: nothing runs beside it")
			return
		}
		newer, older := enc(t, "2025-10-01T14:05:00Z"), enc(t, "2025-10-01T14:00:00Z")
		other := fx.Beside()
		pass(t, fx.Store, "row:1", newer)
		if v, _, err := other.Claim(ctx, "row:1", older, ttl); err != nil || v != order.Stale {
			t.Fatalf("another instance lets an older event through: %v, %v", v, err)
		}
		if v, _, err := fx.Store.Claim(ctx, "row:2", newer, ttl); err != nil || v != order.Pass {
			t.Fatalf("claim: %v, %v", v, err)
		}
		if v, _, err := other.Claim(ctx, "row:2", newer, ttl); err != nil || v != order.Busy {
			t.Fatalf("another instance's claim of a held record: %v, %v; want Busy", v, err)
		}
	})
}
