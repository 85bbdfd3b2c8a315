package receiver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/receiver/order"
)

// memOrder is an order.Store in a map, so the benchmark measures the guard, not a store.
type memOrder struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memOrder) Claim(_ context.Context, key, v string, _ time.Duration) (order.Verdict, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[key] > v {
		return order.Stale, "", nil
	}
	return order.Pass, "t", nil
}

func (s *memOrder) Commit(_ context.Context, key, v, _ string, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v > s.m[key] {
		s.m[key] = v
	}
	return nil
}

func (s *memOrder) Release(context.Context, string, string) error { return nil }

func (s *memOrder) Get(_ context.Context, key string) (order.Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return order.Record{Value: v}, ok, nil
}

func (s *memOrder) Clear(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[key]
	delete(s.m, key)
	return ok, nil
}

// BenchmarkGuard is one TOTVS CRM webhook through the totvs_crm preset with its
// stale-event guard (dedupe off, an in-memory order store), with the timestamp written
// as RFC 3339 and as TOTVS' ISO 8601 without a colon.
func BenchmarkGuard(b *testing.B) {
	for name, ts := range map[string]string{"rfc3339": "2025-03-11T09:15:42.117-03:00", "no_colon": "2025-03-11T09:15:42.117-0300"} {
		body := bytes.Replace(samples(b, "totvs_crm")["opportunity-won.json"], []byte("2025-03-11T09:15:42.117-03:00"), []byte(ts), 1)
		rc := mustNew(b, Options{Preset: "totvs_crm", Auth: keyAuth, Dedupe: -1, OrderStore: &memOrder{m: map[string]string{}}})
		next := func(w http.ResponseWriter, r *http.Request, ev *Event) error { w.WriteHeader(200); return nil }
		b.Run(name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set(ValidationKeyHeader, "k3y")
			w := &discardWriter{h: http.Header{}}
			rd := bytes.NewReader(body)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				r.Body = io.NopCloser(rd)
				if _, err := rc.Handle(w, r, next); err != nil || w.code != 200 {
					b.Fatal(w.code, err)
				}
			}
		})
	}
}
