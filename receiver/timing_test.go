package receiver

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"sort"
	"testing"
	"time"
)

// Which part of a credential was wrong does not show in the timing: every line is
// checked, both halves of a Basic credential are hashed and compared, and comparisons are
// of fixed-size digests. A structural shortcut (an early return on a wrong user name, or
// on the first matching line) makes one case cheaper than another by at least one
// digest and compare.
//
// The measurement is built to hold on a busy machine and under -race:
//   - every case sends the very same request, and only the configured secrets differ, so
//     the cost of parsing the client's input (base64, which the race detector makes
//     depend on the bytes) is the same in every case: only the matching differs;
//   - the cases are interleaved in short batches, in a shuffled order each round, and
//     each case's cost is the median over rounds of its difference to one case measured in
//     the same round (a round that the machine slows, slows both);
//   - the bound is not a percentage but half of what a shortcut saves, measured in the
//     same run: the cost of one more header line. A shortcut exceeds it twice over, and
//     timingLeak shows the same measurement does detect the shortcuts.
func TestCredentialTimingDoesNotTellWhichPartWasWrong(t *testing.T) {
	if leak, report := timingLeak(t, false); leak {
		t.Fatalf("credential checks differ in cost by more than half a credential line: %s", report)
	} else {
		t.Log(report)
	}
}

// The same measurement, on deliberately short-circuiting checks (the user compared first
// and the password only when it matched; the first matching line returns), must see them.
func TestCredentialTimingDetectsShortcuts(t *testing.T) {
	if leak, report := timingLeak(t, true); !leak {
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
	gu := sha256.Sum256([]byte(u))
	if subtle.ConstantTimeCompare(gu[:], c.user[:]) != 1 {
		return false
	}
	gp := sha256.Sum256([]byte(p))
	return subtle.ConstantTimeCompare(gp[:], c.pass[:]) == 1
}

// timingLeak measures, for one request, authenticators that differ only in which part of
// their secrets the request matches, and reports whether their costs differ by more than
// half the cost of one header line. With leaky, the checks short-circuit.
func timingLeak(t *testing.T, leaky bool) (bool, string) {
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
		"(one line more)":        auth("xxxxxxxx", "xxxx", other, other, other),
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	fns := make([]func() bool, len(names))
	for i, n := range names {
		fns[i] = cases[n]
	}
	rounds, batch := 600, 50
	if testing.Short() {
		rounds = 200
	}
	base := sort.SearchStrings(names, "both wrong")
	costs := measure(fns, base, rounds, batch)
	cost := map[string]float64{}
	for i, n := range names {
		cost[n] = costs[i]
	}
	line := cost["(one line more)"]
	lo, hi := 0.0, 0.0
	for n, c := range cost {
		if n != "(one line more)" {
			lo, hi = min(lo, c), max(hi, c)
		}
	}
	report := fmt.Sprintf("spread %.0f ns, one credential line %.0f ns; per check, more than both wrong (ns): %v", hi-lo, line, rounded(cost))
	if line <= 0 {
		t.Fatalf("the measurement cannot tell one more credential line: %s", report)
	}
	return hi-lo > line/2, report
}

// measure runs each fn batch times per round, the fns in a shuffled order each round,
// and returns how much more each one costs per call than fns[base], in nanoseconds: the
// median over rounds of the difference within a round (a slow round slows both).
func measure(fns []func() bool, base, rounds, batch int) []float64 {
	per := make([][]float64, len(fns))
	took := make([]float64, len(fns))
	sink := false
	for round := 0; round < rounds; round++ {
		for _, i := range rand.Perm(len(fns)) {
			f := fns[i]
			start := time.Now()
			for j := 0; j < batch; j++ {
				sink = f() != sink
			}
			took[i] = float64(time.Since(start)) / float64(batch)
		}
		for i := range fns {
			per[i] = append(per[i], took[i]-took[base])
		}
	}
	_ = sink
	out := make([]float64, len(fns))
	for i, xs := range per {
		sort.Float64s(xs)
		out[i] = xs[len(xs)/2]
	}
	return out
}

func rounded(m map[string]float64) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = int(math.Round(v))
	}
	return out
}
