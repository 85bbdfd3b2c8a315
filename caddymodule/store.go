package caddymodule

import (
	"fmt"
	"path/filepath"
	"runtime/debug"

	"github.com/caddyserver/caddy/v2"
	"github.com/hookgate/hookgate/gateway"
	"go.uber.org/zap"
)

// The store's config types live with the stores they choose (gateway/storeconfig.go).
type (
	StoreConfig         = gateway.StoreConfig
	EmbeddedStoreConfig = gateway.EmbeddedStoreConfig
	RedisStoreConfig    = gateway.RedisStoreConfig
)

// stores shares opened stores between configs: Caddy provisions a new config before it
// cleans up the old one, so an unchanged store is never closed and reopened on reload
// (the embedded file's lock would block the second open; a Redis client would reconnect).
var stores = caddy.NewUsagePool()

// pooledStores is one gateway.Stores as held in the pool.
type pooledStores struct {
	*gateway.Stores
	key string
}

// Destruct implements caddy.Destructor: the last config using the store closes it.
func (s *pooledStores) Destruct() error { return s.Close() }

func (s *pooledStores) release() error {
	_, err := stores.Delete(s.key)
	return err
}

// loadStores returns the configured store from the pool, made on first use.
func loadStores(c *StoreConfig) (*pooledStores, error) {
	var key string
	var make func() (*gateway.Stores, error)
	if c != nil && c.Redis != nil {
		url, err := caddy.NewReplacer().ReplaceOrErr(c.Redis.URL, true, true)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		rc := gateway.RedisConfig{URL: url, KeyPrefix: c.Redis.KeyPrefix, Cluster: c.Redis.Cluster, ReplicasAck: c.Redis.ReplicasAck, ReplicasTimeout: c.Redis.ReplicasTimeout}
		if key, err = rc.Key(); err != nil {
			return nil, err
		}
		make = func() (*gateway.Stores, error) { return gateway.NewRedis(rc) }
	} else {
		path := ""
		if c != nil && c.Embedded != nil {
			path = c.Embedded.Path
		}
		if path == "" {
			path = filepath.Join(caddy.AppDataDir(), "hookgate", "store.db")
		}
		key = gateway.EmbeddedKey(path)
		make = func() (*gateway.Stores, error) {
			return gateway.NewEmbedded(path, func(err error) {
				// Once per file: the store refuses every call from here on, so nothing else logs it.
				caddy.Log().Named("webhooks").Error("embedded store file is damaged: every store call is refused (503) and the background tasks have stopped; restore the file or move it aside, then restart",
					zap.String("file", path), zap.Error(err), zap.String("stack", string(debug.Stack())))
			}), nil
		}
	}
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := make()
		if err != nil {
			return nil, err
		}
		return &pooledStores{Stores: s, key: key}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*pooledStores), nil
}
