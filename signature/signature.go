// Package signature verifies and produces the HMAC signatures webhook senders put on their
// requests: Standard Webhooks, GitHub, Stripe, Shopify, Slack and a generic header scheme.
//
// Every scheme signs the raw body bytes as received (never re-serialised JSON), compares in
// constant time, accepts several secrets (rotation) and, where the scheme carries a
// timestamp, refuses requests outside a tolerance in both directions. Verify's errors are
// meant for logs; a client should only ever learn "unauthorized".
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The schemes.
const (
	Standard = "standard"
	GitHub   = "github"
	Stripe   = "stripe"
	Shopify  = "shopify"
	Slack    = "slack"
	Generic  = "generic"
)

// Schemes lists every supported scheme.
var Schemes = []string{Standard, GitHub, Stripe, Shopify, Slack, Generic}

// DefaultTolerance is how far a signed timestamp may be from now, either way.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify. They never carry secret material.
var (
	ErrMissing   = errors.New("signature header missing")
	ErrMalformed = errors.New("signature header malformed")
	ErrMismatch  = errors.New("no signature matches")
	ErrTimestamp = errors.New("timestamp missing, malformed or outside tolerance")
)

// Config configures a Verifier.
type Config struct {
	// Scheme is one of Schemes.
	Scheme string
	// Secrets are the signing secrets; any one may match. For "standard" each is
	// "whsec_" followed by base64 (a bare base64 key is accepted too); for the other
	// schemes the secret's bytes are the HMAC key.
	Secrets []string
	// Header is the signature header of the generic scheme. Required there.
	Header string
	// Algorithm is "sha256" (default) or "sha512", generic scheme only.
	Algorithm string
	// Tolerance bounds timestamp skew for standard, stripe and slack. Default 5m.
	Tolerance time.Duration
}

// Verifier checks one scheme's signature with one or more secrets. It is safe for
// concurrent use.
type Verifier struct {
	scheme    string
	keys      [][]byte
	header    string
	newHash   func() hash.Hash
	tolerance time.Duration
}

// NewVerifier validates cfg and decodes its secrets once.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{scheme: cfg.Scheme, tolerance: cfg.Tolerance, newHash: sha256.New}
	if v.tolerance <= 0 {
		v.tolerance = DefaultTolerance
	}
	switch cfg.Scheme {
	case Standard, GitHub, Stripe, Shopify, Slack:
		if cfg.Header != "" {
			return nil, fmt.Errorf("hmac %s: the header is fixed by the scheme; 'header' is for the generic scheme", cfg.Scheme)
		}
	case Generic:
		if cfg.Header == "" {
			return nil, fmt.Errorf("hmac generic: name the signature header ('header <Name>')")
		}
		v.header = http.CanonicalHeaderKey(cfg.Header)
	case "":
		return nil, fmt.Errorf("hmac: no scheme (one of %s)", strings.Join(Schemes, ", "))
	default:
		return nil, fmt.Errorf("hmac: unknown scheme %q (one of %s)", cfg.Scheme, strings.Join(Schemes, ", "))
	}
	switch cfg.Algorithm {
	case "", "sha256":
	case "sha512":
		if cfg.Scheme != Generic {
			return nil, fmt.Errorf("hmac %s: the algorithm is fixed by the scheme", cfg.Scheme)
		}
		v.newHash = sha512.New
	default:
		return nil, fmt.Errorf("hmac: unknown algorithm %q (sha256 or sha512)", cfg.Algorithm)
	}
	if len(cfg.Secrets) == 0 {
		return nil, fmt.Errorf("hmac %s: no secret", cfg.Scheme)
	}
	for i, s := range cfg.Secrets {
		k, err := DecodeSecret(cfg.Scheme, s)
		if err != nil {
			return nil, fmt.Errorf("hmac %s: secret %d: %w", cfg.Scheme, i+1, err)
		}
		v.keys = append(v.keys, k)
	}
	return v, nil
}

