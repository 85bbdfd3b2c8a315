// Package substest is the conformance suite every subscription.Store must pass: the
// embedded and the Redis store run these same tests.
package substest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/sender/subscription"
)

// Fixture is one store under test and the other handles on its data a case may ask for.
// Every conformance suite (dedupetest, ordertest, queuetest, substest, reqlogtest) is
// given the same shape: Run(t, func(t *testing.T) Fixture), called once per case.
type Fixture struct {
	// Store is a fresh, empty store (its own file, or its own key prefix); the factory
	// cleans it up when the test ends.
	Store subscription.Store
	// Reopen closes Store (cleanly, where it has anything to close) and returns a new
	// store over the same data, as after a restart of the process.
	Reopen func() subscription.Store
	// Beside returns a second store over the same data that runs beside Store, as another
	// Caddy instance does; nil for a store that one process holds (the embedded file).
	Beside func() subscription.Store
}

// Factory returns a fixture for one case.
type Factory func(t *testing.T) Fixture

func sub(id string, v int64) subscription.Subscription {
	return subscription.Subscription{ID: id, URL: "https://example.com/" + id, Events: []string{"deal.*"},
		Secret: subscription.NewSecret(), Version: v, Created: time.Now().UTC().Truncate(time.Second)}
}

// Run runs the suite, each case on a fixture of its own. Where the store is shared
// (Beside is set), the watcher must hear another instance's writes.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()

	t.Run("PutGetAllDelete", func(t *testing.T) {
		s := newStore(t).Store
		a, b := sub(subscription.NewID(), 1), sub(subscription.NewID(), 1)
		a.Headers, a.Metadata, a.Retry = map[string]string{"X-A": "1"}, map[string]string{"team": "crm"}, []string{}
		for _, x := range []subscription.Subscription{b, a} {
			if err := s.Put(ctx, x, 0); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Get(ctx, a.ID)
		if err != nil || got.URL != a.URL || got.Secret != a.Secret || got.Headers["X-A"] != "1" || got.Metadata["team"] != "crm" ||
			got.Retry == nil || len(got.Retry) != 0 || !got.Created.Equal(a.Created) {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		all, err := s.All(ctx)
		if err != nil || len(all) != 2 || all[0].ID != min(a.ID, b.ID) {
			t.Fatalf("All = %v, %v", all, err)
		}
		if ok, err := s.Delete(ctx, a.ID); !ok || err != nil {
			t.Fatalf("Delete = %v, %v", ok, err)
		}
		if ok, _ := s.Delete(ctx, a.ID); ok {
			t.Fatal("deleted twice")
		}
		if _, err := s.Get(ctx, a.ID); !errors.Is(err, subscription.ErrNotFound) {
			t.Fatalf("Get(deleted) = %v", err)
		}
	})

	t.Run("CompareAndSet", func(t *testing.T) {
		s := newStore(t).Store
		a := sub(subscription.NewID(), 1)
		if err := s.Put(ctx, a, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, a, 0); !errors.Is(err, subscription.ErrVersion) {
			t.Fatalf("a second create = %v, want ErrVersion", err)
		}
		a.Version, a.Description = 2, "changed"
		if err := s.Put(ctx, a, 1); err != nil {
			t.Fatal(err)
		}
		a.Version = 3
		if err := s.Put(ctx, a, 1); !errors.Is(err, subscription.ErrVersion) {
			t.Fatalf("a stale change = %v, want ErrVersion", err)
		}
		if got, _ := s.Get(ctx, a.ID); got.Version != 2 || got.Description != "changed" {
			t.Fatalf("after changes: %+v", got)
		}
	})

	t.Run("WatchSeesEveryChange", func(t *testing.T) {
		fx := newStore(t)
		s := fx.Store
		var mu sync.Mutex
		var heard []string
		watch := func(st subscription.Store) func() {
			return st.Watch(func(ids []string) {
				mu.Lock()
				heard = append(heard, ids...)
				mu.Unlock()
			})
		}
		writer := s
		if fx.Beside != nil {
			writer = fx.Beside() // another instance writes; this one's watcher must hear it
		}
		stop := watch(s)
		defer stop()
		// No pause: a change made right after Watch returns must be seen.
		a, b := sub(subscription.NewID(), 1), sub(subscription.NewID(), 1)
		_ = writer.Put(ctx, a, 0)
		_ = writer.Put(ctx, b, 0)
		_, _ = writer.Delete(ctx, a.ID)
		want := []string{a.ID, b.ID, a.ID}
		deadline := time.Now().Add(3 * time.Second)
		for {
			mu.Lock()
			got := slices.Clone(heard)
			mu.Unlock()
			if slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("heard %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		_ = writer.Put(ctx, sub(subscription.NewID(), 1), 0)
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if len(heard) != 3 {
			t.Fatalf("heard after stop: %v", heard)
		}
	})

	t.Run("ManyAndDurable", func(t *testing.T) {
		fx := newStore(t)
		s := fx.Store
		var want []string
		for i := range 1200 {
			x := sub(fmt.Sprintf("sub_%026d", i), 1)
			if err := s.Put(ctx, x, 0); err != nil {
				t.Fatal(err)
			}
			want = append(want, x.ID)
		}
		s = fx.Reopen() // the file reopened (embedded), a new client (Redis)
		all, err := s.All(ctx)
		if err != nil || len(all) != len(want) {
			t.Fatalf("All after reopen: %d, %v", len(all), err)
		}
		for i, x := range all {
			if x.ID != want[i] {
				t.Fatalf("All[%d] = %s, want %s", i, x.ID, want[i])
			}
		}
	})
}
