package receiver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hookgate/hookgate/problem"
	"github.com/hookgate/hookgate/signature"
)

// AuthKind names a kind of credential line.
type AuthKind string

// The credential kinds of `webhook_receive`.
const (
	AuthValidationKey AuthKind = "validation_key" // X-Ploomes-Validation-Key: <key>
	AuthHeader        AuthKind = "header"         // <Name>: <value>
	AuthBearer        AuthKind = "bearer"         // Authorization: Bearer <token>, or the raw token
	AuthBasic         AuthKind = "basic"          // Authorization: Basic base64(user:password)
	AuthQuery         AuthKind = "query"          // ?<param>=<value>
	AuthHMAC          AuthKind = "hmac"           // a signature over the raw body
	AuthNone          AuthKind = "none"           // explicit opt-out
)

// ValidationKeyHeader is the header Ploomes sends its validation key in.
const ValidationKeyHeader = "X-Ploomes-Validation-Key"

// AuthSpec is one credential line, with its secrets already resolved (placeholders expanded).
type AuthSpec struct {
	Kind AuthKind
	// Name is the header name (header) or the query parameter (query).
	Name string
	// User is the user name (basic).
	User string
	// Secret is the key, value, token or password.
	Secret string
	// Scheme, Secrets, Header, Algorithm and Tolerance configure an hmac line.
	Scheme    string
	Secrets   []string
	Header    string
	Algorithm string
	Tolerance time.Duration
}

type digest = [sha256.Size]byte

// digestOf and sameDigest are what every static credential check hashes and compares
// with. They are variables only so a test can count the work a check does (timing_test.go:
// the same work whichever part of a credential was wrong); nothing else changes them.
var (
	digestOf   = sha256.Sum256
	sameDigest = subtle.ConstantTimeCompare
)

// credential checks one credential line. Static credentials compare SHA-256 digests with
// subtle.ConstantTimeCompare, so neither the secret nor its length leaks through timing.
type credential interface {
	check(r *http.Request, body []byte) bool
}

type headerCred struct {
	name string
	want digest
}

func (c headerCred) check(r *http.Request, _ []byte) bool {
	vals := r.Header.Values(c.name)
	if len(vals) != 1 {
		return false
	}
	got := digestOf([]byte(vals[0]))
	return sameDigest(got[:], c.want[:]) == 1
}

type bearerCred struct{ want digest }

func (c bearerCred) check(r *http.Request, _ []byte) bool {
	v := r.Header.Get("Authorization")
	tok := v
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		tok = strings.TrimLeft(v[7:], " ")
	}
	got := digestOf([]byte(tok))
	return sameDigest(got[:], c.want[:]) == 1
}

type basicCred struct{ user, pass digest }

func (c basicCred) check(r *http.Request, _ []byte) bool {
	u, p, ok := r.BasicAuth()
	gu, gp := digestOf([]byte(u)), digestOf([]byte(p))
	// Both halves are always compared: the timing never says which one was wrong.
	okU := sameDigest(gu[:], c.user[:])
	okP := sameDigest(gp[:], c.pass[:])
	return ok && okU&okP == 1
}

type queryCred struct {
	param string
	want  digest
}

func (c queryCred) check(r *http.Request, _ []byte) bool {
	vals, ok := r.URL.Query()[c.param]
	if !ok || len(vals) != 1 {
		return false
	}
	got := digestOf([]byte(vals[0]))
	return sameDigest(got[:], c.want[:]) == 1
}

type hmacCred struct{ v *signature.Verifier }

func (c hmacCred) check(r *http.Request, body []byte) bool {
	return c.v.Verify(r.Header, body, time.Now()) == nil
}

// authenticator holds a route's credential lines: a request passes if any one matches.
type authenticator struct {
	header []credential // need only the request line and headers
	body   []credential // need the raw body (signatures)
	open   bool         // auth none
	basic  bool         // a basic line exists: answer 401 with WWW-Authenticate
}

