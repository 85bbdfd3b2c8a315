package receiver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// DefaultMaxBody is the default limit on a webhook body: 5 MB.
const DefaultMaxBody = 5 << 20

// checkContentType accepts application/json and any application/*+json, with no charset
// or a UTF-8 one (JSON is UTF-8 by RFC 8259).
func checkContentType(ct string) *Problem {
	if ct == "" {
		return newProblem(http.StatusUnsupportedMediaType, ReasonMediaType, "Unsupported Media Type",
			"the request has no Content-Type; send application/json").withHeader("Accept-Post", "application/json")
	}
	// Fast path for the common exact values.
	if ct == "application/json" || ct == "application/json; charset=utf-8" || ct == "application/json;charset=UTF-8" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return newProblem(http.StatusUnsupportedMediaType, ReasonMediaType, "Unsupported Media Type",
			fmt.Sprintf("the Content-Type %q cannot be parsed; send application/json", ct)).withHeader("Accept-Post", "application/json")
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return newProblem(http.StatusUnsupportedMediaType, ReasonMediaType, "Unsupported Media Type",
			fmt.Sprintf("the Content-Type is %q; send application/json", mt)).withHeader("Accept-Post", "application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return newProblem(http.StatusUnsupportedMediaType, ReasonMediaType, "Unsupported Media Type",
			fmt.Sprintf("the charset is %q; JSON must be UTF-8", cs)).withHeader("Accept-Post", "application/json")
	}
	return nil
}

// readBody reads the whole body, refusing more than max bytes. It stops reading at the limit:
// a larger body is never held in memory. A declared Content-Length over the limit is refused
// before reading anything.
func readBody(r *http.Request, max int64) ([]byte, *Problem) {
	tooLarge := func() *Problem {
		return newProblem(http.StatusRequestEntityTooLarge, ReasonTooLarge, "Content Too Large",
			"the body is larger than the limit of "+strconv.FormatInt(max, 10)+" bytes")
	}
	if r.ContentLength > max {
		return nil, tooLarge()
	}
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}, nil
	}
	var buf []byte
	if r.ContentLength > 0 {
		// Exact size known: one allocation, and one extra byte to detect a lying sender.
		buf = make([]byte, 0, r.ContentLength+1)
	} else {
		buf = make([]byte, 0, 4096)
	}
	b := bytes.NewBuffer(buf)
	n, err := b.ReadFrom(io.LimitReader(r.Body, max+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) { // a request_body limit set in front of us
			return nil, tooLarge()
		}
		return nil, newProblem(http.StatusBadRequest, ReasonBodyRead, "Bad Request",
			"the body could not be read completely")
	}
	if n > max {
		return nil, tooLarge()
	}
	return b.Bytes(), nil
}

// restoreBody hands the read bytes on as the request body, with a matching Content-Length,
// so reverse_proxy forwards them intact (it drops a body whose ContentLength is 0).
func restoreBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r.TransferEncoding = nil
	r.Header.Del("Transfer-Encoding")
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}
