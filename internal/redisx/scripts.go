package redisx

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Pipelined runs fn's commands in one pipeline on c, with scripts called by SHA (EVALSHA:
// the script text is not resent and rehashed on every call). If a server does not know
// one of them yet (first use, a restart, a new cluster node) every script of scripts is
// loaded and the pipeline runs again, which is safe because a NOSCRIPT reply means the
// script did not run.
func Pipelined(ctx context.Context, c redis.UniversalClient, scripts []*redis.Script, fn func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	cmds, err := c.Pipelined(ctx, fn)
	if err == nil || !anyNoScript(cmds) {
		return cmds, err
	}
	for _, sc := range scripts {
		if err := sc.Load(ctx, c).Err(); err != nil {
			return cmds, err
		}
	}
	return c.Pipelined(ctx, fn)
}

func anyNoScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			return true
		}
	}
	return false
}
