package celx

import (
	"bytes"
	"io"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// maxDepth bounds the nesting DecodeJSON accepts (the receiver refuses deeper bodies before
// this; a published event is checked the same way).
const maxDepth = 128

// DecodeJSON decodes JSON for CEL: objects are map[string]any, arrays []any, integers
// int64 (so `data.id == 12345678901234567` is exact), other numbers float64. ok is false
// for anything but exactly one JSON value. longest is the longest string (key or value),
// what one `matches` call may scan. It reads the bytes once, with a pooled tokenizer.
func DecodeJSON(b []byte) (v any, longest int64, ok bool) {
	d := decoders.Get().(*decoder)
	defer d.put()
	d.buf = *bytes.NewBuffer(b)
	d.dec.Reset(&d.buf, jsontext.AllowDuplicateNames(true))
	v, err := d.value(0)
	if err != nil {
		return nil, 0, false
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return nil, 0, false
	}
	return v, d.longest, true
}

type decoder struct {
	buf     bytes.Buffer
	dec     *jsontext.Decoder
	longest int64
}

var decoders = sync.Pool{New: func() any {
	d := &decoder{}
	d.dec = jsontext.NewDecoder(&d.buf)
	return d
}}

func (d *decoder) put() {
	d.buf, d.longest = bytes.Buffer{}, 0
	d.dec.Reset(&d.buf) // drop the reference to the bytes
	decoders.Put(d)
}

type tooDeep struct{}

func (tooDeep) Error() string { return "nested too deep" }

func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, tooDeep{}
	}
	tok, err := d.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '{':
		m := make(map[string]any, 8)
		for d.dec.PeekKind() == '"' {
			kt, err := d.dec.ReadToken()
			if err != nil {
				return nil, err
			}
			k := kt.String()
			d.longest = max(d.longest, int64(len(k)))
			if m[k], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		if _, err := d.dec.ReadToken(); err != nil { // '}'
			return nil, err
		}
		return m, nil
	case '[':
		a := make([]any, 0, 4)
		for k := d.dec.PeekKind(); k != ']' && k != 0; k = d.dec.PeekKind() {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return nil, err
		}
		return a, nil
	case '"':
		s := tok.String()
		d.longest = max(d.longest, int64(len(s)))
		return s, nil
	case '0':
		s := tok.String()
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !isRange(err) {
			return nil, err
		}
		return f, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	}
	return nil, nil // null
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}
