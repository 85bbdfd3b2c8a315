package sender

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// An answer's excerpt is at most n bytes, never cuts a UTF-8 sequence, and is valid text
// whatever the endpoint sent.
func TestExcerpt(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes, 2 per rune
	if got := excerpt([]byte(long), 255); len(got) != 254 || !utf8.ValidString(got) {
		t.Fatalf("cut inside a rune: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if got := excerpt([]byte("ok\xffno"), 256); got != "ok\uFFFDno" {
		t.Fatalf("invalid bytes: %q", got)
	}
	if got := excerpt([]byte(`{"error":"db down"}`), 256); got != `{"error":"db down"}` {
		t.Fatalf("short answer: %q", got)
	}
}
