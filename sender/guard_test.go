package sender

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestBlocked(t *testing.T) {
	blocked := []string{
		"127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "169.254.1.1", "100.64.0.1", "100.127.255.254", "0.0.0.0", "0.1.2.3",
		"224.0.0.1", "255.255.255.255", "240.0.0.1", "198.18.0.1",
		"::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "fd00:ec2::254", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "2002:7f00:1::", "2002:a9fe:a9fe::1",
		"2001:0:4136:e378:8000:63bf:3fff:fdd2",
	}
	for _, s := range blocked {
		if Blocked(netip.MustParseAddr(s)) == "" {
			t.Errorf("%s was allowed", s)
		}
	}
	allowed := []string{"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.169.0.1", "2606:4700::1111",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"}
	for _, s := range allowed {
		if r := Blocked(netip.MustParseAddr(s)); r != "" {
			t.Errorf("%s was blocked as %s", s, r)
		}
	}
}

// The guard runs at dial time, after DNS: "localhost" resolves to loopback and is refused
// although the URL names no IP at all.
func TestGuardRefusesAtDialTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c, _ := newClient(time.Second, time.Second, false, 1)
	for _, u := range []string{"http://localhost:" + port + "/", "http://127.0.0.1:" + port + "/", "http://[::ffff:127.0.0.1]:" + port + "/"} {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", u, nil)
		_, err := c.Do(req)
		var be *BlockedError
		if !errors.As(err, &be) {
			t.Errorf("%s: err = %v, want a BlockedError", u, err)
		}
	}
	allowed, _ := newClient(time.Second, time.Second, true, 1)
	req, _ := http.NewRequest("POST", srv.URL, nil)
	resp, err := allowed.Do(req)
	if err != nil {
		t.Fatalf("allow_private: %v", err)
	}
	resp.Body.Close()
}
