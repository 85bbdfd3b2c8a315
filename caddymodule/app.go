// Package caddymodule plugs Hookgate into Caddy: the `webhooks` app, the `webhook_receive`
// handler, their Caddyfile syntax and placeholders. It only translates configuration and
// calls the core packages (receiver, …); it is the only package that imports Caddy.
package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/hookgate/hookgate/receiver/dedupe"
	"github.com/hookgate/hookgate/sender"
	"github.com/hookgate/hookgate/sender/queue"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `webhooks` app: the state every Hookgate handler shares. It owns the store
// (embedded file or Redis) that dedupe uses. Handlers find it with ctx.App("webhooks"); when
// no `webhooks` global option is configured, an empty app with the embedded store is made.
type App struct {
	// Store selects where dedupe state (and, later, the delivery queue) lives. Default: the
	// embedded store, a file "hookgate/store.db" in Caddy's data directory.
	Store *StoreConfig `json:"store,omitempty"`
	// Endpoints are the outbound endpoints that published events are delivered to.
	// Default: none.
	Endpoints []EndpointConfig `json:"endpoints,omitempty"`
	// Retention is how long delivered deliveries stay readable in the admin API and the
	// dashboard (dead letters stay until retried). Default 72h.
	Retention caddy.Duration `json:"retention,omitempty"`

	store      *sharedStore
	logger     *zap.Logger
	endpoints  []*sender.Endpoint                 // configured, then inbound async targets
	public     map[string]bool                    // names of configured (not inbound) endpoints
	dispatcher *atomic.Pointer[sender.Dispatcher] // set in Provision
	observer   sender.Observer
	routes     map[string]bool  // names of this config's webhook_receive routes
	scopes     map[string]scope // dedupe scopes of this config's routes
}

// scope records who holds a dedupe scope in this config.
type scope struct {
	route    string
	explicit bool // set with dedupe_scope
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
	a.dispatcher = new(atomic.Pointer[sender.Dispatcher])
	a.observer = observer{}
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
	a.public = map[string]bool{}
	for _, c := range a.Endpoints {
		e, err := c.build(a.logger)
		if err != nil {
			return err
		}
		if a.public[e.Name] {
			return fmt.Errorf("endpoint %s is defined twice", e.Name)
		}
		a.public[e.Name] = true
		a.endpoints = append(a.endpoints, e)
	}
	return nil
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

// registerInbound adds the target of a `webhook_receive … mode async` route, a trusted
// internal URL (the SSRF guard does not apply), and returns its endpoint name. Routes with
// the same scope and URL share one endpoint.
func (a *App) registerInbound(scope string, e *sender.Endpoint) (string, error) {
	if a.dispatcher.Load() != nil {
		return "", fmt.Errorf("the webhooks app is already running")
	}
	// Routes with the same scope, URL and delivery options share one endpoint.
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%v|%v|%v", e.URL, e.Retry, e.ResponseTimeout, e.Concurrency))
	clean := strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-') {
			return r
		}
		return '_'
	}, scope)
	if len(clean) > 40 {
		clean = clean[:40]
	}
	name := "inbound-" + clean + "-" + hex.EncodeToString(sum[:4])
	for _, e := range a.endpoints {
		if e.Name == name {
			return name, nil
		}
	}
	if a.public[name] {
		return "", fmt.Errorf("endpoint name %s is taken by an outbound endpoint", name)
	}
	e.Name, e.AllowPrivate = name, true
	if err := e.Prepare(); err != nil {
		return "", fmt.Errorf("deliver_to: %w", err)
	}
	a.endpoints = append(a.endpoints, e)
	return name, nil
}

// match returns the configured endpoints that take events of type typ.
func (a *App) match(typ string) []string {
	var out []string
	for _, e := range a.endpoints {
		if a.public[e.Name] && e.Matches(typ) {
			out = append(out, e.Name)
		}
	}
	return out
}

// Queue returns the delivery queue.
func (a *App) Queue() queue.Store { return a.store.queue }

// Start opens the embedded store file, so a locked or unwritable file fails the config
// load instead of the first request.
func (a *App) Start() error {
	if err := a.store.open(); err != nil {
		return fmt.Errorf("webhooks store: %w", err)
	}
	a.logger.Info("webhooks store ready", zap.String("store", a.store.describe))
	d, err := sender.NewDispatcher(a.store.queue, a.endpoints, sender.Options{Logger: a.logger, Observer: a.observer})
	if err != nil {
		return err
	}
	a.dispatcher.Store(d)
	d.Start()
	activeApp.Store(a)
	return nil
}

// Stop stops the delivery workers (attempts in progress get a few seconds to finish);
// the store is shared with the config that replaces this one and is released in Cleanup.
func (a *App) Stop() error {
	activeApp.CompareAndSwap(a, nil)
	if a.dispatcher == nil {
		return nil
	}
	if d := a.dispatcher.Load(); d != nil {
		d.Stop()
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

// notify wakes the workers of the named endpoints after an enqueue.
func (a *App) notify(names ...string) {
	if a.dispatcher == nil {
		return
	}
	if d := a.dispatcher.Load(); d != nil {
		d.Notify(names)
	}
}

// notifyAll wakes every endpoint's workers.
func (a *App) notifyAll() {
	names := make([]string, 0, len(a.endpoints))
	for _, e := range a.endpoints {
		names = append(names, e.Name)
	}
	a.notify(names...)
}

// endpoint returns the named endpoint (configured or inbound).
func (a *App) endpoint(name string) (*sender.Endpoint, bool) {
	for _, e := range a.endpoints {
		if e.Name == name {
			return e, true
		}
	}
	return nil, false
}
