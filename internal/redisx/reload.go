package redisx

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/redis/go-redis/v9"
)

// ReloadOnNetErrors makes cc reload its view of the Cluster's slots whenever a node
// cannot be reached. go-redis reloads it on MOVED and READONLY replies and every
// ClusterStateReloadInterval, but not on a node that refuses connections: after a master
// is killed and its replica promoted, calls for the dead master's slots kept going to it
// until the next periodic reload (60 s by default), answered 503 the whole time. A
// reload asks a node that answers (go-redis tries them in turn) and runs at most once at a
// time. It must be called before cc makes its node clients, right after it is made.
func ReloadOnNetErrors(cc *redis.ClusterClient) {
	cc.OnNewNode(func(c *redis.Client) { c.AddHook(reloadHook{cc}) })
}

type reloadHook struct{ cc *redis.ClusterClient }

func (h reloadHook) reloadOn(err error) {
	if isNetError(err) {
		h.cc.ReloadState(context.Background())
	}
}

func (h reloadHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			h.cc.ReloadState(context.Background())
		}
		return c, err
	}
}

func (h reloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.reloadOn(err)
		return err
	}
}

func (h reloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.reloadOn(err)
		return err
	}
}

// isNetError: the connection failed (refused, reset, timed out, closed under the call),
// as opposed to a Redis reply, redis.Nil or the caller's own cancellation.
func isNetError(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return false
	}
	var nerr net.Error
	var operr *net.OpError
	return errors.As(err, &nerr) || errors.As(err, &operr) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}