// DecodeSecret turns a configured secret into HMAC key bytes for scheme.
func DecodeSecret(scheme, s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty secret")
	}
	if scheme != Standard {
		return []byte(s), nil
	}
	b64 := strings.TrimPrefix(s, "whsec_")
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if k2, err2 := base64.RawStdEncoding.DecodeString(b64); err2 == nil {
			return k2, nil
		}
		return nil, errors.New("a Standard Webhooks secret is whsec_ followed by base64")
	}
	if len(k) == 0 {
		return nil, errors.New("empty secret")
	}
	return k, nil
}

// Scheme returns the verifier's scheme.
func (v *Verifier) Scheme() string { return v.scheme }

func (v *Verifier) mac(key []byte, parts ...[]byte) []byte {
	m := hmac.New(v.newHash, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// anyKey reports whether the MAC of parts under any key equals one of the candidates.
// Every key and candidate is tried, so timing does not depend on which one matched.
func (v *Verifier) anyKey(cands [][]byte, parts ...[]byte) bool {
	ok := false
	for _, k := range v.keys {
		sum := v.mac(k, parts...)
		for _, c := range cands {
			if hmac.Equal(sum, c) {
				ok = true
			}
		}
	}
	return ok
}

func (v *Verifier) checkTime(ts int64, now time.Time) error {
	d := now.Sub(time.Unix(ts, 0))
	if d > v.tolerance || d < -v.tolerance {
		return ErrTimestamp
	}
	return nil
}

// Verify checks the signature on a request with headers h and raw body, at time now.
func (v *Verifier) Verify(h http.Header, body []byte, now time.Time) error {
	switch v.scheme {
	case Standard:
		return v.verifyStandard(h, body, now)
	case GitHub:
		return v.verifyPrefixedHex(h.Get("X-Hub-Signature-256"), "sha256=", body)
	case Stripe:
		return v.verifyStripe(h.Get("Stripe-Signature"), body, now)
	case Shopify:
		sig := h.Get("X-Shopify-Hmac-Sha256")
		if sig == "" {
			return ErrMissing
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
		if err != nil {
			return ErrMalformed
		}
		if !v.anyKey([][]byte{raw}, body) {
			return ErrMismatch
		}
		return nil
	case Slack:
		return v.verifySlack(h, body, now)
	default:
		return v.verifyGeneric(h.Get(v.header), body)
	}
}

// verifyStandard checks a Standard Webhooks signature, from the webhook-* headers or, when
// there is no webhook-id, from the svix-* headers that senders hosted by Svix use (the same
// scheme under other names). The three headers always come from one set.
func (v *Verifier) verifyStandard(h http.Header, body []byte, now time.Time) error {
	id, tsText, sigs := h.Get("Webhook-Id"), h.Get("Webhook-Timestamp"), h.Get("Webhook-Signature")
	if id == "" && tsText == "" && sigs == "" {
		id, tsText, sigs = h.Get("Svix-Id"), h.Get("Svix-Timestamp"), h.Get("Svix-Signature")
	}
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissing
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if err := v.checkTime(ts, now); err != nil {
		return err
	}
	cands, err := ParseStandardSignatures(sigs)
	if err != nil {
		return err
	}
	if len(cands) == 0 {
		return ErrMismatch // only other versions (e.g. v1a) present
	}
	if !v.anyKey(cands, []byte(id), dot, []byte(tsText), dot, body) {
		return ErrMismatch
	}
	return nil
}

var dot = []byte{'.'}

// ParseStandardSignatures parses a webhook-signature header: space-separated
// "<version>,<base64>" entries. It returns the decoded v1 signatures; other versions, and v1
// entries that are not a base64 SHA-256, are skipped (as the Standard Webhooks libraries do:
// they compare every entry and take any match). An entry without a comma makes the header
// malformed.
func ParseStandardSignatures(h string) ([][]byte, error) {
	var out [][]byte
	for _, f := range strings.Fields(h) {
		ver, sig, ok := strings.Cut(f, ",")
		if !ok || ver == "" || sig == "" {
			return nil, ErrMalformed
		}
		if ver != "v1" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(sig)
		if err != nil || len(raw) != sha256.Size {
			continue
		}
		out = append(out, raw)
	}
	if out == nil && strings.TrimSpace(h) == "" {
		return nil, ErrMalformed
	}
	return out, nil
}

func (v *Verifier) verifyPrefixedHex(sig, prefix string, body []byte) error {
	if sig == "" {
		return ErrMissing
	}
	hexSig, ok := strings.CutPrefix(sig, prefix)
	if !ok {
		return ErrMalformed
	}
	raw, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrMalformed
	}
	if !v.anyKey([][]byte{raw}, body) {
		return ErrMismatch
	}
	return nil
}

// StripeHeader is a parsed Stripe-Signature header.
type StripeHeader struct {
	Timestamp int64
	V1        [][]byte
}

// ParseStripeHeader parses "t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]". Unknown keys, and v1
// entries that are not 64 hex digits, are skipped, as Stripe's libraries do (they compare
// every v1 and take any match). A missing or bad t, or no v1 that decodes, is malformed.
func ParseStripeHeader(h string) (StripeHeader, error) {
	var out StripeHeader
	haveT := false
	for _, item := range strings.Split(h, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return out, ErrMalformed
		}
		switch k {
		case "t":
			ts, err := strconv.ParseInt(val, 10, 64)
			if err != nil || haveT {
				return out, ErrMalformed
			}
			out.Timestamp, haveT = ts, true
		case "v1":
			raw, err := hex.DecodeString(val)
			if err != nil || len(raw) != sha256.Size {
				continue
			}
			out.V1 = append(out.V1, raw)
		}
	}
	if !haveT || len(out.V1) == 0 {
		return out, ErrMalformed
	}
	return out, nil
}

func (v *Verifier) verifyStripe(h string, body []byte, now time.Time) error {
	if h == "" {
		return ErrMissing
	}
	sh, err := ParseStripeHeader(h)
	if err != nil {
		return err
	}
	if err := v.checkTime(sh.Timestamp, now); err != nil {
		return err
	}
	if !v.anyKey(sh.V1, []byte(strconv.FormatInt(sh.Timestamp, 10)), dot, body) {
		return ErrMismatch
	}
	return nil
}

func (v *Verifier) verifySlack(h http.Header, body []byte, now time.Time) error {
	sig, tsText := h.Get("X-Slack-Signature"), h.Get("X-Slack-Request-Timestamp")
	if sig == "" || tsText == "" {
		return ErrMissing
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if err := v.checkTime(ts, now); err != nil {
		return err
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return ErrMalformed
	}
	raw, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrMalformed
	}
	if !v.anyKey([][]byte{raw}, []byte("v0:"+tsText+":"), body) {
		return ErrMismatch
	}
	return nil
}

// ParseGeneric decodes a generic signature value: an optional "sha256=" or "sha512="
// prefix, then hex or standard base64 of size bytes.
func ParseGeneric(sig string, size int) ([]byte, error) {
	sig = strings.TrimSpace(sig)
	if i := strings.IndexByte(sig, '='); i > 0 && i < 8 && (sig[:i] == "sha256" || sig[:i] == "sha512") {
		sig = sig[i+1:]
	}
	if len(sig) == hex.EncodedLen(size) {
		if raw, err := hex.DecodeString(sig); err == nil {
			return raw, nil
		}
	}
	if raw, err := base64.StdEncoding.DecodeString(sig); err == nil && len(raw) == size {
		return raw, nil
	}
	return nil, ErrMalformed
}

func (v *Verifier) verifyGeneric(sig string, body []byte) error {
	if sig == "" {
		return ErrMissing
	}
	raw, err := ParseGeneric(sig, v.newHash().Size())
	if err != nil {
		return err
	}
	if !v.anyKey([][]byte{raw}, body) {
		return ErrMismatch
	}
	return nil
}
