package gateway

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
