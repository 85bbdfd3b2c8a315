package boltqueue

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/sender/queue"
	bolt "go.etcd.io/bbolt"
)

// TestRecordsWrittenByEarlierVersionsStayServed moves a delivery's record to where
// versions before q_records kept it (q_deliveries, under its id) and checks that it is
// still read, leased, finished in place, not queued twice, listed and swept.
func TestRecordsWrittenByEarlierVersionsStayServed(t *testing.T) {
	ctx := context.Background()
	h := boltdb.New(filepath.Join(t.TempDir(), "q.db"))
	defer func() { _ = h.Close() }()
	s := New(h, Options{Retention: time.Hour})
	ev := queue.Event{ID: "evt_old", Type: "t", Body: []byte(`{"a":1}`)}
	if n, err := s.Enqueue(ctx, ev, []string{"ep"}); err != nil || n != 1 {
		t.Fatalf("enqueue: %d %v", n, err)
	}
	id := queue.DeliveryID("ep", ev.ID)
	db, _ := s.db()
	if err := db.Update(func(tx *bolt.Tx) error { // the earlier layout
		v := recordValue(tx, id)
		if v == nil {
			t.Fatal("no record")
		}
		v = append([]byte(nil), v...)
		if err := deleteRecord(tx, id); err != nil {
			return err
		}
		return tx.Bucket(bDeliveries).Put([]byte(id), v)
	}); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Get(ctx, id); err != nil || string(d.Event.Body) != `{"a":1}` {
		t.Fatalf("get: %+v %v", d, err)
	}
	if n, err := s.Enqueue(ctx, ev, []string{"ep"}); err != nil || n != 0 {
		t.Fatalf("the same event again: created %d, %v", n, err)
	}
	ds, err := s.Lease(ctx, "ep", 10, time.Now().Add(time.Second), time.Minute)
	if err != nil || len(ds) != 1 || ds[0].ID != id {
		t.Fatalf("lease: %+v %v", ds, err)
	}
	if err := s.Finish(ctx, []queue.Result{{Delivery: ds[0], Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}}}); err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bRecords).Stats().KeyN != 0 || tx.Bucket(bIndex).Get([]byte(id)) != nil {
			t.Error("finishing an earlier version's record wrote a second copy")
		}
		return nil
	})
	if d, err := s.Get(ctx, id); err != nil || d.State != queue.Delivered {
		t.Fatalf("after finish: %+v %v", d, err)
	}
	if got, err := s.List(ctx, queue.Filter{Endpoints: []string{"ep"}}); err != nil || len(got) != 1 {
		t.Fatalf("list: %d %v", len(got), err)
	}
	if err := s.Sweep(time.Now().Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, id); err == nil {
		t.Fatal("the swept record is still there")
	}
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bDeliveries).Get([]byte(id)) != nil {
			t.Error("sweep left the earlier version's record")
		}
		return nil
	})
}

