package receiver

import (
	"net/http"

	"github.com/hookgate/hookgate/problem"
)

// ReadJSONBody applies the inbound body rules to a request that is not a webhook (the
// outbound publish endpoint uses it): POST only (405), a JSON content type (415), at most
// maxBody bytes (413, read stops there), valid JSON within the depth and number limits
// (400 with the byte offset). It returns the exact body bytes, or the problem to answer.
func ReadJSONBody(r *http.Request, maxBody int64) ([]byte, *Problem) {
	if r.Method != http.MethodPost {
		return nil, newProblem(http.StatusMethodNotAllowed, problem.ReasonMethod, "Method Not Allowed",
			"events are published with POST, not "+r.Method).WithHeader("Allow", "POST")
	}
	if p := checkContentType(r.Header.Get("Content-Type")); p != nil {
		return nil, p
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	bb, p := readBody(r, maxBody)
	if p != nil {
		return nil, p
	}
	// The body outlives the request (it is queued): an exact copy, and the buffer goes back.
	body := append([]byte(nil), bb.b...)
	putBody(bb)
	if _, p := parseJSON(body, false, false, nil); p != nil {
		return nil, p
	}
	return body, nil
}
