package receiver

import (
	"net/http"
	"testing"
	"time"
)

// minPerOp runs f n times in each of several blocks and returns the fastest block's time
// per call: the minimum is what the code costs, the rest is noise from the machine.
func minPerOp(blocks, n int, f func()) time.Duration {
	best := time.Duration(1 << 62)
	for b := 0; b < blocks; b++ {
		start := time.Now()
		for i := 0; i < n; i++ {
			f()
		}
		if d := time.Since(start) / time.Duration(n); d < best {
			best = d
		}
	}
	return best
}

// Which part of a credential was wrong does not show in the timing: every line is
// checked, both halves of a Basic credential are hashed and compared, and comparisons are
// of fixed-size digests. A structural shortcut (an early return on a wrong user name, or
// on the first matching line) would make one case measurably cheaper than another.
func TestCredentialTimingDoesNotTellWhichPartWasWrong(t *testing.T) {
	a, err := newAuthenticator([]AuthSpec{
		{Kind: AuthBasic, User: "sintegre", Secret: "a-long-password-0123456789abcdef"},
		{Kind: AuthHeader, Name: "X-Api-Key", Secret: "key-0123456789abcdef0123456789ab"},
		{Kind: AuthHeader, Name: "X-Api-Key", Secret: "key-rotated-0123456789abcdef0123"},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := func(user, pass, key string) *http.Request {
		r, _ := http.NewRequest("POST", "/", nil)
		r.SetBasicAuth(user, pass)
		r.Header.Set("X-Api-Key", key)
		return r
	}
	cases := map[string]*http.Request{
		"wrong user":             req("sintegrX", "a-long-password-0123456789abcdef", "nope"),
		"wrong password":         req("sintegre", "a-long-password-0123456789abcdeX", "nope"),
		"both wrong":             req("xxxxxxxx", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "nope"),
		"first key line matches": req("xxxxxxxx", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "key-0123456789abcdef0123456789ab"),
		"last key line matches":  req("xxxxxxxx", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "key-rotated-0123456789abcdef0123"),
	}
	times := map[string]time.Duration{}
	for round := 0; round < 3; round++ { // interleave, keep each case's best
		for name, r := range cases {
			d := minPerOp(10, 2000, func() { a.checkHeaders(r) })
			if old, ok := times[name]; !ok || d < old {
				times[name] = d
			}
		}
	}
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for _, d := range times {
		lo, hi = min(lo, d), max(hi, d)
	}
	t.Logf("per check: %v", times)
	if float64(hi) > 1.35*float64(lo) {
		t.Fatalf("credential checks differ in cost by %.0f%%: %v", 100*(float64(hi)/float64(lo)-1), times)
	}
}
