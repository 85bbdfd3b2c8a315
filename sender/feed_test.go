package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
)

// brokenWriter fails every write, as a caller that hung up does.
type brokenWriter struct{ h http.Header }

func (b *brokenWriter) Header() http.Header       { return b.h }
func (b *brokenWriter) WriteHeader(int)           {}
func (b *brokenWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func serve(t *testing.T, f *Feed) []map[string]any {
	t.Helper()
	w := httptest.NewRecorder()
	if _, err := f.Serve(context.Background(), w, "127.0.0.1"); err != nil || w.Code != 200 {
		t.Fatalf("serve: %v %d", err, w.Code)
	}
	var recs []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &recs); err != nil {
		t.Fatalf("answer %q: %v", w.Body, err)
	}
	return recs
}

// Pages of at most page_size, oldest first, each record once; a cut-off answer leaves its
// records pending; requeue serves again.
func TestFeedPages(t *testing.T) {
	s := newSender(t)
	f, err := s.AddFeed("contatos", FeedOptions{PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddFeed("contatos", FeedOptions{}); err == nil {
		t.Fatal("a feed defined twice")
	}
	if _, err := s.AddFeed("big", FeedOptions{PageSize: 1001}); err == nil {
		t.Fatal("a page over 1000 records")
	}
	var recs [][]byte
	for i := 0; i < 7; i++ {
		recs = append(recs, []byte(fmt.Sprintf(`{"codigo":"%d"}`, i)))
	}
	ctx := context.Background()
	if _, err := f.Publish(ctx, "batch-1", recs); err != nil {
		t.Fatal(err)
	}
	if res, _ := f.Publish(ctx, "batch-1", recs); !res.Replayed {
		t.Fatal("the same Idempotency-Key stored its records again")
	}
	// A caller that hangs up mid-answer: its page stays pending.
	if _, err := f.Serve(ctx, &brokenWriter{h: http.Header{}}, "x"); err == nil {
		t.Fatal("a cut-off answer reported success")
	}
	var got []string
	for _, want := range []int{3, 3, 1, 0} {
		page := serve(t, f)
		if len(page) != want {
			t.Fatalf("page of %d, want %d", len(page), want)
		}
		for _, r := range page {
			got = append(got, r["codigo"].(string))
		}
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5 6]" {
		t.Fatalf("served %v, want each record once, oldest first", got)
	}
	st, _ := f.Status(ctx)
	if st.Pending != 0 || st.Served != 7 || st.LastCall == nil || st.LastCall.Records != 0 {
		t.Fatalf("status %+v", st)
	}
	n, err := f.Requeue(ctx, "", time.Now().Add(-time.Minute))
	if err != nil || n != 7 {
		t.Fatalf("requeue: %d %v", n, err)
	}
	if st, _ := f.Status(ctx); st.Pending != 7 || st.Served != 0 {
		t.Fatalf("after the requeue: %+v", st)
	}
	for _, want := range []int{3, 3, 1} {
		if got := len(serve(t, f)); got != want {
			t.Fatalf("after the requeue: a page of %d, want %d", got, want)
		}
	}
	if st, _ := f.Status(ctx); st.Pending != 0 || st.Served != 7 {
		t.Fatalf("all served again: %+v", st)
	}
}

// A caller that closes its connection right after reading the whole answer (its request's
// context ends) got the page: it is served, not released for a second call.
func TestFeedPageReadThenClosedIsServed(t *testing.T) {
	s := newSender(t)
	f, err := s.AddFeed("c", FeedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Publish(context.Background(), "", [][]byte{[]byte(`{"codigo":"1"}`)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &closingWriter{ResponseRecorder: httptest.NewRecorder(), cancel: cancel}
	if n, err := f.Serve(ctx, w, "x"); err != nil || n != 1 {
		t.Fatalf("serve: %d %v", n, err)
	}
	if again := serve(t, f); len(again) != 0 {
		t.Fatalf("the page was served twice: %v", again)
	}
}

// closingWriter ends the request's context once the answer is written, as a caller that
// hangs up right after reading does.
type closingWriter struct {
	*httptest.ResponseRecorder
	cancel func()
}

func (c *closingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseRecorder.Write(p)
	c.cancel()
	return n, err
}

// leaseFailing is a queue whose store is away when leasing.
type leaseFailing struct{ failingQueue }

func (leaseFailing) Lease(context.Context, string, int, time.Time, time.Duration) ([]queue.Delivery, error) {
	return nil, queue.ErrUnavailable
}

// A store outage is a 503 problem with Retry-After, and serves nothing.
func TestFeedStoreAway(t *testing.T) {
	s := newSender(t)
	f, _ := s.AddFeed("c", FeedOptions{})
	down := &Sender{queue: leaseFailing{failingQueue{s.queue, queue.ErrUnavailable}}, reg: s.reg, d: s.d}
	fd := &Feed{s: down, name: f.name, endpoint: f.endpoint, opts: f.opts}
	w := httptest.NewRecorder()
	n, err := fd.Serve(context.Background(), w, "x")
	if n != 0 || err == nil || w.Code != 503 || w.Header().Get("Content-Type") != "application/problem+json" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("store away: %d %v %d %s %v", n, err, w.Code, w.Body, w.Header())
	}
}
