package sender

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testwait"
	"github.com/hookgate/hookgate/sender/queue"
)

// An endpoint's transform is applied once at enqueue: the stored, signed and delivered
// body is its output; filters see the original; other endpoints get the original.
func TestTransformAtEnqueue(t *testing.T) {
	sk := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	s := newSender(t,
		&Endpoint{Name: "erp", URL: sk.URL + "/erp", Filter: `data.New.StatusId == 2`,
			Transform: `with_headers({"id": body.New.Id, "kind": type, "to": endpoint, "event": event_id}, {"X-Kind": type})`},
		&Endpoint{Name: "raw", URL: sk.URL + "/raw"})
	res, err := s.Publish(context.Background(), Message{Type: "deal.won", Body: []byte(`{"New":{"Id":7,"StatusId":2}}`)})
	if err != nil || res.Endpoints != 2 {
		t.Fatalf("publish: %+v %v", res, err)
	}
	testwait.Until(t, 10*time.Second, func() bool { return sk.hits.Load() == 2 }, "both deliveries")
	for _, r := range sk.received() {
		switch r.body {
		case `{"event":"` + res.ID + `","id":7,"kind":"deal.won","to":"erp"}`:
			if r.header.Get("X-Kind") != "deal.won" || r.header.Get("Webhook-Id") != res.ID {
				t.Errorf("erp headers %v", r.header)
			}
		case `{"New":{"Id":7,"StatusId":2}}`:
		default:
			t.Errorf("unexpected delivery %s", r.body)
		}
	}
	d, err := s.Queue().Get(context.Background(), queue.DeliveryID("erp", res.ID))
	if err != nil || !strings.HasPrefix(string(d.Event.Body), `{"event":`) {
		t.Fatalf("stored: %s %v", d.Event.Body, err)
	}
}

// A transform that fails at enqueue holds the delivery with the error; its attempts make
// no request while it still fails, and the first attempt after the fix delivers the
// transformed body.
func TestTransformFailureIsHeldAndRetried(t *testing.T) {
	sk := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	s := newSender(t, &Endpoint{Name: "erp", URL: sk.URL + "/erp", Retry: []time.Duration{20 * time.Millisecond},
		Transform: `{"id": body.New.Missing}`})
	ctx := context.Background()
	res, err := s.Publish(ctx, Message{Type: "deal.won", Body: []byte(`{"New":{"Id":7}}`)})
	if err != nil || res.Endpoints != 1 {
		t.Fatalf("publish: %+v %v", res, err)
	}
	id := queue.DeliveryID("erp", res.ID)
	var d queue.Delivery
	testwait.Until(t, 10*time.Second, func() bool {
		d, _ = s.Queue().Get(ctx, id)
		return d.State == queue.Dead
	}, "two failed attempts, then the dead letters")
	if sk.hits.Load() != 0 {
		t.Fatalf("the sink got %d requests while the transform fails", sk.hits.Load())
	}
	if !strings.Contains(d.Event.TransformError, "no such key: Missing") || !strings.HasPrefix(d.Attempts[0].Error, "transform_failed: ") {
		t.Fatalf("delivery: %q %+v", d.Event.TransformError, d.Attempts)
	}
	e, _ := s.Registry().Get("erp")
	if st := e.TransformStats(); st.Errors != 3 || !strings.Contains(st.LastError, "Missing") {
		t.Errorf("stats %+v", st)
	}
	// The fix: the endpoint is replaced (a reload), then the delivery is retried.
	fixed := &Endpoint{Name: "erp", URL: sk.URL + "/erp", AllowPrivate: true, Transform: `{"id": body.New.Id}`}
	if err := s.Registry().Put(fixed); err != nil {
		t.Fatal(err)
	}
	if err := s.Requeue(ctx, id); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 10*time.Second, func() bool { return sk.hits.Load() == 1 }, "the delivery after the fix")
	if got := sk.received()[0].body; got != `{"id":7}` {
		t.Errorf("delivered %s", got)
	}
}

// Transforms spend the publish's budget with the filters: a hostile one is stopped.
func TestTransformBudget(t *testing.T) {
	sk := newSink(t, func(n int64, w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	s := newSender(t, &Endpoint{Name: "erp", URL: sk.URL + "/erp", Retry: []time.Duration{time.Hour},
		Transform: `{"x": body.items.map(a, body.items.map(b, body.items.map(c, a + b + c)))}`})
	items := "[" + strings.TrimSuffix(strings.Repeat("1,", 500), ",") + "]"
	start := time.Now()
	res, err := s.Publish(context.Background(), Message{Type: "t", Body: []byte(`{"items":` + items + `}`)})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the publish took %v", d)
	}
	d, err := s.Queue().Get(context.Background(), queue.DeliveryID("erp", res.ID))
	if err != nil || !strings.Contains(d.Event.TransformError, "over its budget") {
		t.Fatalf("held: %q %v", d.Event.TransformError, err)
	}
	e, _ := s.Registry().Get("erp")
	if st := e.TransformStats(); st.OverBudget == 0 {
		t.Errorf("stats %+v", st)
	}
}
