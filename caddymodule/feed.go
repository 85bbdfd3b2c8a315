package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/sender/queue"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/receiver"
	"github.com/hookgate/hookgate/sender"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(FeedHandler{})
	httpcaddyfile.RegisterHandlerDirective("webhook_feed", parseFeedHandler)
	httpcaddyfile.RegisterDirectiveOrder("webhook_feed", httpcaddyfile.Before, "respond")
}

// FeedConfig is a feed of the `webhooks` app: records internal apps publish (event type
// feed.<name> on webhook_publish) and a caller pulls in pages from a webhook_feed route
// (Rubeus' Serviços).
type FeedConfig struct {
	// Name names the feed. Required.
	Name string `json:"name"`
	// Schema is the embedded schema name or JSON Schema file every published record must
	// pass (a schema of an array of records, such as rubeus_servicos_contato, checks each
	// record as a one-record array). Required.
	Schema string `json:"schema"`
	// PageSize is the most records one call gets. Default and maximum 1000.
	PageSize int `json:"page_size,omitempty"`
	// Retention is how long served records stay readable and requeueable. Default 72h.
	Retention caddy.Duration `json:"retention,omitempty"`
}

// feed is a provisioned feed: the core's feed and its records' schema.
type feed struct {
	*sender.Feed
	records *receiver.Records
}

// buildFeeds makes the configured feeds.
func (a *App) buildFeeds() error {
	a.feeds = map[string]*feed{}
	for _, c := range a.Feeds {
		if c.Schema == "" {
			return fmt.Errorf("feed %s: a schema is required (every record must pass it)", c.Name)
		}
		rs, err := receiver.NewRecords(c.Schema, 0)
		if err != nil {
			return fmt.Errorf("feed %s: %w", c.Name, err)
		}
		f, err := a.sender.AddFeed(c.Name, sender.FeedOptions{PageSize: c.PageSize, Retention: time.Duration(c.Retention)})
		if err != nil {
			return err
		}
		a.feeds[c.Name] = &feed{Feed: f, records: rs}
	}
	return nil
}

