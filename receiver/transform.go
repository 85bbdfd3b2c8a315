package receiver

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/transform"
)

// transformNext runs the route's transform before next: next reads the new body (and
// Content-Length), with the headers the transform set; ev.Body becomes the new body (what
// async mode queues). A failure answers 500 transform_failed naming the expression's
// error, so the sender retries; the dedupe claim is then released, as for any non-2xx.
func (rc *Receiver) transformNext(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, ev *Event) error {
		t0 := time.Now()
		out, err := rc.tr.Run(r.Context(), &transform.Input{Body: ev.Body, Decoded: ev.doc, Longest: int64(len(ev.Body)),
			Header: r.Header, Hidden: rc.hidden, EventID: ev.ID, Route: rc.route})
		ev.transformTime = time.Since(t0)
		if err != nil {
			p := newProblem(http.StatusInternalServerError, problem.ReasonTransformFailed, "Transform Failed",
				"the route's transform failed: "+err.Error()+"; the request is kept in the request log and can be replayed once the transform is fixed")
			p.Write(w)
			ev.Outcome, ev.problem = problem.ReasonTransformFailed, p
			return nil
		}
		ev.Body, ev.transformed = out.Body, out.Body
		// The hand-off is a shallow copy with its own headers: the request as received
		// (what the request log keeps) is left as it came.
		h := r.Header.Clone()
		for k, vs := range out.Header {
			h[k] = vs
		}
		h.Set("Content-Length", strconv.Itoa(len(out.Body)))
		h.Del("Content-Encoding")
		r = r.WithContext(r.Context())
		r.Header = h
		r.Body = io.NopCloser(bytes.NewReader(out.Body))
		r.ContentLength = int64(len(out.Body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out.Body)), nil }
		return next(w, r, ev)
	}
}
