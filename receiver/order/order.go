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
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hookgate/hookgate/internal/storeerr"
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

// ErrUnavailable: the store cannot be reached. It is storeerr.ErrUnavailable, shared by every
// store; the order stores wrap it as "order store unavailable".
var ErrUnavailable = storeerr.ErrUnavailable

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
	// Get returns key's newest committed value and when it expires; found is false when
	// none is kept (never recorded, expired or cleared). For the admin API, not the
	// request path.
	Get(ctx context.Context, key string) (r Record, found bool, err error)
	// Clear forgets key's newest value (an operator's reset of a record whose value is
	// wrong); found tells whether there was one. A claim being held is left alone: its
	// event, if handed on, records its own value.
	Clear(ctx context.Context, key string) (found bool, err error)
}

// Record is a key's newest committed value, as Get returns it.
type Record struct {
	// Value is the encoded value (see Encode and Decode).
	Value string
	// Expires is when the value is forgotten (the end of its window).
	Expires time.Time
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
		t, err := ParseTime(raw)
		if err != nil {
			return "", err
		}
		return EncodeTime(t), nil
	case Int:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an integer", raw)
		}
		return sortableInt('i', uint64(n)^(1<<63)), nil
	case String:
		return "s" + hex.EncodeToString([]byte(raw)), nil // hex keeps byte order under any collation
	}
	return "", fmt.Errorf("unknown order kind %q", k)
}

// ParseTime reads an order value of kind Time: RFC 3339 (any number of fraction digits,
// 't' and 'z' in either case, second 60 of a leap second) and ISO 8601's other offsets,
// without a colon (-0300, as TOTVS writes) or without minutes (-03), and its decimal
// comma; years 0000 to 9999. A leap second reads as the first instant of the next minute.
func ParseTime(raw string) (time.Time, error) {
	const minLen, maxLen = len("2006-01-02T15:04:05Z"), 64
	n := len(raw)
	if n < minLen || n > maxLen {
		return time.Time{}, notTime(raw)
	}
	noColon := n >= minLen+4 && (raw[n-5] == '+' || raw[n-5] == '-') && isDigits(raw[n-4:])
	hourOnly := n >= minLen+2 && (raw[n-3] == '+' || raw[n-3] == '-') && isDigits(raw[n-2:])
	leap := raw[17:19] == "60" // time.Parse refuses second 60
	if raw[10] != 't' && raw[n-1] != 'z' && !noColon && !hourOnly && !leap {
		t, err := time.Parse(time.RFC3339Nano, raw) // the common forms, without copying
		if err != nil {
			return time.Time{}, notTime(raw)
		}
		return t, nil
	}
	// Put it in time.RFC3339Nano's form: T, Z, ±hh:mm, second 59 (plus one).
	var buf [maxLen + 1]byte
	b := append(buf[:0], raw...)
	if b[10] == 't' {
		b[10] = 'T'
	}
	if b[n-1] == 'z' {
		b[n-1] = 'Z'
	}
	switch {
	case noColon:
		b = append(b[:n-2], ':', raw[n-2], raw[n-1]) // ±hhmm → ±hh:mm
	case hourOnly:
		b = append(b, ':', '0', '0') // ±hh → ±hh:00
	}
	if leap {
		b[17], b[18] = '5', '9'
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, notTime(raw)
	}
	if leap {
		t = t.Add(time.Second).Truncate(time.Second)
	}
	return t, nil
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func notTime(raw string) error {
	return fmt.Errorf("%q is not an RFC 3339 or ISO 8601 time with an offset (2025-10-01T14:03:00-03:00, -0300, -03 or Z)", raw)
}

// The instants whose nanoseconds since 1970 fit an int64 (1677-09-21 to 2262-04-11).
var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// EncodeTime encodes t for Time order values, over every year RFC 3339 can write (and any
// other time.Time): "i" and 20 digits of its nanoseconds since 1970 where they fit an
// int64 (the encoding of earlier releases, so values stored before an upgrade compare
// with new ones), else "h" (before 1677) or "j" (after 2262), 20 digits of its seconds
// and 9 of its nanoseconds. "h" < "i" < "j", and each is fixed-width, so byte order is
// time order.
func EncodeTime(t time.Time) string {
	switch {
	case t.Before(minNano):
		return sortableSec('h', t)
	case t.After(maxNano):
		return sortableSec('j', t)
	}
	return sortableInt('i', uint64(t.UnixNano())^(1<<63))
}

// sortableInt is prefix and n as 20 digits (for an int64 n offset by 1<<63, so negative
// numbers sort first).
func sortableInt(prefix byte, n uint64) string {
	var b [21]byte
	b[0] = prefix
	putDigits(b[1:], n)
	return string(b[:])
}

func sortableSec(prefix byte, t time.Time) string {
	var b [30]byte
	b[0] = prefix
	putDigits(b[1:21], uint64(t.Unix())^(1<<63))
	putDigits(b[21:], uint64(t.Nanosecond()))
	return string(b[:])
}

// putDigits writes n in decimal right-aligned in b, padded with zeros.
func putDigits(b []byte, n uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
}

// DecodeTime is the inverse of EncodeTime.
func DecodeTime(v string) (time.Time, error) {
	bad := fmt.Errorf("%q is not an encoded time", v)
	switch {
	case len(v) == 21 && v[0] == 'i':
		n, err := strconv.ParseUint(v[1:], 10, 64)
		if err != nil {
			return time.Time{}, bad
		}
		return time.Unix(0, int64(n^(1<<63))).UTC(), nil
	case len(v) == 30 && (v[0] == 'h' || v[0] == 'j'):
		sec, err1 := strconv.ParseUint(v[1:21], 10, 64)
		ns, err2 := strconv.ParseUint(v[21:], 10, 32)
		if err1 != nil || err2 != nil || ns >= 1e9 {
			return time.Time{}, bad
		}
		return time.Unix(int64(sec^(1<<63)), int64(ns)).UTC(), nil
	}
	return time.Time{}, bad
}

// Decode turns an encoded value of kind k back into text an operator reads: a time in
// RFC 3339 (UTC), an integer, or the string.
func Decode(k Kind, v string) (string, error) {
	switch k {
	case Time, "":
		t, err := DecodeTime(v)
		if err != nil {
			return "", err
		}
		return t.Format(time.RFC3339Nano), nil
	case Int:
		if len(v) == 21 && v[0] == 'i' {
			if n, err := strconv.ParseUint(v[1:], 10, 64); err == nil {
				return strconv.FormatInt(int64(n^(1<<63)), 10), nil
			}
		}
	case String:
		if s, ok := strings.CutPrefix(v, "s"); ok {
			if b, err := hex.DecodeString(s); err == nil {
				return string(b), nil
			}
		}
	}
	return "", fmt.Errorf("%q is not an encoded %s value", v, k)
}
