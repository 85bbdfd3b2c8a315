package receiver

import (
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
	// Rounds of short batches, every case once per round in a shuffled order: a busy
	// machine slows a whole round, so each case is measured against its round's mean, and
	// the median over rounds is what the case costs relative to the others.
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)
	const rounds, batch = 300, 200
	rel := make([][]float64, len(names))
	took := make([]float64, len(names))
	for round := 0; round < rounds; round++ {
		sum := 0.0
		for _, i := range rand.Perm(len(names)) {
			r := cases[names[i]]
			start := time.Now()
			for j := 0; j < batch; j++ {
				a.checkHeaders(r)
			}
			took[i] = float64(time.Since(start))
			sum += took[i]
		}
		for i := range names {
			rel[i] = append(rel[i], took[i]/(sum/float64(len(names))))
		}
	}
	medians := map[string]float64{}
	lo, hi := math.Inf(1), 0.0
	for i, name := range names {
		sort.Float64s(rel[i])
		m := rel[i][len(rel[i])/2]
		medians[name] = math.Round(m*1000) / 1000
		lo, hi = min(lo, m), max(hi, m)
	}
	t.Logf("median cost relative to the round's mean: %v", medians)
	if hi > 1.10*lo {
		t.Fatalf("credential checks differ in cost by %.0f%%: %v", 100*(hi/lo-1), medians)
	}
}
