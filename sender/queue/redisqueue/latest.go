package redisqueue

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/hookgate/hookgate/sender/queue"
)

// The latest event of each type an endpoint took (its `latest` hash, which Resend reads)
// is written by the enqueue script from the arguments it already has: byte 0x01, then the
// event's id, type, body, header (queue.EncodeHeader), created (ms) and transform error,
// each as its length in decimal, ':' and its bytes. Earlier releases sent the event again
// as JSON, its body in base64, for this copy (json.Marshal in the gateway, 1.4 KB more per
// 1 KB webhook on the wire); those values, and any an instance of such a release still
// writes, read as before. A release before this one skips the values this one writes, so
// during a rolling upgrade its resend leaves out the types last written by a newer
// instance.

// decodeLatest reads a latest-event value of either form.
func decodeLatest(v string) (queue.Event, bool) {
	if !strings.HasPrefix(v, "\x01") {
		var ev queue.Event
		return ev, json.Unmarshal([]byte(v), &ev) == nil
	}
	rest := v[1:]
	var f [6]string
	for i := range f {
		n, tail, ok := strings.Cut(rest, ":")
		l, err := strconv.Atoi(n)
		if !ok || err != nil || l < 0 || l > len(tail) {
			return queue.Event{}, false
		}
		f[i], rest = tail[:l], tail[l:]
	}
	if rest != "" {
		return queue.Event{}, false
	}
	h, err := queue.DecodeHeader(f[3])
	if err != nil {
		return queue.Event{}, false
	}
	return queue.Event{ID: f[0], Type: f[1], Body: []byte(f[2]), Header: h, Created: fromMS(f[4]), TransformError: f[5]}, true
}
