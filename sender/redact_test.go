package sender

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/signature"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://h/p?key=s3cret&v=2":      "https://h/p?key=REDACTED&v=REDACTED",
		"https://u:pw@h/p":                "https://u:xxxxx@h/p",
		"https://h/p#tok":                 "https://h/p",
		"http://h:8080/p":                 "http://h:8080/p",
		"https://h/p?only=1#frag=secret2": "https://h/p?only=REDACTED",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// An attempt's error never carries the URL's query or password (Go's URL errors quote it).
func TestAttemptErrorsAreScrubbed(t *testing.T) {
	// Plain HTTP behind an https URL: the client's error quotes the URL.
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	e := &Endpoint{Name: "p", URL: "https://u:pw-123@" + srv.Listener.Addr().String() + "/hook?key=tok-123",
		AllowPrivate: true, Retry: []time.Duration{}}
	if err := e.Prepare(); err != nil {
		t.Fatal(err)
	}
	a := e.send(context.Background(), queue.Event{ID: "evt_1", Body: []byte(`{}`)})
	for _, s := range []string{a.Error, a.diagnosis} {
		if !strings.Contains(s, "key=REDACTED") || strings.Contains(s, "tok-123") || strings.Contains(s, "pw-123") {
			t.Errorf("attempt text %q", s)
		}
	}
}

// failingSigner cannot sign.
type failingSigner struct{}

func (failingSigner) Sign(signature.Message) (http.Header, error) {
	return nil, errors.New("no key")
}

// An endpoint that signs never gets an unsigned request: a signing failure is an attempt
// error, and nothing is sent.
func TestSigningFailureIsAnAttemptError(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	e := &Endpoint{Name: "p", URL: srv.URL, AllowPrivate: true}
	if err := e.Prepare(); err != nil {
		t.Fatal(err)
	}
	e.signer = failingSigner{}
	a := e.send(context.Background(), queue.Event{ID: "evt_1", Body: []byte(`{}`)})
	if a.ok() || !strings.Contains(a.Error, "cannot sign") || hits.Load() != 0 {
		t.Fatalf("attempt %+v, %d requests sent", a.Attempt, hits.Load())
	}
}

// An endpoint's answer that echoes the request (a debugging page printing its headers and
// URL) keeps none of the credentials Hookgate sent: header values, the Basic credential
// (encoded, decoded, the password alone), the URL's password and query values, and the
// signing secret.
func TestAnswersEchoingCredentialsAreMasked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		user, pass, _ := r.BasicAuth()
		_, _ = w.Write([]byte("debug: " + r.URL.String() + " Authorization=" + r.Header.Get("Authorization") + " key=" + r.Header.Get("X-Partner-Key") +
			" basic=" + user + ":" + pass + " pass=" + pass + " whsec=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec-raw=MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
	}))
	defer srv.Close()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth("hookgate", "basic-pass-123")
	e := &Endpoint{Name: "p", URL: "http://u:url-pass-9@" + srv.Listener.Addr().String() + "/hook?token=query-tok-7",
		Header:         http.Header{"X-Partner-Key": {"partner-key-5"}, "Authorization": req.Header["Authorization"]},
		SigningSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, AllowPrivate: true, Retry: []time.Duration{}}
	if err := e.Prepare(); err != nil {
		t.Fatal(err)
	}
	a := e.send(context.Background(), queue.Event{ID: "evt_1", Type: "t", Body: []byte(`{}`)})
	if a.Status != 500 || !strings.HasPrefix(a.Response, "debug: ") {
		t.Fatalf("attempt: %d %q", a.Status, a.Response)
	}
	for _, secret := range []string{"partner-key-5", "basic-pass-123", "aG9va2dhdGU6YmFzaWMtcGFzcy0xMjM=", "url-pass-9", "query-tok-7", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		if strings.Contains(a.Response, secret) || strings.Contains(string(a.answer), secret) {
			t.Errorf("the kept answer shows %q: %s", secret, a.answer)
		}
	}
	if !strings.Contains(string(a.answer), "[redacted]") {
		t.Fatalf("nothing masked: %s", a.answer)
	}
}
