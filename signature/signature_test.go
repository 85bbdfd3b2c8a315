package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func mustVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// The vector published with the Standard Webhooks reference libraries.
func TestStandardPublishedVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	ts := time.Unix(1614265330, 0)
	h := hdr("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp", "1614265330",
		"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	v := mustVerifier(t, Config{Scheme: Standard, Secrets: []string{secret}})
	if err := v.Verify(h, body, ts); err != nil {
		t.Fatalf("published vector: %v", err)
	}
	signed, err := Sign(Config{Scheme: Standard, Secrets: []string{secret}}, Message{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Time: ts, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if got := signed.Get("webhook-signature"); got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("Sign = %q, want the published signature", got)
	}
	// A bare base64 key (no whsec_ prefix) is the same key.
	if err := mustVerifier(t, Config{Scheme: Standard, Secrets: []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}).Verify(h, body, ts); err != nil {
		t.Fatal(err)
	}
	// Several signatures, one of them right; other versions skipped.
	// "bm9wZQ==" is 4 bytes, not a SHA-256, and "%%" no base64: skipped, as the Standard
	// Webhooks libraries skip entries that do not match.
	h.Set("webhook-signature", "v1a,AAAA v1,bm9wZQ== v1,%% v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if err := v.Verify(h, body, ts); err != nil {
		t.Fatalf("undecodable v1 entries beside a valid one: %v", err)
	}
	h.Set("webhook-signature", "v1,bm9wZQ==")
	if err := v.Verify(h, body, ts); !errors.Is(err, ErrMismatch) {
		t.Fatalf("only an undecodable v1 entry: %v", err)
	}
	// Svix-hosted senders: the same scheme under svix-* names.
	svix := hdr("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "svix-timestamp", "1614265330",
		"svix-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if err := v.Verify(svix, body, ts); err != nil {
		t.Fatalf("svix-* headers: %v", err)
	}
	if err := v.Verify(svix, append(body, ' '), ts); !errors.Is(err, ErrMismatch) {
		t.Fatalf("svix-* headers, tampered: %v", err)
	}
	h.Set("webhook-signature", "v1a,AAAA v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32))+" v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if err := v.Verify(h, body, ts); err != nil {
		t.Fatalf("one right among several: %v", err)
	}
	// Tampering, stale, future, wrong secret, missing.
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if err := v.Verify(h, []byte(`{"test": 2432232315}`), ts); !errors.Is(err, ErrMismatch) {
		t.Fatalf("tampered body: %v", err)
	}
	if err := v.Verify(h, body, ts.Add(6*time.Minute)); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("stale: %v", err)
	}
	if err := v.Verify(h, body, ts.Add(-6*time.Minute)); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("future: %v", err)
	}
	if err := v.Verify(h, body, ts.Add(4*time.Minute)); err != nil {
		t.Fatalf("within tolerance: %v", err)
	}
	other := mustVerifier(t, Config{Scheme: Standard, Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("another key"))}})
	if err := other.Verify(h, body, ts); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong secret: %v", err)
	}
	h.Del("webhook-id")
	if err := v.Verify(h, body, ts); !errors.Is(err, ErrMissing) {
		t.Fatalf("missing id: %v", err)
	}
}

// GitHub's documentation gives this example.
func TestGitHubPublishedVector(t *testing.T) {
	v := mustVerifier(t, Config{Scheme: GitHub, Secrets: []string{"It's a Secret to Everybody"}})
	h := hdr("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	if err := v.Verify(h, []byte("Hello, World!"), time.Now()); err != nil {
		t.Fatalf("published vector: %v", err)
	}
	if err := v.Verify(h, []byte("Hello, World?"), time.Now()); !errors.Is(err, ErrMismatch) {
		t.Fatalf("tampered: %v", err)
	}
	for _, bad := range []string{"757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "sha256=zz", "sha1=757107ea"} {
		if err := v.Verify(hdr("X-Hub-Signature-256", bad), []byte("Hello, World!"), time.Now()); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

// Slack's "Verifying requests from Slack" documentation gives this example.
func TestSlackPublishedVector(t *testing.T) {
	body := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
	v := mustVerifier(t, Config{Scheme: Slack, Secrets: []string{"8f742231b10e8888abcd99yyyzzz85a5"}})
	h := hdr("X-Slack-Request-Timestamp", "1531420618", "X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")
	now := time.Unix(1531420618, 0)
	if err := v.Verify(h, body, now); err != nil {
		t.Fatalf("published vector: %v", err)
	}
	if err := v.Verify(h, body, now.Add(10*time.Minute)); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("stale: %v", err)
	}
	if err := v.Verify(h, append(body, 'x'), now); !errors.Is(err, ErrMismatch) {
		t.Fatalf("tampered: %v", err)
	}
}

// Stripe publishes no fixed vector; its libraries compute HMAC-SHA256 of "t.body" with the
// whsec_ secret's bytes as the key and hex-encode it. This test does the same with the
// standard library, independently of Sign.
func TestStripeAgainstIndependentComputation(t *testing.T) {
	const secret = "whsec_test_secret"
	body := []byte(`{"id":"evt_1","object":"event"}`)
	now := time.Unix(1700000000, 0)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("1700000000." + string(body)))
	good := hex.EncodeToString(mac.Sum(nil))
	v := mustVerifier(t, Config{Scheme: Stripe, Secrets: []string{"whsec_old", secret}})
	h := hdr("Stripe-Signature", "t=1700000000,v1="+hex.EncodeToString(make([]byte, 32))+",v1="+good+",v0=abc")
	if err := v.Verify(h, body, now); err != nil {
		t.Fatalf("valid: %v", err)
	}
	if err := v.Verify(h, body, now.Add(301*time.Second)); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("stale: %v", err)
	}
	if err := v.Verify(h, []byte(`{"id":"evt_2"}`), now); !errors.Is(err, ErrMismatch) {
		t.Fatalf("tampered: %v", err)
	}
	// An extra v1 that is not 64 hex digits is skipped, as Stripe's libraries do.
	for _, extra := range []string{"v1=xyz", "v1=" + good[:10], "v1="} {
		if err := v.Verify(hdr("Stripe-Signature", "t=1700000000,"+extra+",v1="+good), body, now); err != nil {
			t.Fatalf("valid v1 after %q: %v", extra, err)
		}
	}
	for _, bad := range []string{"v1=" + good, "t=abc,v1=" + good, "t=1700000000", "t=1700000000,v1=xyz", "garbage"} {
		if err := v.Verify(hdr("Stripe-Signature", bad), body, now); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	signed, _ := Sign(Config{Scheme: Stripe, Secrets: []string{secret}}, Message{Time: now, Body: body})
	if signed.Get("Stripe-Signature") != "t=1700000000,v1="+good {
		t.Fatalf("Sign = %q", signed.Get("Stripe-Signature"))
	}
}

