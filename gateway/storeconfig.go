package gateway

import (
	"fmt"
	"strconv"
	"time"
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
	// ReplicasAck is how many replicas must hold a queued event before its 2xx (async
	// inbound, publish): Redis' WAIT on the master after the write. Default 0: once the
	// master has it (a failover can then lose it).
	ReplicasAck int `json:"replicas_ack,omitempty"`
	// ReplicasTimeout bounds that wait, in nanoseconds (the Caddyfile takes e.g. 500ms),
	// from 1ms to under 2s (the client's read timeout); too few replicas by then answer
	// 503 and the sender retries. Default 1s.
	ReplicasTimeout time.Duration `json:"replicas_timeout,omitempty"`
}

// SetOption sets replicas_ack or replicas_timeout from their Caddyfile arguments.
func (c *RedisStoreConfig) SetOption(name string, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s takes one value", name)
	}
	switch name {
	case "replicas_ack":
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return fmt.Errorf("replicas_ack %q: want a count of replicas from 0 to %d", args[0], MaxReplicasAck)
		}
		c.ReplicasAck = n
	case "replicas_timeout":
		d, err := time.ParseDuration(args[0])
		if err != nil || d == 0 { // 0 is the JSON default, not a timeout to write
			return fmt.Errorf("replicas_timeout %q: want a duration from 1ms to under 2s, such as 500ms", args[0])
		}
		c.ReplicasTimeout = d
	default:
		return fmt.Errorf("unrecognized store redis option %q", name)
	}
	return checkReplicas(c.ReplicasAck, c.ReplicasTimeout)
}

// MaxReplicasAck is the most replicas replicas_ack may ask for: more than a master has
// would answer every queued event 503.
const MaxReplicasAck = 16

// checkReplicas checks replicas_ack and replicas_timeout as the JSON config and the
// Caddyfile give them (timeout 0 is the default).
func checkReplicas(ack int, timeout time.Duration) error {
	if ack < 0 || ack > MaxReplicasAck {
		return fmt.Errorf("replicas_ack %d: want a count of replicas from 0 to %d", ack, MaxReplicasAck)
	}
	if timeout != 0 && (timeout < time.Millisecond || timeout >= 2*time.Second) {
		// WAIT takes whole milliseconds (0 would wait for ever), and the client gives up
		// reading any answer after 2 s.
		return fmt.Errorf("replicas_timeout %s: want a duration from 1ms to under 2s, such as 500ms", timeout)
	}
	return nil
}
