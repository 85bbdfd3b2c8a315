// Package dedupe defines the store that remembers which webhook events were already handed
// on, shared by every Caddy instance that points at it.
//
// An event id moves through three states. Claim takes an unknown (or expired) id into
// InFlight for a bounded time, atomically, in one round trip; Commit marks it Processed
// for the dedupe window; Release forgets a claim so the sender's retry gets through. A claim
// that is neither committed nor released (the process died) expires by itself.
package dedupe

import (
	"context"
	"time"

	"github.com/hookgate/hookgate/internal/storeerr"
)

// State is what a store knows about an event id.
type State uint8

// The states of an event id.
const (
	// New: the id was unknown (or expired) and is now claimed by the caller.
	New State = iota
	// InFlight: another request holds a claim on the id.
	InFlight
	// Processed: the id was handed on successfully within the dedupe window.
	Processed
)

// String names the state.
func (s State) String() string {
	switch s {
	case New:
		return "new"
	case InFlight:
		return "in_flight"
	case Processed:
		return "processed"
	}
	return "unknown"
}

// Token identifies one claim, so that only its holder can release it.
type Token string

// ErrUnavailable marks errors that mean the store cannot be reached (network, closed
// connection, timeout). Test with errors.Is. It is storeerr.ErrUnavailable, shared by every
// store; the dedupe stores wrap it as "dedupe store unavailable".
var ErrUnavailable = storeerr.ErrUnavailable

// Store is a dedupe store. Implementations are safe for concurrent use.
//
// Every call is bounded by the store itself (a network store answers within its client's
// timeouts when the server is away): the request path passes the request's context without
// a deadline of its own, so no timer is made per webhook.
type Store interface {
	// Claim atomically claims key for claimTTL if it is unknown, returning New and the claim's
	// token; otherwise it returns the key's state and changes nothing.
	Claim(ctx context.Context, key string, claimTTL time.Duration) (State, Token, error)
	// Commit marks key as processed for window, whoever holds the claim.
	Commit(ctx context.Context, key string, window time.Duration) error
	// Release drops the claim tok holds on key. It does nothing if the key is processed or
	// claimed by someone else.
	Release(ctx context.Context, key string, tok Token) error
}