func newAuthenticator(specs []AuthSpec) (*authenticator, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("no auth line: configure a credential (validation_key, auth header|bearer|basic|query|hmac) or say 'auth none' explicitly")
	}
	a := &authenticator{}
	for i, s := range specs {
		switch s.Kind {
		case AuthValidationKey:
			if s.Secret == "" {
				return nil, fmt.Errorf("auth line %d: validation_key is empty", i+1)
			}
			a.header = append(a.header, headerCred{name: ValidationKeyHeader, want: sha256.Sum256([]byte(s.Secret))})
		case AuthHeader:
			if s.Name == "" || s.Secret == "" {
				return nil, fmt.Errorf("auth line %d: header needs a header name and a non-empty value", i+1)
			}
			a.header = append(a.header, headerCred{name: http.CanonicalHeaderKey(s.Name), want: sha256.Sum256([]byte(s.Secret))})
		case AuthBearer:
			if s.Secret == "" {
				return nil, fmt.Errorf("auth line %d: bearer token is empty", i+1)
			}
			a.header = append(a.header, bearerCred{want: sha256.Sum256([]byte(s.Secret))})
		case AuthBasic:
			if s.User == "" || s.Secret == "" {
				return nil, fmt.Errorf("auth line %d: basic needs a user and a non-empty password", i+1)
			}
			a.header = append(a.header, basicCred{user: sha256.Sum256([]byte(s.User)), pass: sha256.Sum256([]byte(s.Secret))})
			a.basic = true
		case AuthQuery:
			if s.Name == "" || s.Secret == "" {
				return nil, fmt.Errorf("auth line %d: query needs a parameter name and a non-empty value", i+1)
			}
			a.header = append(a.header, queryCred{param: s.Name, want: sha256.Sum256([]byte(s.Secret))})
		case AuthHMAC:
			v, err := signature.NewVerifier(signature.Config{
				Scheme: s.Scheme, Secrets: s.Secrets, Header: s.Header, Algorithm: s.Algorithm, Tolerance: s.Tolerance,
			})
			if err != nil {
				return nil, fmt.Errorf("auth line %d: %w", i+1, err)
			}
			a.body = append(a.body, hmacCred{v: v})
		case AuthNone:
			a.open = true
		default:
			return nil, fmt.Errorf("auth line %d: unknown kind %q", i+1, s.Kind)
		}
	}
	if a.open && (len(a.header) > 0 || len(a.body) > 0) {
		return nil, fmt.Errorf("'auth none' cannot be combined with credential lines")
	}
	return a, nil
}

// checkHeaders runs the credentials that need no body. It reports whether the request is
// already authenticated, and whether the body credentials may still authenticate it.
func (a *authenticator) checkHeaders(r *http.Request) (ok, pending bool) {
	if a.open {
		return true, false
	}
	match := false
	for _, c := range a.header { // every line is checked: timing does not say which matched
		if c.check(r, nil) {
			match = true
		}
	}
	return match, !match && len(a.body) > 0
}

func (a *authenticator) checkBody(r *http.Request, body []byte) bool {
	for _, c := range a.body {
		if c.check(r, body) {
			return true
		}
	}
	return false
}

func (a *authenticator) unauthorized() *Problem {
	p := newProblem(http.StatusUnauthorized, problem.ReasonUnauthorized, "Unauthorized",
		"the request does not carry a valid credential for this endpoint")
	if a.basic {
		p.WithHeader("WWW-Authenticate", `Basic realm="webhook", charset="UTF-8"`)
	}
	return p
}

// CredentialHeaders names the request headers that carry a credential of auth's lines
// (besides Authorization, which always does): they must never be stored or forwarded.
func CredentialHeaders(auth []AuthSpec) []string {
	var out []string
	for _, a := range auth {
		switch a.Kind {
		case AuthValidationKey:
			out = append(out, ValidationKeyHeader)
		case AuthHeader:
			out = append(out, a.Name)
		}
	}
	return out
}

// BasicAuthHeader returns the Authorization value for user and password (a helper for
// tests and the command line).
func BasicAuthHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}