// TestSweepRemovesIndexAndRecord: a delivered record's expiry removes both its record and
// its index entry.
func TestSweepRemovesIndexAndRecord(t *testing.T) {
	ctx := context.Background()
	h := boltdb.New(filepath.Join(t.TempDir(), "q.db"))
	defer func() { _ = h.Close() }()
	s := New(h, Options{Retention: time.Hour})
	if _, err := s.Enqueue(ctx, queue.Event{ID: "evt_x", Type: "t", Body: []byte(`{}`)}, []string{"ep"}); err != nil {
		t.Fatal(err)
	}
	ds, _ := s.Lease(ctx, "ep", 10, time.Now().Add(time.Second), time.Minute)
	if len(ds) != 1 {
		t.Fatalf("leased %d", len(ds))
	}
	if err := s.Finish(ctx, []queue.Result{{Delivery: ds[0], Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(time.Now().Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	db, _ := s.db()
	_ = db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bRecords).Stats().KeyN; n != 0 {
			t.Errorf("%d records left", n)
		}
		if n := tx.Bucket(bIndex).Stats().KeyN; n != 0 {
			t.Errorf("%d index entries left", n)
		}
		return nil
	})
}

// A unique event (an inbound webhook's) writes no q_events record: one page at a random
// key fewer per event. A publisher's event writes its body's hash there.
func TestUniqueEventWritesNoConflictRecord(t *testing.T) {
	ctx := context.Background()
	h := boltdb.New(filepath.Join(t.TempDir(), "q.db"))
	defer func() { _ = h.Close() }()
	s := New(h, Options{Retention: time.Hour})
	events := func() int { return conflictRecords(s) }
	if _, err := s.Enqueue(ctx, queue.Event{ID: queue.NewEventID(), Type: "t", Body: []byte(`{}`), Unique: true}, []string{"ep"}); err != nil {
		t.Fatal(err)
	}
	if n := events(); n != 0 {
		t.Fatalf("q_events holds %d after a unique event", n)
	}
	if _, err := s.Enqueue(ctx, queue.Event{ID: "evt_pub", Type: "t", Body: []byte(`{}`)}, []string{"ep"}); err != nil {
		t.Fatal(err)
	}
	if n := events(); n != 1 {
		t.Fatalf("q_events holds %d after a publisher's event", n)
	}
}

// A publisher's event's conflict record is swept with its delivered delivery, after the
// retention (as Redis expires it): the file does not keep a key per event for ever.
func TestSweepDeletesTheConflictRecord(t *testing.T) {
	ctx := context.Background()
	h := boltdb.New(filepath.Join(t.TempDir(), "q.db"))
	defer func() { _ = h.Close() }()
	s := New(h, Options{Retention: time.Hour})
	if _, err := s.Enqueue(ctx, queue.Event{ID: "evt_pub", Type: "t", Body: []byte(`{}`)}, []string{"ep"}); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Lease(ctx, "ep", 1, time.Now(), time.Minute)
	if err != nil || len(ds) != 1 {
		t.Fatalf("lease: %v %v", ds, err)
	}
	if err := s.Finish(ctx, []queue.Result{{Delivery: ds[0], Outcome: queue.Done, Attempt: queue.Attempt{At: time.Now(), Status: 200}}}); err != nil {
		t.Fatal(err)
	}
	events := func() int { return conflictRecords(s) }
	if err := s.Sweep(time.Now()); err != nil || events() != 1 {
		t.Fatalf("within the retention: %v, %d conflict records", err, events())
	}
	if err := s.Sweep(time.Now().Add(2 * time.Hour)); err != nil || events() != 0 {
		t.Fatalf("after the retention: %v, %d conflict records", err, events())
	}
	if n, err := s.Enqueue(ctx, queue.Event{ID: "evt_pub", Type: "t", Body: []byte(`{"other":1}`)}, []string{"ep"}); err != nil || n != 1 {
		t.Fatalf("the id again after the retention: %d %v", n, err)
	}
}

// conflictRecords is how many events' body hashes q_events holds.
func conflictRecords(s *Store) int {
	db, _ := s.db()
	n := 0
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bEvents).Stats().KeyN; return nil })
	return n
}

// Delivery ids made from time-ordered event ids are told apart from hashed ones, which
// decides how full q_index's pages are left when they split.
func TestTimeOrderedDeliveryIDs(t *testing.T) {
	for id, want := range map[string]bool{
		queue.DeliveryID("ep", queue.NewEventID()):               true,
		queue.NewDeliveryID("inbound-r-0a1b2c3d"):                true,
		queue.DeliveryID("ep", "evi_0123456789abcdef0123456789"): false,
		queue.DeliveryID("ep", "sender-id-1"):                    false,
		"no-tilde":                                               false,
	} {
		if got := timeOrdered(id); got != want {
			t.Errorf("timeOrdered(%q) = %v, want %v", id, got, want)
		}
	}
}
