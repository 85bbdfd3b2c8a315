// Package caddymodule plugs Hookgate into Caddy: the `webhooks` app, the `webhook_receive`
// handler, their Caddyfile syntax and placeholders. It only translates configuration and
// calls the core packages (receiver, …); it is the only package that imports Caddy.
package caddymodule

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/hookgate/hookgate/receiver/dedupe"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/subscription"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `webhooks` app: the state every Hookgate handler shares. It owns the store
// (embedded file or Redis) that dedupe and the delivery queue use, and the outbound core
// (sender.Sender: the endpoint registry, publishing and the delivery workers). Handlers
// find it with ctx.App("webhooks"); when no `webhooks` global option is configured, an
// empty app with the embedded store is made.
type App struct {
	// Store selects where dedupe state and the delivery queue live. Default: the embedded
	// store, a file "hookgate/store.db" in Caddy's data directory.
	Store *StoreConfig `json:"store,omitempty"`
	// Endpoints are the outbound endpoints that published events are delivered to.
	// Default: none.
	Endpoints []EndpointConfig `json:"endpoints,omitempty"`
	// Retention is how long delivered deliveries stay readable in the admin API and the
	// dashboard (dead letters stay until retried). Default 72h.
	Retention caddy.Duration `json:"retention,omitempty"`
	// RequestLogSize bounds the memory of the inbound request log, every webhook_receive
	// route together, in bytes: the oldest records are dropped first. On Redis it is
	// shared out equally between the routes (each route's list holds its share). Default
	// 32 MiB.
	RequestLogSize int64 `json:"request_log_size,omitempty"`
	// Feeds are queues of records that a caller pulls (Rubeus' Serviços) from a
	// webhook_feed route. Default: none.
	Feeds []FeedConfig `json:"feeds,omitempty"`
	// Subscriptions configures the endpoints created at run time through the
	// subscriptions API. Default: the API is on (admin endpoint, and wherever a site
	// routes to webhook_subscriptions), with the private-address guard always applied.
	Subscriptions *SubscriptionsConfig `json:"subscriptions,omitempty"`

	store     *sharedStore
	subs      *subscription.Manager
	logger    *zap.Logger
	sender    *sender.Sender
	feeds     map[string]*feed
	routes    map[string]bool     // names of this config's webhook_receive routes
	receivers map[string]*Receive // this config's webhook_receive handlers by route name
	scopes    map[string]scope    // dedupe scopes of this config's routes
}

// scope records who holds a dedupe scope in this config.
type scope struct {
	route    string
	explicit bool // set with dedupe_scope
}

// SubscriptionsConfig is the operator's say over run-time subscriptions.
type SubscriptionsConfig struct {
	// AllowPrivate lets subscriptions target loopback, private, link-local and other
	// non-public addresses. Subscriptions are written by people outside the operator's
	// config, so the default is false: such targets are refused.
	AllowPrivate bool `json:"allow_private,omitempty"`
	// Grace is how long a rotated-out secret keeps signing deliveries (both signatures
	// are sent). Default 24h.
	Grace caddy.Duration `json:"grace,omitempty"`
	// MaxSubscriptions caps how many subscriptions can exist (each publish runs the
	// filters of those that match). Default 10000.
	MaxSubscriptions int `json:"max_subscriptions,omitempty"`
}

// StoreConfig chooses the store. Exactly one of Embedded and Redis may be set; neither
// means Embedded with its defaults.
type StoreConfig struct {
	// Embedded is a single bbolt file on this machine. One Caddy process at a time.
	Embedded *EmbeddedStoreConfig `json:"embedded,omitempty"`
	// Redis is a Redis server or cluster shared by every Caddy instance pointed at it.
	Redis *RedisStoreConfig `json:"redis,omitempty"`
}

// EmbeddedStoreConfig configures the embedded store.
type EmbeddedStoreConfig struct {
	// Path is the store file. Default: "hookgate/store.db" in Caddy's data directory.
	Path string `json:"path,omitempty"`
}

