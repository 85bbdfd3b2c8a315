// Package redisx holds what Hookgate's Redis stores (dedupe and queue) share.
package redisx

import (
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Classify wraps err for operation op: with unavailable (the caller's own sentinel, so
// errors.Is works on it) when it means the store cannot be used right now (network errors,
// timeouts, a closed client, a server that is loading, down, read-only or busy, or one that
// refuses this client's credentials: every call fails alike until an operator acts; a
// node that turned replica under a call, which a Cluster failover does: WAIT refused on a
// replica, a blocked call unblocked by the role change), and with context otherwise.
// redis.Nil and nil are nil.
func Classify(op string, err error, unavailable error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "CLUSTERDOWN", "READONLY", "MASTERDOWN", "TRYAGAIN", "BUSY",
			"WRONGPASS", "NOAUTH", "NOPERM", "UNBLOCKED", "NOREPLICAS", "ERR WAIT cannot be used with replica"} {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("%w: redis %s: %w", unavailable, op, err)
			}
		}
		return fmt.Errorf("redis %s: %w", op, err)
	}
	return fmt.Errorf("%w: redis %s: %w", unavailable, op, err)
}
