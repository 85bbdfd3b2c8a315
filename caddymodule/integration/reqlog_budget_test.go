package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/redistest"
	"github.com/hookgate/hookgate/internal/testwait"
)

// The request log's memory is bounded across routes (request_log_size): 60 KB requests
// on five open routes (auth none: the body is read and kept, as on an hmac route before
// its signature is checked) fill it to its budget and no further.
func TestRequestLogSizeBoundsEveryRoute(t *testing.T) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			line := "store embedded"
			if store == "redis" {
				line = "store redis " + redistest.Start(t).URL()
			}
			var routes strings.Builder
			for r := range 5 {
				fmt.Fprintf(&routes, "\thandle /r%d {\n\t\twebhook_receive {\n\t\t\tname r%d\n\t\t\tauth none\n\t\t\tdedupe off\n\t\t}\n\t\trespond 200\n\t}\n", r, r)
			}
			cfg := fmt.Sprintf("{\n\t{GLOBAL}\n\twebhooks {\n\t\t%s\n\t\trequest_log_size 512KB\n\t}\n}\nhttp://127.0.0.1:{PORT} {\n%s}\n", line, routes.String())
			c := startCaddy(t, cfg, totvsKey)
			body := []byte(`{"x":"` + strings.Repeat("x", 60<<10) + `"}`)
			for i := range 40 {
				for r := range 5 {
					body[7] = byte('a' + i%26)
					if code, _, rb := send(t, fmt.Sprintf("%s/r%d?n=%d", c.Base(), r, i), body); code != 200 {
						t.Fatalf("route r%d: %d %s", r, code, rb)
					}
				}
			}
			testwait.Until(t, 10*time.Second, func() bool {
				recs, _ := requests(t, c, "r4", "?limit=1")
				return len(recs) == 1 && strings.HasSuffix(recs[0]["uri"].(string), "n=39")
			}, "the last request in the log")

			held, n := 0, 0
			for r := range 5 {
				recs, _ := requests(t, c, fmt.Sprintf("r%d", r), "?limit=1000")
				n += len(recs)
				for _, rec := range recs {
					b, _ := rec["body"].(string)
					held += len(b)
				}
			}
			t.Logf("%s: 200 requests of 60 KB (16 KB kept each): the log holds %d records, %d body bytes, for request_log_size 512KB", store, n, held)
			if held > 512<<10 || n == 0 {
				t.Fatalf("the log holds %d body bytes in %d records, over request_log_size 512KB", held, n)
			}
		})
	}
}
