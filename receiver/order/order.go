// Package order is the stale-event guard's store: per record key, the newest order value
// handed on, and the claim of the one event for that record being handed on right now.
// Senders like TOTVS retry failures minutes later while newer events for the same record
// keep flowing; with the guard an older event arriving after a newer one is answered
// without being handed on.
//
// Values are compared as strings; Encode turns times, integers and strings into strings
// whose byte order is their order, so stores need no types (a Redis script compares them
// as they are).
package order

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Verdict is what a claim found.
type Verdict int

// Verdicts.
const (
	// Pass: the value is as new as or newer than the newest handed on; the claim is held.
	Pass Verdict = iota
	// Stale: an event with a newer value was already handed on.
	Stale
	// Busy: another event for the same key is being handed on right now.
	Busy
)

// ErrUnavailable: the store cannot be reached.
var ErrUnavailable = errors.New("order store unavailable")

// Store remembers the newest order value per key.
type Store interface {
	// Claim compares value with the newest committed for key. Pass holds a claim (token)
	// for claimTTL: other claims of key are Busy until it is committed or released.
	Claim(ctx context.Context, key, value string, claimTTL time.Duration) (v Verdict, token string, err error)
	// Commit records value as key's newest (unless a newer one is already there), kept for
	// window, and ends the claim. A claim that lapsed is ignored.
	Commit(ctx context.Context, key, value, token string, window time.Duration) error
	// Release ends a claim without recording anything.
	Release(ctx context.Context, key, token string) error
}

// Kind is how order values compare.
type Kind string

// Kinds.
const (
	// Time: RFC 3339 times, offsets honoured (TOTVS sends -03:00). The default.
	Time Kind = "time"
	// Int: base-10 integers.
	Int Kind = "int"
	// String: byte order.
	String Kind = "string"
)

// Valid reports whether k is a known kind ("" is Time).
func (k Kind) Valid() bool { return k == "" || k == Time || k == Int || k == String }

// Encode turns raw (as found in the request) into a string whose byte order is the
// value's order, or an error saying why raw is not of kind k.
func Encode(k Kind, raw string) (string, error) {
	switch k {
	case Time, "":
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return "", fmt.Errorf("%q is not an RFC 3339 time (2025-10-01T14:03:00-03:00)", raw)
		}
		return sortableInt(t.UnixNano()), nil
	case Int:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an integer", raw)
		}
		return sortableInt(n), nil
	case String:
		return "s" + hex.EncodeToString([]byte(raw)), nil // hex keeps byte order under any collation
	}
	return "", fmt.Errorf("unknown order kind %q", k)
}

// sortableInt is n as 20 digits, offset so negative numbers sort first.
func sortableInt(n int64) string {
	return fmt.Sprintf("i%020d", uint64(n)^(1<<63))
}
