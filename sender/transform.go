package sender

import (
	"context"
	"errors"
	"time"

	"github.com/hookgate/hookgate/internal/celx"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/transform"
	"go.uber.org/zap"
)

// reshape runs e's transform on a published event within the publish's budget (shared with
// its filters), and returns what e's delivery stores: the transformed body and headers, or
// the original with the failure (then each attempt runs the transform again, see
// retransform).
func (s *Sender) reshape(e *Endpoint, id string, in *FilterInput) queue.Variant {
	vars := in.vars() // the body as decoded for the filters, shared by every transform
	out, err := e.transform.Run(context.Background(), &transform.Input{Decoded: vars["data"], Longest: in.longest, Body: in.Body,
		EventID: id, Type: in.Type, Endpoint: e.Name, Budget: &in.budget})
	if err != nil {
		s.transformFailed(e, id, err)
		return queue.Variant{TransformError: err.Error()}
	}
	return queue.Variant{Body: out.Body, Header: out.Header}
}

// transformFailed counts and logs (at most once a minute per endpoint) a transform failure.
func (s *Sender) transformFailed(e *Endpoint, id string, err error) {
	if n, ok := e.tstats.failed(err, time.Now()); ok {
		s.log.Warn("an endpoint's transform failed: its delivery is held as failed, attempted again (transform first) on its retry schedule",
			zap.String("endpoint", e.Name), zap.String("event_id", id), zap.Bool("over_budget", errors.Is(err, transform.ErrBudget)),
			zap.Uint64("failures_since_last_line", n), zap.Error(err))
	}
}

// retransform runs, before an attempt, the transform of a delivery whose transform failed
// at enqueue (ev.TransformError set): once it is fixed the attempt sends the transformed
// body. ok is false when it fails again: a is then the failed attempt to record (no
// request is made). An endpoint whose transform was removed gets the original body.
func (e *Endpoint) retransform(ev queue.Event) (queue.Event, attempt, bool) {
	if ev.TransformError == "" || e.transform == nil {
		return ev, attempt{}, true
	}
	start := time.Now()
	// The budget of a publish's expressions, as at enqueue: a subscription whose transform
	// always fails costs each attempt no more than it cost its publish.
	var b celx.Budget
	b.Start(context.Background(), DefaultFilterTime, DefaultFilterRegexBytes)
	defer b.Release()
	out, err := e.transform.Run(context.Background(), &transform.Input{Body: ev.Body, EventID: ev.ID, Type: ev.Type, Endpoint: e.Name, Budget: &b})
	if err != nil {
		e.tstats.failed(err, start)
		a := attempt{Attempt: queue.Attempt{At: start.UTC(), Latency: time.Since(start),
			Error: string(problem.ReasonTransformFailed) + ": " + err.Error()}}
		a.diagnosis = a.Error
		a.noRequest = true
		return ev, a, false
	}
	ev.Body, ev.TransformError = out.Body, ""
	if len(out.Header) > 0 {
		h := ev.Header.Clone()
		if h == nil {
			h = make(map[string][]string, len(out.Header))
		}
		for k, vs := range out.Header {
			h[k] = vs
		}
		ev.Header = h
	}
	return ev, attempt{}, true
}

// TransformStats returns the endpoint's transform failures (Errors, OverBudget), counted
// at enqueue and at the attempts that run it again.
func (e *Endpoint) TransformStats() FilterStats {
	return e.tstats.stats()
}
