package receiver

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"sort"
	"testing"
)

// Which part of a credential was wrong does not show in the timing: every line is
// checked, both halves of a Basic credential are hashed and compared, and comparisons are
// of fixed-size digests. A structural shortcut (an early return on a wrong user name, or
// on the first matching line) makes one case cheaper than another by at least one
// digest and compare.
//
// What is measured does not depend on the machine's speed, its load or -race: the work
// each check does, counted as the SHA-256 digests and constant-time compares it makes
// (digestOf and sameDigest, the only ones the static credentials use). Every case sends
// the very same request, so the digests are of the same bytes and every compare is of two
// 32-byte digests: the same count is the same cost. A clock-based measurement of the same
// thing failed under -race and on a loaded 2-core machine. The count does see one more
// credential line, and workLeak shows it sees the shortcuts.
func TestCredentialTimingDoesNotTellWhichPartWasWrong(t *testing.T) {
	if leak, report := workLeak(t, false); leak {
		t.Fatalf("credential checks differ in the work they do: %s", report)
	} else {
		t.Log(report)
	}
}

// The same measurement, on deliberately short-circuiting checks (the user compared first
// and the password only when it matched; the first matching line returns), must see them.
func TestCredentialTimingDetectsShortcuts(t *testing.T) {
	if leak, report := workLeak(t, true); !leak {
		t.Fatalf("the measurement did not detect short-circuiting checks: %s", report)
	} else {
		t.Log(report)
	}
}

// leakyBasic compares the user first and returns early when it is wrong.
type leakyBasic struct{ user, pass digest }

func (c leakyBasic) check(r *http.Request, _ []byte) bool {
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	gu := digestOf([]byte(u))
	if sameDigest(gu[:], c.user[:]) != 1 {
		return false
	}
	gp := digestOf([]byte(p))
	return sameDigest(gp[:], c.pass[:]) == 1
}

// work is what one credential check did.
type work struct{ digests, compares int }

// countWork counts the digests and compares f makes (it swaps the package's digestOf and
// sameDigest for counting wrappers while it runs; receiver's tests do not run in parallel).
func countWork(f func() bool) work {
	var w work
	sum, cmp := digestOf, sameDigest
	defer func() { digestOf, sameDigest = sum, cmp }()
	digestOf = func(b []byte) [32]byte { w.digests++; return sum(b) }
	sameDigest = func(x, y []byte) int { w.compares++; return cmp(x, y) }
	f()
	return w
}

// workLeak counts, for one request, the work of authenticators that differ only in which
// part of their secrets the request matches, and reports whether it differs between them.
// With leaky, the checks short-circuit.
func workLeak(t *testing.T, leaky bool) (bool, string) {
	t.Helper()
	const user, pass, key = "sintegre", "a-long-password-0123456789abcdef", "key-0123456789abcdef0123456789ab"
	const other = "key-rotated-0123456789abcdef0123"
	r, _ := http.NewRequest("POST", "/", nil)
	r.SetBasicAuth(user, pass)
	r.Header.Set("X-Api-Key", key)
	auth := func(u, p string, keys ...string) func() bool {
		specs := []AuthSpec{{Kind: AuthBasic, User: u, Secret: p}}
		for _, k := range keys {
			specs = append(specs, AuthSpec{Kind: AuthHeader, Name: "X-Api-Key", Secret: k})
		}
		a, err := newAuthenticator(specs)
		if err != nil {
			t.Fatal(err)
		}
		if !leaky {
			return func() bool { ok, _ := a.checkHeaders(r); return ok }
		}
		a.header[0] = leakyBasic{user: sha256.Sum256([]byte(u)), pass: sha256.Sum256([]byte(p))}
		return func() bool {
			for _, c := range a.header {
				if c.check(r, nil) {
					return true
				}
			}
			return false
		}
	}
	cases := map[string]func() bool{
		"wrong user":             auth("sintegrX", pass, other, other),
		"wrong password":         auth(user, pass+"X", other, other),
		"both wrong":             auth("xxxxxxxx", "xxxx", other, other),
		"first key line matches": auth("xxxxxxxx", "xxxx", key, other),
		"last key line matches":  auth("xxxxxxxx", "xxxx", other, key),
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	got := map[string]work{}
	leak := false
	base := countWork(cases["both wrong"])
	for _, n := range names {
		got[n] = countWork(cases[n])
		leak = leak || got[n] != base
	}
	line := countWork(auth("xxxxxxxx", "xxxx", other, other, other))
	report := fmt.Sprintf("per check (digests, compares): %v; with one credential line more: %v", got, line)
	if line.digests <= base.digests || line.compares <= base.compares {
		t.Fatalf("the measurement cannot tell one more credential line: %s", report)
	}
	return leak, report
}
