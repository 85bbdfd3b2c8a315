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
	"sync"

	"github.com/hookgate/hookgate/problem"
)

// DefaultMaxBody is the default limit on a webhook body: 5 MB.
const DefaultMaxBody = 5 << 20

// checkContentType accepts application/json and any application/*+json, with no charset
// or a UTF-8 one (JSON is UTF-8 by RFC 8259).
func checkContentType(ct string) *Problem {
	if ct == "" {
		return newProblem(http.StatusUnsupportedMediaType, problem.ReasonMediaType, "Unsupported Media Type",
			"the request has no Content-Type; send application/json").WithHeader("Accept-Post", "application/json")
	}
	// Fast path for the common exact values.
	if ct == "application/json" || ct == "application/json; charset=utf-8" || ct == "application/json;charset=UTF-8" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return newProblem(http.StatusUnsupportedMediaType, problem.ReasonMediaType, "Unsupported Media Type",
			fmt.Sprintf("the Content-Type %q cannot be parsed; send application/json", ct)).WithHeader("Accept-Post", "application/json")
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return newProblem(http.StatusUnsupportedMediaType, problem.ReasonMediaType, "Unsupported Media Type",
			fmt.Sprintf("the Content-Type is %q; send application/json", mt)).WithHeader("Accept-Post", "application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return newProblem(http.StatusUnsupportedMediaType, problem.ReasonMediaType, "Unsupported Media Type",
			fmt.Sprintf("the charset is %q; JSON must be UTF-8", cs)).WithHeader("Accept-Post", "application/json")
	}
	return nil
}

// bodyBufSize is the capacity of a pooled read buffer: most webhooks fit in it, so they
// cost no allocation. A body that does not fit grows its buffer as its bytes arrive.
const bodyBufSize = 16 << 10

// maxPooledBuf is the largest buffer returned to the pool; bigger ones are left to the GC
// so one large body does not pin its memory.
const maxPooledBuf = 1 << 20

// readBuf is a pooled read buffer. Once read, it is also the request body handed on: a
// ReadCloser over its bytes, with a GetBody built once per buffer, so handing it on costs
// no allocation.
type readBuf struct {
	b       []byte
	rd      bytes.Reader
	getBody func() (io.ReadCloser, error)
}

func (bb *readBuf) Read(p []byte) (int, error) { return bb.rd.Read(p) }

// Close implements io.Closer; there is nothing to release until the receiver is done.
func (bb *readBuf) Close() error { return nil }

var bodyBufs = sync.Pool{New: func() any {
	bb := &readBuf{b: make([]byte, 0, bodyBufSize)}
	bb.getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(bb.b)), nil }
	return bb
}}

// readBody reads the whole body, refusing more than max bytes. Memory follows the bytes
// that actually arrive, never the announced Content-Length (an unauthenticated sender can
// announce megabytes and send six bytes), and reading stops at the limit. A declared
// Content-Length over the limit is refused before reading anything.
//
// The returned buffer comes from a pool; the caller gives it back with putBody once
// nothing refers to the body any more (nil when reading failed).
func readBody(r *http.Request, max int64) (*readBuf, *Problem) {
	tooLarge := func() *Problem {
		return newProblem(http.StatusRequestEntityTooLarge, problem.ReasonTooLarge, "Content Too Large",
			"the body is larger than the limit of "+strconv.FormatInt(max, 10)+" bytes")
	}
	if r.ContentLength > max {
		return nil, tooLarge()
	}
	bb := bodyBufs.Get().(*readBuf)
	buf := bb.b[:0]
	if r.Body == nil || r.Body == http.NoBody {
		bb.b = buf
		return bb, nil
	}
	for {
		if len(buf) == cap(buf) {
			// Grow by doubling, so the memory held is at most twice what was received.
			next := int64(cap(buf)) * 2
			if next > max+1 {
				next = max + 1
			}
			buf = append(make([]byte, 0, next), buf...)
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			bb.b = buf
			putBody(bb)
			return nil, tooLarge()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			bb.b = buf
			putBody(bb)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) { // a request_body limit set in front of us
				return nil, tooLarge()
			}
			return nil, newProblem(http.StatusBadRequest, problem.ReasonBodyRead, "Bad Request",
				"the body could not be read completely")
		}
	}
	bb.b = buf
	return bb, nil
}

// putBody returns a read buffer to the pool.
func putBody(bb *readBuf) {
	if bb == nil || cap(bb.b) > maxPooledBuf {
		return
	}
	bb.b = bb.b[:0]
	bb.rd.Reset(nil)
	bodyBufs.Put(bb)
}

// restoreBody hands the read bytes on as the request body, with a matching Content-Length,
// so reverse_proxy forwards them intact (it drops a body whose ContentLength is 0).
func restoreBody(r *http.Request, bb *readBuf) {
	n := int64(len(bb.b))
	bb.rd.Reset(bb.b)
	r.Body, r.GetBody = bb, bb.getBody
	if r.ContentLength != n || len(r.Header["Content-Length"]) != 1 {
		r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	r.ContentLength = n
	if r.TransferEncoding != nil {
		r.TransferEncoding = nil
		r.Header.Del("Transfer-Encoding")
	}
}
