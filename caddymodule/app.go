// Package caddymodule plugs Hookgate into Caddy: the `webhooks` app, the `webhook_receive`
// handler, their Caddyfile syntax and placeholders. It only translates configuration and
// calls the core packages (receiver, …); it is the only package that imports Caddy.
package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/hookgate/hookgate/gateway"
	"github.com/hookgate/hookgate/sender/subscription"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `webhooks` app: the gateway every Hookgate handler shares (gateway.Gateway:
// the store, the endpoints, feeds, subscriptions and inbound routes). Handlers find it
// with ctx.App("webhooks"); when no `webhooks` global option is configured, an empty app
// with the embedded store is made.
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

	store  *pooledStores
	gw     *gateway.Gateway
	logger *zap.Logger
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

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "webhooks",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision builds the gateway. It opens nothing: the embedded file is opened at Start,
// and go-redis dials lazily, so `caddy validate` has no side effects.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := gateway.RegisterMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	if err := a.Validate(); err != nil { // nothing is built from a config Validate refuses
		return err
	}
	var err error
	if a.store, err = loadStores(a.Store); err != nil {
		return err
	}
	cfg := a.config()
	cfg.Stores, cfg.Logger, cfg.FindServer = a.store.Stores, a.logger, serverByPort
	for _, c := range a.Endpoints {
		e, err := c.build(a.logger)
		if err != nil {
			return err
		}
		cfg.Endpoints = append(cfg.Endpoints, e) // the registry judges names, URLs and filters
	}
	a.gw, err = gateway.New(cfg)
	return err
}

// config translates the app's config, but for the stores and endpoints.
func (a *App) config() gateway.Config {
	cfg := gateway.Config{Retention: time.Duration(a.Retention), RequestLogSize: a.RequestLogSize}
	if sc := a.Subscriptions; sc != nil {
		cfg.Subscriptions = subscription.Options{AllowPrivate: sc.AllowPrivate, Grace: time.Duration(sc.Grace), Max: sc.MaxSubscriptions}
	}
	for _, f := range a.Feeds {
		cfg.Feeds = append(cfg.Feeds, gateway.FeedSpec{Name: f.Name, Schema: f.Schema, PageSize: f.PageSize, Retention: time.Duration(f.Retention)})
	}
	return cfg
}

// Validate judges the config as written, JSON or Caddyfile alike.
func (a *App) Validate() error {
	if a.Store != nil && a.Store.Embedded != nil && a.Store.Redis != nil {
		return fmt.Errorf("store: choose embedded or redis, not both")
	}
	for _, c := range a.Endpoints {
		if err := c.validate(); err != nil {
			return err
		}
	}
	cfg := a.config()
	return cfg.Validate()
}

// Gateway returns the app's gateway.
func (a *App) Gateway() *gateway.Gateway { return a.gw }

// Start opens the store and starts the delivery workers.
func (a *App) Start() error { return a.gw.Start() }

// Stop stops the delivery workers (attempts in progress get a few seconds to finish);
// the store is shared with the config that replaces this one and is released in Cleanup.
func (a *App) Stop() error {
	if a.gw != nil {
		a.gw.Stop()
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

var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