// publishFeed is webhook_publish's path for event type feed.<name>.
func (p *Publish) publishFeed(w http.ResponseWriter, r *http.Request, f *feed, body []byte) {
	records, prob := f.records.Split(body)
	if prob != nil {
		prob.Write(w)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	res, err := f.Publish(ctx, r.Header.Get("Idempotency-Key"), records)
	cancel()
	if err != nil {
		if err == sender.ErrKeyTooLong {
			problem.New(http.StatusBadRequest, problem.ReasonMissingType, "Bad Request", err.Error()).Write(w)
			return
		}
		if errors.Is(err, queue.ErrConflict) {
			problem.New(http.StatusUnprocessableEntity, problem.ReasonConflict, "Unprocessable Content",
				"this Idempotency-Key was already used with other records; nothing of this request was stored").Write(w)
			return
		}
		if err == sender.ErrBatchTooLarge {
			problem.New(http.StatusRequestEntityTooLarge, "too_many_records", "Content Too Large",
				fmt.Sprintf("%d records: %v; split the batch (nothing was stored)", len(records), err)).Write(w)
			return
		}
		p.logger.Error("cannot store a feed's records", zap.String("feed", f.Name()), zap.Error(err))
		problem.New(http.StatusServiceUnavailable, problem.ReasonStoreUnavailable, "Service Unavailable",
			"the records could not all be stored; retry with the same Idempotency-Key").WithHeader("Retry-After", "30").Write(w)
		return
	}
	feedRecords.WithLabelValues(f.Name(), "published").Add(float64(len(records)))
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	b, _ := json.Marshal(struct {
		ID      string `json:"id"`
		Feed    string `json:"feed"`
		Records int    `json:"records"`
	}{res.ID, f.Name(), len(records)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
}

// FeedHandler is the `webhook_feed` handler: the URL a caller (Rubeus' Serviços) pulls a
// feed's records from. GET or POST answers 200 with a JSON array of at most the feed's
// page size of pending records, oldest first, byte for byte as published ([] when none is
// pending); a record counts as served only once the whole answer was written. Wrong or
// missing credentials get 401 as on webhook_receive. It is a terminal handler.
type FeedHandler struct {
	// Feed names the feed of the `webhooks` app to serve. Required.
	Feed string `json:"feed"`
	// Auth lists the credential lines (as webhook_receive's, without hmac: a caller that
	// pulls sends no body to sign); a request passes if one matches. At least one is
	// required ("none" to opt out explicitly).
	Auth []AuthConfig `json:"auth,omitempty"`

	feed   *feed
	creds  *receiver.Credentials
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (FeedHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_feed",
		New: func() caddy.Module { return new(FeedHandler) },
	}
}

// Provision finds the feed and resolves the credentials.
func (h *FeedHandler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	specs, err := authSpecs(h.Auth, h.logger)
	if err != nil {
		return err
	}
	if h.creds, err = receiver.NewCredentials(specs); err != nil {
		return err
	}
	appIface, err := ctx.App("webhooks")
	if err != nil {
		return fmt.Errorf("loading the webhooks app: %v", err)
	}
	f, ok := appIface.(*App).feeds[h.Feed]
	if !ok {
		return fmt.Errorf("webhook_feed %q: no such feed in the webhooks option (feed %s { schema … })", h.Feed, h.Feed)
	}
	h.feed = f
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler; it never calls next.
func (h *FeedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		problem.New(http.StatusMethodNotAllowed, problem.ReasonMethod, "Method Not Allowed",
			"a feed is read with GET (or POST)").WithHeader("Allow", "GET, POST").Write(w)
		feedCalls.WithLabelValues(h.feed.Name(), "405").Inc()
		return nil
	}
	// A call marks its page served, so even a GET changes state: a page on another site
	// (an <img>, a no-cors fetch) must not take Rubeus' records with a visitor's ambient
	// access (an IP allow-list, cached Basic credentials). Rubeus is a server: it sends
	// neither Origin nor Sec-Fetch-Site.
	if !crosssite.FromThisSite(r) || crosssite.Rebindable(r) {
		problem.New(http.StatusForbidden, problem.ReasonCrossSite, "Forbidden",
			"a browser sent this feed call from another site; nothing was served").Write(w)
		feedCalls.WithLabelValues(h.feed.Name(), "403").Inc()
		return nil
	}
	if !h.creds.Check(r) {
		h.creds.Unauthorized().Write(w)
		feedCalls.WithLabelValues(h.feed.Name(), "401").Inc()
		return nil
	}
	n, err := h.feed.Serve(r.Context(), w, r.RemoteAddr)
	status := "200"
	if err != nil {
		h.logger.Warn("feed call", zap.String("feed", h.feed.Name()), zap.String("from", r.RemoteAddr), zap.Error(err))
		switch {
		case errors.Is(err, sender.ErrCut):
			status = "cut"
		case n == 0:
			status = "503" // the store was away: nothing was served
		}
	}
	feedCalls.WithLabelValues(h.feed.Name(), status).Inc()
	if n > 0 {
		feedRecords.WithLabelValues(h.feed.Name(), "served").Add(float64(n))
	}
	return nil
}

func parseFeedHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	f := new(FeedHandler)
	return f, f.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	webhook_feed [<matcher>] <feed> {
//		validation_key <key>
//		auth header|bearer|basic|query|none …
//	}
func (h *FeedHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.Args(&h.Feed) || d.NextArg() {
		return d.Errf("webhook_feed takes one argument: the feed's name")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		ok, err := parseCredential(d, &h.Auth)
		if err != nil {
			return err
		}
		if !ok {
			return d.Errf("unrecognized webhook_feed option %q (known: auth, validation_key)", d.Val())
		}
	}
	return nil
}

var (
	_ caddy.Provisioner           = (*FeedHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*FeedHandler)(nil)
	_ caddyfile.Unmarshaler       = (*FeedHandler)(nil)
)
