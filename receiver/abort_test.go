package receiver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hookgate/hookgate/problem"
)

// A hand-off that aborts the answer (reverse_proxy panics with http.ErrAbortHandler when
// the sender leaves while the backend's answer is copied) was handed on: Handle returns
// its result with Aborted set, having committed the event id; any other panic goes on.
func TestAbortedHandOffIsCommittedAndReported(t *testing.T) {
	st := &memStore{}
	rc := mustNew(t, Options{Auth: []AuthSpec{{Kind: AuthNone}}, EventID: []string{"header:X-Id"}, Store: st})
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(`{"a":1}`)))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Id", "evt-1")
		return r
	}
	res, err := rc.Handle(httptest.NewRecorder(), req(), func(w http.ResponseWriter, r *http.Request, ev *Event) error {
		w.WriteHeader(http.StatusOK)
		panic(http.ErrAbortHandler)
	})
	if err != nil || !res.Aborted || res.Reason != problem.ReasonAccepted || res.Status != 200 || res.EventID != "evt-1" {
		t.Fatalf("aborted hand-off: %+v, %v", res, err)
	}
	// Committed: the sender's retry is a duplicate.
	w := httptest.NewRecorder()
	res, _ = rc.Handle(w, req(), func(w http.ResponseWriter, r *http.Request, ev *Event) error {
		t.Fatal("handed on twice")
		return nil
	})
	if res.Reason != problem.ReasonDuplicate || res.Aborted {
		t.Fatalf("the retry: %+v", res)
	}
	// Any other panic is not swallowed.
	defer func() {
		if p := recover(); p != "boom" {
			t.Fatalf("recovered %v, want the hand-off's own panic", p)
		}
	}()
	r := req()
	r.Header.Set("X-Id", "evt-2")
	_, _ = rc.Handle(httptest.NewRecorder(), r, func(w http.ResponseWriter, r *http.Request, ev *Event) error { panic("boom") })
	t.Fatal("the panic did not go on")
}
