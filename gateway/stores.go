package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hookgate/hookgate/internal/boltdb"
	"github.com/hookgate/hookgate/internal/redisx"
	"github.com/hookgate/hookgate/receiver/dedupe"
	"github.com/hookgate/hookgate/receiver/dedupe/boltstore"
	"github.com/hookgate/hookgate/receiver/dedupe/redisstore"
	"github.com/hookgate/hookgate/receiver/order"
	"github.com/hookgate/hookgate/receiver/order/boltorder"
	"github.com/hookgate/hookgate/receiver/order/redisorder"
	"github.com/hookgate/hookgate/receiver/quarantine"
	"github.com/hookgate/hookgate/receiver/quarantine/boltquarantine"
	"github.com/hookgate/hookgate/receiver/quarantine/redisquarantine"
	"github.com/hookgate/hookgate/receiver/reqlog"
	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/sender/queue/boltqueue"
	"github.com/hookgate/hookgate/sender/queue/redisqueue"
	"github.com/hookgate/hookgate/sender/subscription"
	"github.com/hookgate/hookgate/sender/subscription/boltsubs"
	"github.com/hookgate/hookgate/sender/subscription/redissubs"
	"github.com/redis/go-redis/v9"
)

// Stores is one opened set of stores: the dedupe, queue, subscription, order and request
// log stores of one embedded file or one Redis deployment. This file is the composition
// root: the only place that names the store implementations.
type Stores struct {
	// Describe names the store for logs and GET /webhooks/store ("embedded <path>",
	// "redis <url without password>").
	Describe string
	// Dedupe remembers processed event ids.
	Dedupe dedupe.Store
	// Queue holds deliveries and feed records.
	Queue queue.Store
	// Subs holds run-time subscriptions.
	Subs subscription.Store
	// Order holds the stale-event guard's newest values.
	Order order.Store
	// Log is the inbound request log.
	Log reqlog.Log
	// Quarantine holds the requests schemas refused (on_invalid quarantine) and the drift
	// reports.
	Quarantine quarantine.Store

	open   func() error
	close  func() error
	health func() Health
	ping   func(ctx context.Context) error
}

// Ping tells whether the store answers now: the embedded file is open and sound; Redis
// answers PING.
func (s *Stores) Ping(ctx context.Context) error {
	if s.ping == nil {
		return nil
	}
	return s.ping(ctx)
}

// Health is the embedded file's state.
type Health struct {
	// Damage is the damage found while running; nil while the file is sound.
	Damage error
	// Tasks is how many background tasks (flushers, sweepers) run; 0 once damage stopped them.
	Tasks int
}

// Open makes the store ready: the embedded file is opened (its lock taken, checked, its
// background tasks started); Redis is dialled lazily, so Open does nothing for it.
func (s *Stores) Open() error { return s.open() }

// Close closes the store.
func (s *Stores) Close() error { return s.close() }

// Health reports the embedded file's health; ok is false for Redis, whose outages are
// answered per call.
func (s *Stores) Health() (h Health, ok bool) {
	if s.health == nil {
		return Health{}, false
	}
	return s.health(), true
}

// EmbeddedKey is the key an embedded store at path is shared under between configs.
func EmbeddedKey(path string) string { return "embedded:" + path }

// NewEmbedded returns the stores of the bbolt file at path, opened at Open. onDamage is
// called once if the file is found damaged while running (every call is then refused).
func NewEmbedded(path string, onDamage func(error)) *Stores {
	h := boltdb.New(path)
	h.OnDamage = onDamage
	return &Stores{
		Describe:   "embedded " + path,
		Dedupe:     boltstore.New(h, boltstore.Options{}),
		Queue:      boltqueue.New(h, boltqueue.Options{}),
		Subs:       boltsubs.New(h),
		Order:      boltorder.New(h),
		Log:        reqlog.NewMemory(), // one process: the log stays in it (across reloads)
		Quarantine: boltquarantine.New(h),
		open: func() error {
			_, err := h.DB() // the stores' buckets and background tasks come with it
			return err
		},
		close:  h.Close,
		health: func() Health { return Health{Damage: h.Damage(), Tasks: h.Tasks()} },
		ping: func(context.Context) error {
			if _, err := h.DB(); err != nil {
				return err
			}
			return h.Damage()
		},
	}
}

