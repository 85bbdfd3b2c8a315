package caddymodule

import (
	"fmt"
	"path/filepath"
	"runtime/debug"

	"github.com/caddyserver/caddy/v2"
	"github.com/hookgate/hookgate/gateway"
	"go.uber.org/zap"
)

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
		rc := gateway.RedisConfig{URL: url, KeyPrefix: c.Redis.KeyPrefix, Cluster: c.Redis.Cluster}
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
