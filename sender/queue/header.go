package queue

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
)

// How the stores keep an event's header. Each queued event carries the sender's request
// header, encoded at its enqueue and decoded at every lease: as JSON that was about a
// twentieth of an async webhook's CPU on the embedded store (a map of slices built
// string by string). The binary form is
//
//	byte 0x01, uvarint key count, then per key (sorted): string key, uvarint value count,
//	strings values
//
// with strings as uvarint length then bytes. Decoding makes one string of the whole
// encoding and slices every key and value out of it. Stores written by earlier releases
// hold JSON, which DecodeHeader still reads.

const headerBinary = 0x01

// errBadHeader: an encoded header that is neither form.
var errBadHeader = errors.New("queue: malformed stored header")

// EncodeHeader returns h in the stores' binary form, "" for an empty header.
func EncodeHeader(h http.Header) string {
	if len(h) == 0 {
		return ""
	}
	keys := make([]string, 0, len(h))
	size := 1 + binary.MaxVarintLen64
	for k, vs := range h {
		keys = append(keys, k)
		size += 2*binary.MaxVarintLen64 + len(k)
		for _, v := range vs {
			size += binary.MaxVarintLen64 + len(v)
		}
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, headerBinary)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		vs := h[k]
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return string(b)
}

// DecodeHeader reads a header EncodeHeader wrote, or the JSON earlier releases stored; ""
// is no header (nil).
func DecodeHeader(s string) (http.Header, error) {
	if s == "" {
		return nil, nil
	}
	if s[0] != headerBinary {
		var h http.Header
		if err := json.Unmarshal([]byte(s), &h); err != nil {
			return nil, errors.Join(errBadHeader, err)
		}
		return h, nil
	}
	p := 1
	uv := func() (int, bool) { // a uvarint, at most len(s)
		var v uint64
		for shift := uint(0); p < len(s) && shift < 64; shift += 7 {
			c := s[p]
			p++
			v |= uint64(c&0x7f) << shift
			if c < 0x80 {
				return int(v), v <= uint64(len(s))
			}
		}
		return 0, false
	}
	str := func() (string, bool) {
		n, ok := uv()
		if !ok || n > len(s)-p {
			return "", false
		}
		p += n
		return s[p-n : p], true
	}
	nk, ok := uv()
	if !ok || nk > len(s) {
		return nil, errBadHeader
	}
	h := make(http.Header, nk)
	var vals []string // one array for every key's values
	for range nk {
		k, ok := str()
		if !ok {
			return nil, errBadHeader
		}
		nv, ok := uv()
		if !ok || nv > len(s)-p {
			return nil, errBadHeader
		}
		if cap(vals)-len(vals) < nv {
			vals = make([]string, 0, nv+nk) // typically one value per key
		}
		start := len(vals)
		for range nv {
			v, ok := str()
			if !ok {
				return nil, errBadHeader
			}
			vals = append(vals, v)
		}
		if nv == 0 {
			h[k] = []string{}
			continue
		}
		h[k] = vals[start:len(vals):len(vals)]
	}
	if p != len(s) {
		return nil, errBadHeader
	}
	return h, nil
}
