package receiver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The buffer follows the bytes received, not the Content-Length announced.
func TestReadBodyGrowsWithWhatArrives(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(`{"a":1`)))
	r.ContentLength = 5 << 20
	bb, p := readBody(r, DefaultMaxBody)
	if p != nil {
		t.Fatal(p.Detail)
	}
	if string(bb.b) != `{"a":1` || cap(bb.b) > bodyBufSize {
		t.Fatalf("read %q into a buffer of %d bytes", bb.b, cap(bb.b))
	}
	putBody(bb)

	big := bytes.Repeat([]byte("x"), 3*bodyBufSize+7)
	for _, max := range []int64{int64(len(big)), int64(len(big)) - 1} {
		r = httptest.NewRequest(http.MethodPost, "/", io.NopCloser(bytes.NewReader(big)))
		r.ContentLength = -1
		bb, p = readBody(r, max)
		if max < int64(len(big)) {
			if p == nil || p.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("max %d: want 413, got %v", max, p)
			}
			continue
		}
		if p != nil || !bytes.Equal(bb.b, big) {
			t.Fatalf("max %d: body not read intact (%v)", max, p)
		}
		if cap(bb.b) > 2*len(big) {
			t.Fatalf("a %d-byte body holds %d bytes", len(big), cap(bb.b))
		}
	}
}
