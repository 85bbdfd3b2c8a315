// Package quarantinetest is the conformance suite every quarantine.Store passes: the
// embedded and the Redis store (single and Cluster) run these same tests.
package quarantinetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver/quarantine"
)

// Fixture is one store under test (see ordertest.Fixture for the shape).
type Fixture struct {
	// Store is a fresh, empty store.
	Store quarantine.Store
	// Reopen closes Store and returns a new store over the same data.
	Reopen func() quarantine.Store
	// Beside returns a second store over the same data, as another instance; nil for a
	// store one process holds.
	Beside func() quarantine.Store
}

// Factory returns a fixture for one case.
type Factory func(t *testing.T) Fixture

func item(route string, at time.Time, body string) *quarantine.Item {
	return &quarantine.Item{ID: quarantine.NewID(at), Route: route, Time: at, Host: "example.com", URI: "/hooks/ploomes",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body), EventID: "ev-" + body,
		Violations: []problem.Violation{{Pointer: "/New/Id", Message: "expected integer, but got string"}}}
}

// Run runs the suite.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()
	lim := quarantine.Limits{}
	hold := func(t *testing.T, s quarantine.Store, it *quarantine.Item) {
		t.Helper()
		if err := s.Hold(ctx, it, lim); err != nil {
			t.Fatalf("Hold %s: %v", it.ID, err)
		}
	}

	t.Run("HoldGetListInOrder", func(t *testing.T) {
		s := newStore(t).Store
		now := time.Now()
		var ids []string
		for i := range 5 {
			it := item("r", now.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf(`{"n":%d}`, i))
			hold(t, s, it)
			ids = append(ids, it.ID)
		}
		hold(t, s, item("other", now, `{}`))
		got, err := s.Get(ctx, "r", ids[2])
		if err != nil || string(got.Body) != `{"n":2}` || got.State != quarantine.Held || got.EventID != "ev-{\"n\":2}" ||
			len(got.Violations) != 1 || got.Violations[0].Pointer != "/New/Id" || got.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if _, err := s.Get(ctx, "r", "q_nope"); !errors.Is(err, quarantine.ErrNotFound) {
			t.Fatalf("Get missing: %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, "nosuchroute", ids[0]); !errors.Is(err, quarantine.ErrNotFound) {
			t.Fatalf("Get on another route: %v, want ErrNotFound", err)
		}
		page, err := s.List(ctx, "r", quarantine.Filter{Limit: 3})
		if err != nil || len(page) != 3 || page[0].ID != ids[0] || page[2].ID != ids[2] {
			t.Fatalf("List page 1 = %d items, %v", len(page), err)
		}
		rest, err := s.List(ctx, "r", quarantine.Filter{After: page[2].ID})
		if err != nil || len(rest) != 2 || rest[0].ID != ids[3] || rest[1].ID != ids[4] {
			t.Fatalf("List after = %+v, %v", rest, err)
		}
		st, err := s.Stats(ctx, "r")
		if err != nil || st.Held != 5 || st.History != 0 || st.HeldBytes <= 0 || st.Oldest.UnixMilli() != now.UnixMilli() {
			t.Fatalf("Stats = %+v, %v", st, err)
		}
		if st, err := s.Stats(ctx, "nosuchroute"); err != nil || st.Held != 0 {
			t.Fatalf("Stats of an empty route = %+v, %v", st, err)
		}
	})

	t.Run("LeaseIsExclusiveAndSettleMovesToHistory", func(t *testing.T) {
		f := newStore(t)
		s := f.Store
		it := item("r", time.Now(), `{"a":1}`)
		hold(t, s, it)
		got, ok, err := s.Lease(ctx, "r", it.ID, "tok1", time.Minute)
		if err != nil || !ok || string(got.Body) != `{"a":1}` {
			t.Fatalf("Lease = %v, %v", ok, err)
		}
		if _, ok, err := s.Lease(ctx, "r", it.ID, "tok2", time.Minute); err != nil || ok {
			t.Fatalf("second Lease = %v, %v; want refused", ok, err)
		}
		if ok, err := s.Settle(ctx, "r", it.ID, "", quarantine.Outcome{State: quarantine.Dropped}, time.Now()); err != nil || ok {
			t.Fatalf("drop of a leased item = %v, %v; want refused", ok, err)
		}
		if ok, err := s.Settle(ctx, "r", it.ID, "tok2", quarantine.Outcome{State: quarantine.Released}, time.Now()); err != nil || ok {
			t.Fatalf("Settle with another's token = %v, %v; want refused", ok, err)
		}
		ok, err = s.Settle(ctx, "r", it.ID, "tok1", quarantine.Outcome{State: quarantine.Released, Outcome: "accepted", Request: "req_1"}, time.Now())
		if err != nil || !ok {
			t.Fatalf("Settle = %v, %v", ok, err)
		}
		if ok, err := s.Settle(ctx, "r", it.ID, "tok1", quarantine.Outcome{State: quarantine.Released}, time.Now()); err != nil || ok {
			t.Fatalf("second Settle = %v, %v; want refused (not held)", ok, err)
		}
		if _, ok, _ := s.Lease(ctx, "r", it.ID, "tok3", time.Minute); ok {
			t.Fatal("a released item was leased again")
		}
		got, err = s.Get(ctx, "r", it.ID)
		if err != nil || got.State != quarantine.Released || got.Attempts != 1 || got.LastOutcome != "accepted" ||
			got.Request != "req_1" || got.Settled == nil || string(got.Body) != `{"a":1}` {
			t.Fatalf("released item = %+v, %v", got, err)
		}
		held, _ := s.List(ctx, "r", quarantine.Filter{})
		hist, _ := s.List(ctx, "r", quarantine.Filter{State: quarantine.Released})
		if len(held) != 0 || len(hist) != 1 {
			t.Fatalf("held %d, released %d; want 0, 1", len(held), len(hist))
		}
		st, _ := s.Stats(ctx, "r")
		if st.Held != 0 || st.HeldBytes != 0 || st.History != 1 || st.Bytes <= 0 || !st.Oldest.IsZero() {
			t.Fatalf("Stats = %+v", st)
		}
	})

	t.Run("StillInvalidStaysHeldWithNewViolations", func(t *testing.T) {
		s := newStore(t).Store
		it := item("r", time.Now(), `{"a":1}`)
		hold(t, s, it)
		if _, ok, _ := s.Lease(ctx, "r", it.ID, "t", time.Minute); !ok {
			t.Fatal("not leased")
		}
		nv := []problem.Violation{{Pointer: "/New/Name", Message: "missing"}}
		if ok, err := s.Settle(ctx, "r", it.ID, "t", quarantine.Outcome{State: quarantine.Held, Outcome: "schema_violation", Violations: nv}, time.Now()); !ok || err != nil {
			t.Fatalf("Settle held = %v, %v", ok, err)
		}
		got, _ := s.Get(ctx, "r", it.ID)
		if got.State != quarantine.Held || got.Attempts != 1 || got.LastOutcome != "schema_violation" || got.Violations[0].Pointer != "/New/Name" {
			t.Fatalf("item = %+v", got)
		}
		if _, ok, _ := s.Lease(ctx, "r", it.ID, "t2", time.Minute); !ok {
			t.Fatal("a settled-back item cannot be leased again")
		}
		if ok, _ := s.Settle(ctx, "r", it.ID, "t2", quarantine.Outcome{State: quarantine.Dropped}, time.Now()); !ok {
			t.Fatal("drop under own lease refused")
		}
		got, _ = s.Get(ctx, "r", it.ID)
		if got.State != quarantine.Dropped || got.Settled == nil {
			t.Fatalf("dropped item = %+v", got)
		}
	})

	t.Run("LapsedLeaseCanBeTaken", func(t *testing.T) {
		s := newStore(t).Store
		it := item("r", time.Now(), `{}`)
		hold(t, s, it)
		if _, ok, _ := s.Lease(ctx, "r", it.ID, "a", 20*time.Millisecond); !ok {
			t.Fatal("not leased")
		}
		time.Sleep(40 * time.Millisecond)
		if _, ok, _ := s.Lease(ctx, "r", it.ID, "b", time.Minute); !ok {
			t.Fatal("a lapsed lease was not taken over")
		}
		if ok, _ := s.Settle(ctx, "r", it.ID, "a", quarantine.Outcome{State: quarantine.Released}, time.Now()); ok {
			t.Fatal("the lapsed lease settled over the new one")
		}
	})

	t.Run("ConcurrentLeasesOneWins", func(t *testing.T) {
		f := newStore(t)
		it := item("r", time.Now(), `{}`)
		hold(t, f.Store, it)
		stores := []quarantine.Store{f.Store}
		if f.Beside != nil {
			stores = append(stores, f.Beside())
		}
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, ok, err := stores[i%len(stores)].Lease(ctx, "r", it.ID, fmt.Sprint("t", i), time.Minute); err == nil && ok {
					won.Add(1)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d leases won; want 1", won.Load())
		}
	})

	t.Run("FullEvictsHistoryNeverHeld", func(t *testing.T) {
		s := newStore(t).Store
		small := quarantine.Limits{MaxBytes: 4000}
		body := strings.Repeat("x", 900)
		var held []*quarantine.Item
		now := time.Now()
		for i := 0; ; i++ {
			it := item("r", now.Add(time.Duration(i)*time.Millisecond), body)
			err := s.Hold(ctx, it, small)
			if errors.Is(err, quarantine.ErrFull) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, it)
			if i > 100 {
				t.Fatal("never full")
			}
		}
		if len(held) < 2 {
			t.Fatalf("only %d held under 4000 bytes", len(held))
		}
		// Release one: it moves to the history, which the next hold may evict.
		if _, ok, _ := s.Lease(ctx, "r", held[0].ID, "t", time.Minute); !ok {
			t.Fatal("not leased")
		}
		if ok, _ := s.Settle(ctx, "r", held[0].ID, "t", quarantine.Outcome{State: quarantine.Released}, time.Now()); !ok {
			t.Fatal("not settled")
		}
		next := item("r", now.Add(time.Second), body)
		if err := s.Hold(ctx, next, small); err != nil {
			t.Fatalf("Hold after a release: %v (the history should make room)", err)
		}
		if _, err := s.Get(ctx, "r", held[0].ID); !errors.Is(err, quarantine.ErrNotFound) {
			t.Fatalf("the released item is still kept (%v): history should have been evicted for a held one", err)
		}
		for _, it := range held[1:] {
			if got, err := s.Get(ctx, "r", it.ID); err != nil || got.State != quarantine.Held {
				t.Fatalf("held item %s lost: %v", it.ID, err)
			}
		}
		st, _ := s.Stats(ctx, "r")
		if st.Bytes > small.MaxBytes || st.Held != len(held) {
			t.Fatalf("Stats = %+v; want at most %d bytes and %d held", st, small.MaxBytes, len(held))
		}
	})

	t.Run("TrimDeletesWhatRetentionSaysIsOld", func(t *testing.T) {
		s := newStore(t).Store
		now := time.Now()
		old := item("r", now.Add(-15*24*time.Hour), `{"old":1}`)
		oldHist := item("r", now.Add(-15*24*time.Hour+time.Second), `{"old":2}`)
		fresh := item("r", now, `{"new":1}`)
		for _, it := range []*quarantine.Item{old, oldHist, fresh} {
			hold(t, s, it)
		}
		s.Lease(ctx, "r", oldHist.ID, "t", time.Minute)
		s.Settle(ctx, "r", oldHist.ID, "t", quarantine.Outcome{State: quarantine.Released}, now)
		n, err := s.Trim(ctx, "r", quarantine.Limits{}, now)
		if err != nil || n != 1 {
			t.Fatalf("Trim = %d, %v; want 1 expired held request", n, err)
		}
		for _, it := range []*quarantine.Item{old, oldHist} {
			if _, err := s.Get(ctx, "r", it.ID); !errors.Is(err, quarantine.ErrNotFound) {
				t.Fatalf("%s survived the trim: %v", it.ID, err)
			}
		}
		if _, err := s.Get(ctx, "r", fresh.ID); err != nil {
			t.Fatalf("fresh item trimmed: %v", err)
		}
		st, _ := s.Stats(ctx, "r")
		if st.Held != 1 || st.History != 0 || st.Bytes != fresh.Size() {
			t.Fatalf("Stats = %+v; want 1 held of %d bytes", st, fresh.Size())
		}
	})

	t.Run("SurvivesReopen", func(t *testing.T) {
		f := newStore(t)
		it := item("r", time.Now(), `{"kept":true}`)
		hold(t, f.Store, it)
		f.Store.AddDrift(ctx, "r", []quarantine.Group{{Kind: quarantine.KindViolation, Pointer: "/a", Message: "m", Count: 1, First: time.Now(), Last: time.Now()}})
		s := f.Reopen()
		got, err := s.Get(ctx, "r", it.ID)
		if err != nil || string(got.Body) != `{"kept":true}` || got.State != quarantine.Held {
			t.Fatalf("after reopen: %+v, %v", got, err)
		}
		if d, err := s.Drift(ctx, "r"); err != nil || len(d) != 1 {
			t.Fatalf("drift after reopen: %+v, %v", d, err)
		}
	})

	t.Run("DriftMergesAndIsBounded", func(t *testing.T) {
		f := newStore(t)
		s := f.Store
		t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		t1 := t0.Add(30 * time.Minute)
		g := quarantine.Group{Kind: quarantine.KindViolation, Pointer: "/New/Id", Message: "expected integer", Count: 2, First: t1, Last: t1, Example: `{"first":1}`}
		if err := s.AddDrift(ctx, "r", []quarantine.Group{g}); err != nil {
			t.Fatal(err)
		}
		other := s
		if f.Beside != nil {
			other = f.Beside()
		}
		g2 := g
		g2.Count, g2.First, g2.Last, g2.Example = 3, t0, t0.Add(50*time.Minute), `{"second":1}`
		un := quarantine.Group{Kind: quarantine.KindUnnamed, Pointer: "/New/Foo", Message: "not named by the schema", Count: 1, First: t1, Last: t1}
		if err := other.AddDrift(ctx, "r", []quarantine.Group{g2, un}); err != nil {
			t.Fatal(err)
		}
		d, err := s.Drift(ctx, "r")
		if err != nil || len(d) != 2 {
			t.Fatalf("Drift = %+v, %v", d, err)
		}
		if d[0].Pointer != "/New/Id" || d[0].Count != 5 || !d[0].First.Equal(t0) || !d[0].Last.Equal(t0.Add(50*time.Minute)) || d[0].Example != `{"first":1}` {
			t.Fatalf("merged group = %+v", d[0])
		}
		if d[1].Kind != quarantine.KindUnnamed || d[1].Count != 1 {
			t.Fatalf("unnamed group = %+v", d[1])
		}
		many := make([]quarantine.Group, 0, quarantine.MaxGroups+10)
		for i := range quarantine.MaxGroups + 10 {
			many = append(many, quarantine.Group{Kind: quarantine.KindViolation, Pointer: fmt.Sprintf("/f%d", i), Message: "m", Count: 1, First: t1, Last: t1})
		}
		if err := s.AddDrift(ctx, "r", many); err != nil {
			t.Fatal(err)
		}
		d, _ = s.Drift(ctx, "r")
		if len(d) > quarantine.MaxGroups+2 {
			t.Fatalf("%d groups; want at most %d and the other groups", len(d), quarantine.MaxGroups)
		}
		var otherN int64
		for _, g := range d {
			if g.Pointer == quarantine.OtherPointer {
				otherN += g.Count
			}
		}
		if otherN != 12 { // 2 groups held already, so 198 new ones fit and 12 go to (other)
			t.Fatalf("(other) counts %d; want 12", otherN)
		}
		if err := s.ClearDrift(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.Drift(ctx, "r"); len(d) != 0 {
			t.Fatalf("after clear: %d groups", len(d))
		}
	})
}
