package subscription

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/internal/credential"
	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/queue"
)

// API is the subscriptions HTTP API, served under Prefix (Caddy's admin endpoint mounts
// it at /webhooks/subscriptions, and the webhook_subscriptions handler wherever a site
// puts it). Every answer is JSON; every refusal is problem+json.
type API struct {
	// Manager does the work.
	Manager *Manager
	// Sender runs test, retry, enable and resend-latest.
	Sender *sender.Sender
	// Prefix is the path of the collection, e.g. "/webhooks/subscriptions".
	Prefix string
	// Guard refuses writes from other sites and non-JSON bodies before anything else
	// (see internal/crosssite). Nil: no origin is allowed besides the host itself.
	Guard *crosssite.Guard
}

// View is a subscription as the API shows it: never its secret (except Secret, set only
// in the answers to a create and a rotation), header values and URL query values
// redacted.
type View struct {
	ID          string            `json:"id"`
	URL         string            `json:"url"`
	Events      []string          `json:"events"`
	Filter      string            `json:"filter,omitempty"`
	Transform   string            `json:"transform,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Description string            `json:"description,omitempty"`
	RateLimit   string            `json:"rate_limit,omitempty"`
	Retry       []string          `json:"retry,omitempty"`
	// Breaker is the circuit breaker as configured (absent: on, with the defaults); its
	// state is in the admin API's /webhooks/endpoints.
	Breaker  *sender.BreakerConfig `json:"breaker,omitempty"`
	Metadata map[string]string     `json:"metadata,omitempty"`
	Secret   string                `json:"secret,omitempty"`
	// FilterFailures, for a subscription with a filter that this instance runs, counts the
	// filter's failures here (run-time errors, over the publish's budget: the event was
	// not delivered to it) and shows the last one.
	FilterFailures *sender.FilterStats `json:"filter_failures,omitempty"`
	// TransformFailures, for a subscription with a transform that this instance runs,
	// counts the transform's failures here (at enqueue and at the attempts that run it
	// again) and shows the last one.
	TransformFailures *sender.FilterStats `json:"transform_failures,omitempty"`
	// PreviousSecretUntil is when the last rotated-out secret stops signing.
	PreviousSecretUntil *time.Time `json:"previous_secret_until,omitempty"`
	Created             time.Time  `json:"created"`
	Updated             time.Time  `json:"updated"`
}

// ViewOf is s as shown, with its secret when withSecret.
func ViewOf(s Subscription, withSecret bool) View {
	v := View{ID: s.ID, URL: sender.RedactURL(s.URL), Events: s.Events, Filter: s.Filter, Transform: s.Transform,
		Description: s.Description, RateLimit: s.RateLimit, Retry: s.Retry, Breaker: s.Breaker, Metadata: s.Metadata, Created: s.Created, Updated: s.Updated}
	if v.Events == nil {
		v.Events = []string{"*"}
	}
	if len(s.Headers) > 0 {
		v.Headers = map[string]string{}
		for k := range s.Headers {
			v.Headers[k] = credential.Redacted
		}
	}
	if withSecret {
		v.Secret = s.Secret
	}
	now := time.Now()
	for _, r := range s.Retired {
		if r.Until.After(now) && (v.PreviousSecretUntil == nil || r.Until.After(*v.PreviousSecretUntil)) {
			u := r.Until
			v.PreviousSecretUntil = &u
		}
	}
	return v
}

// view is s as shown, without its secret, with its filter's failures on this instance.
func (a *API) view(s Subscription) View {
	v := ViewOf(s, false)
	if (s.Filter != "" || s.Transform != "") && a.Sender != nil {
		if e, ok := a.Sender.Registry().Get(s.ID); ok {
			if s.Filter != "" {
				fs := e.FilterStats()
				v.FilterFailures = &fs
			}
			if s.Transform != "" {
				ts := e.TransformStats()
				v.TransformFailures = &ts
			}
		}
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // filters read as written: `a && b`, not `a \u0026\u0026 b`
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func fail(w http.ResponseWriter, status int, reason problem.Reason, detail string) {
	problem.New(status, reason, http.StatusText(status), detail).Write(w)
}

// storeFail answers a store error.
func storeFail(w http.ResponseWriter, err error) {
	var ie *InputError
	switch {
	case errors.As(err, &ie):
		ie.Problem().Write(w)
	case errors.Is(err, ErrNotFound), errors.Is(err, sender.ErrNoEndpoint):
		fail(w, http.StatusNotFound, problem.ReasonNotFound, "no such subscription")
	case errors.Is(err, ErrVersion):
		fail(w, http.StatusConflict, problem.ReasonStateConflict, "the subscription is being changed concurrently; retry")
	case errors.Is(err, ErrUnavailable), errors.Is(err, queue.ErrUnavailable):
		problem.New(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "Service Unavailable",
			"the store cannot be reached; nothing was changed; retry later").WithHeader("Retry-After", "5").Write(w)
	default:
		fail(w, http.StatusInternalServerError, problem.ReasonStoreError, err.Error())
	}
}

// decode reads a JSON body of at most MaxBody bytes into v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		(&InputError{Status: http.StatusRequestEntityTooLarge, Detail: "the body is larger than 64 KB"}).Problem().Write(w)
		return false
	}
	if err != nil {
		fail(w, http.StatusBadRequest, problem.ReasonInvalidJSON, "the body could not be read: "+err.Error())
		return false
	}
	if optional && len(strings.TrimSpace(string(b))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		ie := &InputError{Status: http.StatusBadRequest, Detail: "the body is not a valid subscription: " + err.Error()}
		if f, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
			f = strings.TrimSuffix(f, `"`)
			ie.Detail = "unknown field " + strconv.Quote(f)
			ie.Violations = []problem.Violation{{Pointer: "/" + f, Message: "unknown field"}}
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			ie.Detail = "field " + strconv.Quote(te.Field) + ": want " + te.Type.String() + ", got a JSON " + te.Value
			ie.Violations = []problem.Violation{{Pointer: "/" + strings.ReplaceAll(te.Field, ".", "/"), Message: "want " + te.Type.String()}}
		}
		ie.Problem().Write(w)
		return false
	}
	return true
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	problem.New(http.StatusMethodNotAllowed, problem.ReasonMethod, "Method Not Allowed",
		r.Method+" is not allowed here; use "+strings.Join(methods, " or ")).WithHeader("Allow", strings.Join(methods, ", ")).Write(w)
	return false
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.Guard.Check(w, r) {
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, strings.TrimSuffix(a.Prefix, "/"))
	if !ok || (rest != "" && rest[0] != '/') {
		fail(w, http.StatusNotFound, problem.ReasonNotFound, "no such route: "+r.URL.Path)
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	ctx := r.Context()
	switch {
	case rest == "" || rest == "/":
		if !allow(w, r, http.MethodGet, http.MethodPost) {
			return
		}
		if r.Method == http.MethodGet {
			a.list(w, r)
			return
		}
		var in Input
		if !decode(w, r, &in, false) {
			return
		}
		s, err := a.Manager.Create(ctx, in)
		if err != nil {
			storeFail(w, err)
			return
		}
		w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+s.ID)
		writeJSON(w, http.StatusCreated, ViewOf(s, true))
	case len(parts) == 1:
		if !allow(w, r, http.MethodGet, http.MethodPatch, http.MethodDelete) {
			return
		}
		id := parts[0]
		switch r.Method {
		case http.MethodGet:
			s, err := a.Manager.Get(ctx, id)
			if err != nil {
				storeFail(w, err)
				return
			}
			writeJSON(w, http.StatusOK, a.view(s))
		case http.MethodPatch:
			var in Input
			if !decode(w, r, &in, false) {
				return
			}
			s, err := a.Manager.Update(ctx, id, in)
			if err != nil {
				storeFail(w, err)
				return
			}
			writeJSON(w, http.StatusOK, ViewOf(s, false))
		default:
			n, err := a.Manager.Delete(ctx, id)
			if err != nil && !errors.Is(err, ErrNotDrained) {
				storeFail(w, err)
				return
			}
			out := map[string]any{"id": id, "deleted": true, "dead_lettered": n}
			if err != nil {
				out["error"] = err.Error()
			}
			writeJSON(w, http.StatusOK, out)
		}
	case len(parts) == 2:
		if !allow(w, r, http.MethodPost) {
			return
		}
		a.action(w, r, parts[0], parts[1])
	default:
		fail(w, http.StatusNotFound, problem.ReasonNotFound, "no such route: "+r.URL.Path)
	}
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := ListOptions{After: q.Get("after"), Event: q.Get("event")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			problem.New(http.StatusBadRequest, problem.ReasonInvalidQuery, "Bad Request", "limit must be a number from 1 to 1000").Write(w)
			return
		}
		o.Limit = n
	}
	subs, next := a.Manager.List(o)
	out := struct {
		Subscriptions []View `json:"subscriptions"`
		Next          string `json:"next,omitempty"`
	}{Subscriptions: make([]View, 0, len(subs)), Next: next}
	for _, s := range subs {
		out.Subscriptions = append(out.Subscriptions, a.view(s))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) action(w http.ResponseWriter, r *http.Request, id, action string) {
	ctx := r.Context()
	if action == "rotate-secret" {
		var body struct {
			Grace string `json:"grace"`
		}
		if !decode(w, r, &body, true) {
			return
		}
		var grace time.Duration
		if body.Grace != "" {
			g, err := time.ParseDuration(body.Grace)
			if err != nil || g < 0 || g > 30*24*time.Hour {
				(&InputError{Status: 422, Detail: "grace: a duration up to 720h",
					Violations: []problem.Violation{{Pointer: "/grace", Message: "a duration up to 720h, e.g. \"24h\""}}}).Problem().Write(w)
				return
			}
			grace = g
			if g == 0 {
				grace = time.Nanosecond // the old secret stops at once
			}
		}
		s, err := a.Manager.Rotate(ctx, id, grace)
		if err != nil {
			storeFail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ViewOf(s, true))
		return
	}
	if _, err := a.Manager.Get(ctx, id); err != nil {
		storeFail(w, err)
		return
	}
	s := a.Sender
	switch action {
	case "test":
		if !s.Running() {
			fail(w, http.StatusServiceUnavailable, problem.ReasonNotRunning, "the webhooks app is not running")
			return
		}
		res, err := s.Test(ctx, id)
		if err != nil {
			storeFail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	case "retry":
		n, err := s.RequeueDead(ctx, id)
		if err != nil {
			storeFail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "requeued": n})
	case "resend-latest":
		n, err := s.ResendLatest(ctx, id)
		if err != nil {
			storeFail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "queued": n})
	case "enable":
		if err := s.Enable(ctx, id); err != nil {
			storeFail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "enabled": true})
	default:
		fail(w, http.StatusNotFound, problem.ReasonNotFound, "no subscription action "+strconv.Quote(action)+" (rotate-secret, test, retry, enable, resend-latest)")
	}
}
