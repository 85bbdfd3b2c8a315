// Package gateway is Hookgate without Caddy: it composes the inbound core (receiver) and
// the outbound core (sender) into one gateway. It builds the stores from a plain config,
// owns the route registry with its naming and dedupe-scope rules, the feeds, the publish
// protocol, the admin API's handlers (/webhooks/…), the request log's API and replay, the
// dashboard, and the outcome classification that metrics and /webhooks/inbound share.
//
// The Caddy glue (caddymodule) translates Caddyfile and JSON config into this package's
// types, wires the metrics registry and tells it how to find Caddy's servers.
package gateway

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/internal/crosssite"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/subscription"
	"go.uber.org/zap"
)

// Config is a gateway's configuration, its secrets already expanded.
type Config struct {
	// Stores are the opened stores (see NewEmbedded, NewRedis). Required.
	Stores *Stores
	// Logger logs the gateway's events. Default: none.
	Logger *zap.Logger
	// Retention is how long delivered deliveries stay readable. Default 72h.
	Retention time.Duration
	// RequestLogSize bounds the request log's memory, every route together. Default 32 MiB.
	RequestLogSize int64
	// Subscriptions are the run-time subscriptions' options.
	Subscriptions subscription.Options
	// Endpoints are the configured outbound endpoints (names not starting with sub_,
	// feed. or inbound-).
	Endpoints []*sender.Endpoint
	// Feeds are the configured feeds.
	Feeds []FeedSpec
	// FindServer returns the HTTP server that serves host (a request's Host, on TLS or
	// not), for replays of requests received by another instance or before a reload; nil
	// when none can be told. Default: none (such replays are refused).
	FindServer func(host string, isTLS bool) http.Handler
}

// Validate checks the config without opening anything.
func (c *Config) Validate() error {
	if c.Retention < 0 {
		return fmt.Errorf("retention must be positive")
	}
	if c.RequestLogSize < 0 {
		return fmt.Errorf("request_log_size must be positive")
	}
	if c.Subscriptions.Grace < 0 {
		return fmt.Errorf("subscriptions: grace must be positive")
	}
	if c.Subscriptions.Max < 0 {
		return fmt.Errorf("subscriptions: max_subscriptions %d: a whole number of at least 1", c.Subscriptions.Max)
	}
	seen := map[string]bool{}
	for _, f := range c.Feeds {
		if err := f.Validate(); err != nil {
			return err
		}
		if seen[f.Name] {
			return fmt.Errorf("feed %s is defined twice", f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

// Gateway is one configuration's gateway: the stores, the outbound core, the run-time
// subscriptions, the feeds and the inbound routes.
type Gateway struct {
	cfg    Config
	logger *zap.Logger
	stores *Stores
	sender *sender.Sender
	subs   *subscription.Manager

	mu     sync.RWMutex
	routes map[string]*Route // by name
	scopes map[string]scope  // dedupe scopes of the routes

	drift  *driftBuffer // drift counts not yet in the store
	qtasks quarantineTasks
}

// scope records who holds a dedupe scope.
type scope struct {
	route    string
	explicit bool // set with dedupe_scope
}

// active is the running gateway: the newest one started. During a reload the new config
// starts before the old one stops, so Stop only clears it if it is still its own.
var active atomic.Pointer[Gateway]

// Active returns the running gateway, or nil.
func Active() *Gateway { return active.Load() }

// New builds a gateway. It opens nothing (see Start).
func New(cfg Config) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Stores == nil {
		return nil, fmt.Errorf("gateway: no stores")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	g := &Gateway{cfg: cfg, logger: cfg.Logger, stores: cfg.Stores, routes: map[string]*Route{}, scopes: map[string]scope{},
		drift: newDriftBuffer()}
	g.stores.Queue.SetRetention(cfg.Retention)
	g.stores.Log.SetMaxBytes(cfg.RequestLogSize)
	g.sender = sender.New(g.stores.Queue, sender.Options{Logger: g.logger, Observer: observer{}, BreakerObserver: observer{}})
	so := cfg.Subscriptions
	so.Logger = g.logger
	g.subs = subscription.NewManager(g.stores.Subs, g.sender, so)
	for _, e := range cfg.Endpoints {
		if err := g.sender.Registry().Add(e); err != nil {
			return nil, err
		}
	}
	for _, f := range cfg.Feeds {
		if err := g.addFeed(f); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Sender returns the outbound core.
func (g *Gateway) Sender() *sender.Sender { return g.sender }

// Subscriptions returns the run-time subscriptions.
func (g *Gateway) Subscriptions() *subscription.Manager { return g.subs }

// Stores returns the gateway's stores.
func (g *Gateway) Stores() *Stores { return g.stores }

// Start opens the store (a locked or unwritable embedded file fails here, not at the
// first request), starts the subscriptions and the delivery workers, and makes this the
// active gateway.
func (g *Gateway) Start() error {
	if err := g.stores.Open(); err != nil {
		return fmt.Errorf("webhooks store: %w", err)
	}
	g.logger.Info("webhooks store ready", zap.String("store", g.stores.Describe))
	g.subs.Start()
	g.sender.Start()
	syncEndpointSeries(g.sender.Registry().Names()) // before any attempt can count
	g.startQuarantineTasks()
	active.Store(g)
	return nil
}

// Stop stops the delivery workers (attempts in progress get a few seconds to finish) and
// the subscriptions' watcher; the stores are left open (they may be shared with the
// config that replaces this one).
func (g *Gateway) Stop() {
	active.CompareAndSwap(g, nil)
	g.subs.Stop()
	g.sender.Stop()
	g.qtasks.life.Stop(nil, nil) // a last flush of the drift counts
}

// SubscriptionsAPI is the subscriptions API under prefix; guard refuses cross-site writes
// (nil: only this host's pages and non-browser clients).
func (g *Gateway) SubscriptionsAPI(prefix string, guard *crosssite.Guard) *subscription.API {
	return &subscription.API{Manager: g.subs, Sender: g.sender, Prefix: prefix, Guard: guard}
}

// route returns a route by name.
func (g *Gateway) route(name string) (*Route, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	r := g.routes[name]
	return r, r != nil
}

// StoreStatus is GET /webhooks/store: the running config's store and, for the embedded
// file, whether it was found damaged while running.
type StoreStatus struct {
	Store   string `json:"store"`
	Damaged bool   `json:"damaged"`
	Error   string `json:"error,omitempty"`
	// Tasks is how many background tasks (flushers, sweepers) are running; 0 once damage
	// stopped them. Absent for Redis.
	Tasks *int `json:"tasks,omitempty"`
}

// StoreStatus reports the store's health.
func (g *Gateway) StoreStatus() StoreStatus {
	st := StoreStatus{Store: g.stores.Describe}
	if h, ok := g.stores.Health(); ok {
		st.Tasks = &h.Tasks
		if h.Damage != nil {
			st.Damaged, st.Error = true, h.Damage.Error()
		}
	}
	return st
}
