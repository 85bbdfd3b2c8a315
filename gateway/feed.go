package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
)

// FeedSpec is a feed of the gateway: records internal apps publish (event type
// feed.<name>) and a caller pulls in pages (Rubeus' Serviços).
type FeedSpec struct {
	// Name names the feed. Required.
	Name string
	// Schema is the embedded schema name or JSON Schema file every record must pass. Required.
	Schema string
	// PageSize is the most records one call gets. Default and maximum sender.MaxPageSize.
	PageSize int
	// Retention is how long served records stay readable. Default sender.DefaultFeedRetention.
	Retention time.Duration
}

// Validate checks the spec without building anything.
func (f FeedSpec) Validate() error {
	switch {
	case f.Name == "":
		return fmt.Errorf("feed: a name is required")
	case !queue.ValidEndpointName("feed." + f.Name):
		return fmt.Errorf("feed name %q: use letters, digits, '_', '-' or '.'", f.Name)
	case f.Schema == "":
		return fmt.Errorf("feed %s: a schema is required (every record must pass it)", f.Name)
	case f.PageSize < 0 || f.PageSize > sender.MaxPageSize:
		return fmt.Errorf("feed %s: page_size %d: a number from 1 to %d (Rubeus' limit)", f.Name, f.PageSize, sender.MaxPageSize)
	case f.Retention < 0:
		return fmt.Errorf("feed %s: retention must be positive", f.Name)
	}
	return nil
}

// addFeed makes a configured feed, its records checked by its schema.
func (g *Gateway) addFeed(c FeedSpec) error {
	rs, err := receiver.NewRecords(c.Schema, 0)
	if err != nil {
		return fmt.Errorf("feed %s: %w", c.Name, err)
	}
	_, err = g.sender.AddFeed(c.Name, sender.FeedOptions{PageSize: c.PageSize, Retention: c.Retention, Split: rs.Split})
	return err
}

// Feed returns the named feed.
func (g *Gateway) Feed(name string) (*sender.Feed, bool) { return g.sender.Feed(name) }

// publishFeed is the publish protocol's path for event type feed.<name>.
func (p *Publisher) publishFeed(w http.ResponseWriter, r *http.Request, f *sender.Feed, body []byte) {
	records, prob := f.Split(body)
	if prob != nil {
		prob.Write(w)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	res, err := f.Publish(ctx, r.Header.Get("Idempotency-Key"), records)
	cancel()
	switch {
	case errors.Is(err, sender.ErrKeyTooLong):
		problem.New(http.StatusBadRequest, problem.ReasonMissingType, "Bad Request", err.Error()).Write(w)
		return
	case errors.Is(err, queue.ErrConflict):
		problem.New(http.StatusUnprocessableEntity, problem.ReasonConflict, "Unprocessable Content",
			"this Idempotency-Key was already used with other records; nothing of this request was stored").Write(w)
		return
	case errors.Is(err, sender.ErrBatchTooLarge):
		problem.New(http.StatusRequestEntityTooLarge, problem.ReasonTooManyRecords, "Content Too Large",
			fmt.Sprintf("%d records: %v; split the batch (nothing was stored)", len(records), err)).Write(w)
		return
	case err != nil:
		p.logger().Error("cannot store a feed's records", zap.String("feed", f.Name()), zap.Error(err))
		problem.New(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "Service Unavailable",
			"the records could not all be stored; retry with the same Idempotency-Key").WithHeader("Retry-After", "30").Write(w)
		return
	}
	feedRecords.WithLabelValues(f.Name(), "published").Add(float64(len(records)))
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeAccepted(w, struct {
		ID      string `json:"id"`
		Feed    string `json:"feed"`
		Records int    `json:"records"`
	}{res.ID, f.Name(), len(records)})
}

// FeedServer is the URL a caller (Rubeus' Serviços) pulls a feed's records from: GET or
// POST answers 200 with a JSON array of at most the feed's page size of pending records,
// oldest first, byte for byte as published ([] when none is pending); a record counts as
// served only once the whole answer was written. Wrong or missing credentials get 401.
type FeedServer struct {
	// Feed is the feed served. Required.
	Feed *sender.Feed
	// Credentials are checked on every call. Required.
	Credentials *receiver.Credentials
	// Logger logs failed calls. Default: none.
	Logger *zap.Logger
}

// NewFeedServer returns the server of the named feed of g, checking callers with creds.
func (g *Gateway) NewFeedServer(name string, creds *receiver.Credentials, logger *zap.Logger) (*FeedServer, error) {
	f, ok := g.Feed(name)
	if !ok {
		return nil, fmt.Errorf("webhook_feed %q: no such feed in the webhooks option (feed %s { schema … })", name, name)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &FeedServer{Feed: f, Credentials: creds, Logger: logger}, nil
}

// ServeHTTP answers one call.
func (h *FeedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := h.Feed.Name()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		problem.New(http.StatusMethodNotAllowed, problem.ReasonMethod, "Method Not Allowed",
			"a feed is read with GET (or POST)").WithHeader("Allow", "GET, POST").Write(w)
		feedCalls.WithLabelValues(name, "405").Inc()
		return
	}
	// A call marks its page served, so even a GET changes state: a page on another site
	// (an <img>, a no-cors fetch) must not take Rubeus' records with a visitor's ambient
	// access (an IP allow-list, cached Basic credentials). Rubeus is a server: it sends
	// neither Origin nor Sec-Fetch-Site.
	if !crosssite.FromThisSite(r) || crosssite.Rebindable(r) {
		problem.New(http.StatusForbidden, problem.ReasonCrossSite, "Forbidden",
			"a browser sent this feed call from another site; nothing was served").Write(w)
		feedCalls.WithLabelValues(name, "403").Inc()
		return
	}
	if !h.Credentials.Check(r) {
		h.Credentials.Unauthorized().Write(w)
		feedCalls.WithLabelValues(name, "401").Inc()
		return
	}
	n, err := h.Feed.Serve(r.Context(), w, r.RemoteAddr)
	status := "200"
	if err != nil {
		h.Logger.Warn("feed call", zap.String("feed", name), zap.String("from", r.RemoteAddr), zap.Error(err))
		switch {
		case errors.Is(err, sender.ErrCut):
			status = "cut"
		case n == 0:
			status = "503" // the store was away: nothing was served
		}
	}
	feedCalls.WithLabelValues(name, status).Inc()
	if n > 0 {
		feedRecords.WithLabelValues(name, "served").Add(float64(n))
	}
}