// RedisStoreConfig configures the Redis store.
type RedisStoreConfig struct {
	// URL is the server, as redis://[user:password@]host:port[/db] or rediss:// for TLS.
	// With Cluster, extra nodes may be given as ?addr=host:port query parameters.
	// Placeholders such as {env.REDIS_URL} are expanded at provision time, so a password
	// never appears in the JSON config. Required.
	URL string `json:"url,omitempty"`
	// KeyPrefix starts every key Hookgate writes. Default "hookgate:".
	KeyPrefix string `json:"key_prefix,omitempty"`
	// Cluster connects to a Redis Cluster. Default false.
	Cluster bool `json:"cluster,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "webhooks",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets up the store. It opens nothing: the embedded file is opened on first use
// (or at Start), and go-redis dials lazily, so `caddy validate` has no side effects.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.receivers = map[string]*Receive{}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	if a.Store == nil {
		a.Store = &StoreConfig{}
	}
	if a.Store.Embedded != nil && a.Store.Redis != nil {
		return fmt.Errorf("store: choose embedded or redis, not both")
	}
	var err error
	if a.Store.Redis != nil {
		a.store, err = loadRedisStore(*a.Store.Redis)
	} else {
		path := ""
		if a.Store.Embedded != nil {
			path = a.Store.Embedded.Path
		}
		if path == "" {
			path = filepath.Join(caddy.AppDataDir(), "hookgate", "store.db")
		}
		a.store, err = loadEmbeddedStore(path)
	}
	if err != nil {
		return err
	}
	if a.Retention < 0 {
		return fmt.Errorf("retention must be positive")
	}
	a.store.queue.SetRetention(time.Duration(a.Retention))
	if a.RequestLogSize < 0 {
		return fmt.Errorf("request_log_size must be positive")
	}
	a.store.reqlog.SetMaxBytes(a.RequestLogSize)
	a.sender = sender.New(a.store.queue, sender.Options{Logger: a.logger, Observer: observer{}})
	sc := SubscriptionsConfig{}
	if a.Subscriptions != nil {
		sc = *a.Subscriptions
	}
	if sc.Grace < 0 {
		return fmt.Errorf("subscriptions: grace must be positive")
	}
	a.subs = subscription.NewManager(a.store.subs, a.sender, subscription.Options{AllowPrivate: sc.AllowPrivate,
		Grace: time.Duration(sc.Grace), Logger: a.logger, Max: sc.MaxSubscriptions})
	for _, c := range a.Endpoints {
		if strings.HasPrefix(c.Name, subscription.IDPrefix) {
			return fmt.Errorf("endpoint %s: names starting with %q are kept for subscriptions", c.Name, subscription.IDPrefix)
		}
		e, err := c.build(a.logger)
		if err != nil {
			return err
		}
		if err := a.sender.Registry().Add(e); err != nil {
			return err
		}
	}
	return a.buildFeeds()
}

// registerRoute records a webhook_receive route of this config, refusing one whose name is
// taken (names label metrics and the admin API) or whose dedupe scope is another route's,
// unless both set that scope explicitly (sharing ids on purpose). Without the check, two
// tenants' routes with the same preset would answer one's events as the other's duplicates.
func (a *App) registerRoute(name, dedupeScope string, namedExplicitly, scopedExplicitly bool) error {
	if a.routes == nil {
		a.routes, a.scopes = map[string]bool{}, map[string]scope{}
	}
	if a.routes[name] {
		how := "give each its own `name`"
		if !namedExplicitly {
			how = "give each its own `name` (the default is the dedupe_scope, else the preset name, else \"webhook\")"
		}
		return fmt.Errorf("two webhook_receive routes are both named %q; a name labels one route in metrics, logs and the admin API, and is its dedupe scope: %s, or set the same `dedupe_scope` on routes that should share event ids", name, how)
	}
	if other, ok := a.scopes[dedupeScope]; ok && !(other.explicit && scopedExplicitly) {
		return fmt.Errorf("webhook_receive routes %q and %q would share the dedupe scope %q, so one's events would be answered as duplicates of the other's: give each its own name, or set `dedupe_scope %s` on both to share event ids on purpose", other.route, name, dedupeScope, dedupeScope)
	}
	a.routes[name] = true
	if _, ok := a.scopes[dedupeScope]; !ok {
		a.scopes[dedupeScope] = scope{route: name, explicit: scopedExplicitly}
	}
	return nil
}

// SubscriptionManager returns the run-time subscriptions.
func (a *App) SubscriptionManager() *subscription.Manager { return a.subs }

// Sender returns the outbound core.
func (a *App) Sender() *sender.Sender { return a.sender }

// Start opens the embedded store file, so a locked or unwritable file fails the config
// load instead of the first request.
func (a *App) Start() error {
	if err := a.store.open(); err != nil {
		return fmt.Errorf("webhooks store: %w", err)
	}
	a.logger.Info("webhooks store ready", zap.String("store", a.store.describe))
	a.subs.Start()
	a.sender.Start()
	activeApp.Store(a)
	return nil
}

// Stop stops the delivery workers (attempts in progress get a few seconds to finish);
// the store is shared with the config that replaces this one and is released in Cleanup.
func (a *App) Stop() error {
	activeApp.CompareAndSwap(a, nil)
	if a.subs != nil {
		a.subs.Stop()
	}
	if a.sender != nil {
		a.sender.Stop()
	}
	return nil
}

// Cleanup releases this config's reference to the store; the last reference closes it.
func (a *App) Cleanup() error {
	if a.store == nil {
		return nil
	}
	err := a.store.release()
	a.store = nil
	return err
}

// DedupeStore returns the dedupe store.
func (a *App) DedupeStore() dedupe.Store { return a.store.dedupe }

var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
