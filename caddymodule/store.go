package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/receiver/dedupe"
	"github.com/hookgate/hookgate/receiver/dedupe/boltstore"
	"github.com/hookgate/hookgate/receiver/dedupe/redisstore"
	"github.com/hookgate/hookgate/receiver/order"
	"github.com/hookgate/hookgate/receiver/order/boltorder"
	"github.com/hookgate/hookgate/receiver/order/redisorder"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
	"github.com/hookgate/hookgate/sender/queue/redisqueue"
	"github.com/hookgate/hookgate/sender/subscription"
	"github.com/hookgate/hookgate/sender/subscription/boltsubs"
	"github.com/hookgate/hookgate/sender/subscription/redissubs"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// stores shares opened stores between configs: Caddy provisions a new config before it
// cleans up the old one, so an unchanged store is never closed and reopened on reload
// (the embedded file's lock would block the second open; a Redis client would reconnect).
var stores = caddy.NewUsagePool()

// sharedStore is one store as held in the pool.
type sharedStore struct {
	key      string
	describe string
	dedupe   dedupe.Store
	queue    queue.Store
	subs     subscription.Store
	order    order.Store
	reqlog   reqlog.Log
	open     func() error
	close    func() error
	// health reports the embedded file's damage (nil while sound) and its running
	// background tasks; nil for Redis, whose outages are answered per call.
	health func() (damage error, tasks int)
}

// Destruct implements caddy.Destructor: the last config using the store closes it.
func (s *sharedStore) Destruct() error { return s.close() }

func (s *sharedStore) release() error {
	_, err := stores.Delete(s.key)
	return err
}

func loadEmbeddedStore(path string) (*sharedStore, error) {
	key := "embedded:" + path
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		h := boltdb.New(path)
		h.OnDamage = func(err error) {
			// Once per file: the store refuses every call from here on, so nothing else logs it.
			caddy.Log().Named("webhooks").Error("embedded store file is damaged: every store call is refused (503) and the background tasks have stopped; restore the file or move it aside, then restart",
				zap.String("file", path), zap.Error(err), zap.String("stack", string(debug.Stack())))
		}
		ds := boltstore.New(h, boltstore.Options{})
		qs := boltqueue.New(h, boltqueue.Options{})
		return &sharedStore{
			key:      key,
			describe: "embedded " + path,
			dedupe:   ds,
			queue:    qs,
			subs:     boltsubs.New(h),
			order:    boltorder.New(h),
			reqlog:   reqlog.NewMemory(), // one process: the log stays in it (across reloads)
			open: func() error {
				_, err := h.DB() // the stores' buckets and background tasks come with it
				return err
			},
			close:  h.Close,
			health: func() (error, int) { return h.Damage(), h.Tasks() },
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*sharedStore), nil
}

// redisOptions turns the config into go-redis options, expanding placeholders.
func redisOptions(cfg RedisStoreConfig) (*redis.UniversalOptions, string, error) {
	raw, err := caddy.NewReplacer().ReplaceOrErr(cfg.URL, true, true)
	if err != nil {
		return nil, "", fmt.Errorf("redis url: %w", err)
	}
	if raw == "" {
		return nil, "", fmt.Errorf("redis url is required")
	}
	redacted := raw
	if u, err := url.Parse(raw); err == nil {
		redacted = u.Redacted()
	}
	var o redis.UniversalOptions
	if cfg.Cluster {
		co, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, "", fmt.Errorf("redis cluster url %s: %v", redacted, err)
		}
		o = redis.UniversalOptions{
			Addrs: co.Addrs, Username: co.Username, Password: co.Password, TLSConfig: co.TLSConfig,
			IsClusterMode: true,
		}
	} else {
		so, err := redis.ParseURL(raw)
		if err != nil {
			return nil, "", fmt.Errorf("redis url %s: %v", redacted, err)
		}
		o = redis.UniversalOptions{
			Addrs: []string{so.Addr}, Username: so.Username, Password: so.Password, DB: so.DB, TLSConfig: so.TLSConfig,
		}
	}
	// Fail fast when Redis is away: a request must not wait long to learn the store is down.
	o.DialTimeout = 2 * time.Second
	o.ReadTimeout = 2 * time.Second
	o.WriteTimeout = 2 * time.Second
	o.MaxRetries = 1
	// go-redis retries a failed dial 5 times, 100 ms apart, inside every attempt; with the
	// autopipeliner's retry of a failed batch that is 1.6 s before a request learns Redis is
	// away. One quick retry tells a blip from an outage.
	o.DialerRetries = 1
	o.DialerRetryTimeout = 50 * time.Millisecond
	return &o, redacted, nil
}

func loadRedisStore(cfg RedisStoreConfig) (*sharedStore, error) {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "hookgate:"
	}
	opts, redacted, err := redisOptions(cfg)
	if err != nil {
		return nil, err
	}
	// The pool key covers everything that makes a client different, secrets included,
	// but only as a hash.
	sum := sha256.Sum256([]byte(fmt.Sprintf("%v|%s|%s|%s|%d|%v|%s", cfg.Cluster, strings.Join(opts.Addrs, ","),
		opts.Username, opts.Password, opts.DB, opts.TLSConfig != nil, cfg.KeyPrefix)))
	key := "redis:" + hex.EncodeToString(sum[:])
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		c := redis.NewUniversalClient(opts)
		q := redisqueue.New(c, cfg.KeyPrefix, redisqueue.Options{})
		rl := reqlog.NewRedis(c, cfg.KeyPrefix)
		return &sharedStore{
			key:      key,
			describe: "redis " + redacted,
			dedupe:   redisstore.New(c, cfg.KeyPrefix),
			queue:    q,
			subs:     redissubs.New(c, cfg.KeyPrefix),
			order:    redisorder.New(c, cfg.KeyPrefix),
			reqlog:   rl,
			open:     func() error { return nil }, // go-redis dials lazily; Redis may come later
			close: func() error {
				q.Close()
				rl.Close()
				return c.Close()
			},
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*sharedStore), nil
}