// RedisConfig is a Redis store, its placeholders already expanded.
type RedisConfig struct {
	// URL is redis://[user:password@]host:port[/db] or rediss://; with Cluster, extra
	// nodes as ?addr=host:port. Required.
	URL string
	// KeyPrefix starts every key. Default "hookgate:".
	KeyPrefix string
	// Cluster connects to a Redis Cluster.
	Cluster bool
	// ReplicasAck and ReplicasTimeout: how many replicas hold a queued event before its
	// 2xx, and how long to wait for them (RedisStoreConfig).
	ReplicasAck     int
	ReplicasTimeout time.Duration
}

// redisOptions turns the config into go-redis options: the client policy every Redis
// store of Hookgate uses.
func (c RedisConfig) options() (*redis.UniversalOptions, string, error) {
	if c.URL == "" {
		return nil, "", fmt.Errorf("redis url is required")
	}
	redacted := redactURL(c.URL)
	var o redis.UniversalOptions
	if c.Cluster {
		co, err := redis.ParseClusterURL(c.URL)
		if err != nil {
			return nil, "", fmt.Errorf("redis cluster url %s: %s", redacted, scrubURL(err, c.URL))
		}
		o = redis.UniversalOptions{
			Addrs: co.Addrs, Username: co.Username, Password: co.Password, TLSConfig: co.TLSConfig,
			IsClusterMode: true,
		}
	} else {
		so, err := redis.ParseURL(c.URL)
		if err != nil {
			return nil, "", fmt.Errorf("redis url %s: %s", redacted, scrubURL(err, c.URL))
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

// scrubURL is err's text without the URL it may quote (url.Parse's errors do, secrets and
// all); a *url.Error gives only what was wrong.
func scrubURL(err error, raw string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return strings.ReplaceAll(err.Error(), raw, "(the URL)")
}

// redactURL is a Redis URL fit for logs and errors: the userinfo password and every query
// value but the extra nodes' addresses (go-redis takes a password there too) masked; an
// unparsable URL is not shown at all.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	if q := u.Query(); len(q) > 0 {
		for k := range q {
			if k != "addr" {
				q[k] = []string{"xxxxx"}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func (c RedisConfig) prefix() string {
	if c.KeyPrefix == "" {
		return "hookgate:"
	}
	return c.KeyPrefix
}

// Validate checks the URL without connecting, and the replica options.
func (c RedisConfig) Validate() error {
	if err := checkReplicas(c.ReplicasAck, c.ReplicasTimeout); err != nil {
		return fmt.Errorf("store redis: %w", err)
	}
	_, _, err := c.options()
	return err
}

// Key is the key a Redis store is shared under between configs: it covers everything
// that makes a client different, secrets included, but only as a hash.
func (c RedisConfig) Key() (string, error) {
	o, _, err := c.options()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%v|%s|%s|%s|%d|%v|%s|%d|%d", c.Cluster, strings.Join(o.Addrs, ","),
		o.Username, o.Password, o.DB, o.TLSConfig != nil, c.prefix(), c.ReplicasAck, c.ReplicasTimeout)))
	return "redis:" + hex.EncodeToString(sum[:]), nil
}

// NewRedis returns the stores of one Redis deployment. It does not connect: go-redis
// dials lazily, and Redis may come later.
func NewRedis(c RedisConfig) (*Stores, error) {
	if err := checkReplicas(c.ReplicasAck, c.ReplicasTimeout); err != nil {
		return nil, fmt.Errorf("store redis: %w", err)
	}
	o, redacted, err := c.options()
	if err != nil {
		return nil, err
	}
	prefix := c.prefix()
	client := redis.NewUniversalClient(o)
	if cc, ok := client.(*redis.ClusterClient); ok {
		redisx.ReloadOnNetErrors(cc) // a killed master's slots are found on its promoted replica at once
	}
	q := redisqueue.New(client, prefix, redisqueue.Options{ReplicasAck: c.ReplicasAck, ReplicasTimeout: c.ReplicasTimeout})
	rl := reqlog.NewRedis(client, prefix)
	dd := redisstore.New(client, prefix)
	return &Stores{
		Describe:   "redis " + redacted,
		Dedupe:     dd,
		Queue:      q,
		Subs:       redissubs.New(client, prefix),
		Order:      redisorder.New(client, prefix),
		Log:        rl,
		Quarantine: redisquarantine.New(client, prefix),
		open:       func() error { return nil },
		ping:       func(ctx context.Context) error { return client.Ping(ctx).Err() },
		close: func() error {
			q.Close()
			rl.Close()
			dd.Close()
			return client.Close()
		},
	}, nil
}