func TestShopifyAndGeneric(t *testing.T) {
	body := []byte(`{"id":820982911946154508}`)
	mac := hmac.New(sha256.New, []byte("shpss_secret"))
	mac.Write(body)
	sum := mac.Sum(nil)
	v := mustVerifier(t, Config{Scheme: Shopify, Secrets: []string{"shpss_secret"}})
	if err := v.Verify(hdr("X-Shopify-Hmac-Sha256", base64.StdEncoding.EncodeToString(sum)), body, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(hdr("X-Shopify-Hmac-Sha256", "%%%"), body, time.Now()); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}

	g := mustVerifier(t, Config{Scheme: Generic, Secrets: []string{"shpss_secret"}, Header: "X-Signature"})
	for _, sig := range []string{hex.EncodeToString(sum), "sha256=" + hex.EncodeToString(sum), base64.StdEncoding.EncodeToString(sum)} {
		if err := g.Verify(hdr("X-Signature", sig), body, time.Now()); err != nil {
			t.Fatalf("%q: %v", sig, err)
		}
	}
	m5 := hmac.New(sha512.New, []byte("k"))
	m5.Write(body)
	g5 := mustVerifier(t, Config{Scheme: Generic, Secrets: []string{"k"}, Header: "X-Sig", Algorithm: "sha512"})
	if err := g5.Verify(hdr("X-Sig", "sha512="+hex.EncodeToString(m5.Sum(nil))), body, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := g5.Verify(hdr("X-Sig", hex.EncodeToString(sum)), body, time.Now()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a sha256-sized signature for sha512: %v", err)
	}
}

func TestRotationAndConfigErrors(t *testing.T) {
	body := []byte(`{}`)
	now := time.Now()
	for _, scheme := range []string{Standard, GitHub, Stripe, Shopify, Slack, Generic} {
		header := ""
		if scheme == Generic {
			header = "X-Sig"
		}
		oldS, newS := "whsec_"+base64.StdEncoding.EncodeToString([]byte("old-key")), "whsec_"+base64.StdEncoding.EncodeToString([]byte("new-key"))
		both := mustVerifier(t, Config{Scheme: scheme, Secrets: []string{oldS, newS}, Header: header})
		for _, s := range []string{oldS, newS} {
			h, err := Sign(Config{Scheme: scheme, Secrets: []string{s}, Header: header}, Message{ID: "msg_1", Time: now, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if err := both.Verify(h, body, now); err != nil {
				t.Fatalf("%s: rotation secret not accepted: %v", scheme, err)
			}
		}
		h, _ := Sign(Config{Scheme: scheme, Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("third"))}, Header: header}, Message{ID: "msg_1", Time: now, Body: body})
		if err := both.Verify(h, body, now); err == nil {
			t.Fatalf("%s: a third secret was accepted", scheme)
		}
	}
	bad := []Config{
		{Scheme: "md5", Secrets: []string{"x"}},
		{Scheme: Generic, Secrets: []string{"x"}},
		{Scheme: GitHub, Secrets: []string{"x"}, Header: "X"},
		{Scheme: GitHub},
		{Scheme: Standard, Secrets: []string{"whsec_!!!"}},
		{Scheme: GitHub, Secrets: []string{"x"}, Algorithm: "sha512"},
	}
	for _, c := range bad {
		if _, err := NewVerifier(c); err == nil {
			t.Fatalf("%+v accepted", c)
		}
	}
}

func benchVerify(b *testing.B, size int) {
	body := make([]byte, size)
	for i := range body {
		body[i] = 'a'
	}
	now := time.Now()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("bench-key"))
	for _, scheme := range []string{Standard, GitHub, Stripe, Slack} {
		cfg := Config{Scheme: scheme, Secrets: []string{secret}}
		h, _ := Sign(cfg, Message{ID: "msg_1", Time: now, Body: body})
		v := mustVerifier(b, cfg)
		b.Run(scheme+"/"+strconv.Itoa(size/1024)+"KB", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := v.Verify(h, body, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify1KB(b *testing.B)   { benchVerify(b, 1024) }
func BenchmarkVerify100KB(b *testing.B) { benchVerify(b, 100*1024) }
