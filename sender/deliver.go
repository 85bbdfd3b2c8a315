package sender

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/hookgate/hookgate/sender/queue"
	"github.com/hookgate/hookgate/signature"
)

// connSet tracks the connections a client dialed, so that stopping a config can close
// all of them: a connection that a finishing attempt hands back to the idle pool just after
// CloseIdleConnections would otherwise linger (with two goroutines) until its idle timeout.
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.conns, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}

func (s *connSet) dial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, set: s}
		s.mu.Lock()
		s.conns[tc] = struct{}{}
		s.mu.Unlock()
		return tc, nil
	}
}

// closeAll closes every connection still open.
func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// newClient returns an HTTP client that never follows redirects and, unless
// allowPrivate, refuses non-public addresses at dial time, and the set of its connections.
func newClient(connect, response time.Duration, allowPrivate bool, conns int) (*http.Client, *connSet) {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = guardControl
	}
	set := &connSet{conns: map[*trackedConn]struct{}{}}
	t := &http.Transport{
		DialContext:           set.dial(d),
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: response,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, set
}

// maxAnswer is how much of an answer is read (and kept for diagnosis).
const maxAnswer = 1024

// attempt is the outcome of one HTTP try.
type attempt struct {
	queue.Attempt
	answer     []byte
	retryAfter time.Duration
	diagnosis  string
	noRequest  bool // nothing was sent (the endpoint's transform failed)
}

func (a attempt) ok() bool { return a.Status >= 200 && a.Status < 300 }

// send makes one attempt at delivering ev to e.
func (e *Endpoint) send(ctx context.Context, ev queue.Event) attempt {
	start := time.Now()
	a := attempt{Attempt: queue.Attempt{At: start.UTC()}}
	ctx, cancel := context.WithTimeout(ctx, e.ConnectTimeout+e.ResponseTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(ev.Body))
	if err != nil {
		err = e.scrub(err)
		a.Error = err.Error()
		a.diagnosis = "bad request: " + err.Error()
		return a
	}
	for k, vs := range ev.Header {
		req.Header[k] = vs
	}
	for k, vs := range e.Header {
		req.Header[k] = vs
	}
	attemptTrace(ctx, req.Header) // the event's trace, this attempt's span
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Hookgate")
	req.Header.Set("Webhook-Id", ev.ID)
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(start.Unix(), 10))
	if e.signer != nil {
		// An endpoint that signs never gets an unsigned request: a signing failure is a
		// failed attempt (retried on the schedule), not a delivery without a signature.
		h, err := e.signer.Sign(signature.Message{ID: ev.ID, Time: start, Body: ev.Body})
		if err != nil {
			a.Latency = time.Since(start)
			a.diagnosis = "error: cannot sign the delivery: " + err.Error()
			a.Error = a.diagnosis
			return a
		}
		req.Header.Set("Webhook-Signature", h.Get("Webhook-Signature"))
	}
	resp, err := e.httpClient().Do(req)
	if err != nil {
		a.Latency = time.Since(start)
		a.diagnosis = diagnose(e.scrub(err))
		a.Error = a.diagnosis
		return a
	}
	a.answer, _ = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // let the connection be reused
	resp.Body.Close()
	a.Latency = time.Since(start)
	a.Status = resp.StatusCode
	a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	switch {
	case a.ok():
		a.diagnosis = "ok"
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		a.diagnosis = fmt.Sprintf("non-2xx: %d redirect to %q (redirects are not followed)", resp.StatusCode, resp.Header.Get("Location"))
	default:
		a.diagnosis = fmt.Sprintf("non-2xx: the endpoint answered %d", resp.StatusCode)
	}
	a.answer = []byte(e.maskSecrets(string(a.answer))) // an answer may echo what was sent
	if !a.ok() {
		a.Response = excerpt(a.answer, queue.MaxResponseKept)
	}
	return a
}

// excerpt is the first bytes of b (at most n, not cutting a UTF-8 sequence) as valid text.
func excerpt(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// parseRetryAfter reads a Retry-After value (seconds or an HTTP date); 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// diagnose turns a client error into a plain reason: DNS, blocked, refused, TLS, timeout.
func diagnose(err error) string {
	var be *BlockedError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.As(err, &be):
		return "blocked: " + be.Error()
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "DNS: no such host " + dnsErr.Name
		}
		return "DNS: " + dnsErr.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused: nothing listens at that address and port"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &recordErr):
		return "TLS: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout: no answer in time"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the endpoint before it answered"
	}
	return "error: " + err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
