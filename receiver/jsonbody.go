package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/hookgate/hookgate/problem"
)

// Limits on what a JSON body may contain, checked in one pass before decoding so that
// hostile input is refused before it costs memory or time.
const (
	// MaxDepth is the deepest nesting of arrays and objects a body may have.
	MaxDepth = 64
	// maxNumberLen bounds the length of one number literal.
	maxNumberLen = 100
	// maxExponent bounds the decimal exponent of a number literal (float64 tops out near 308).
	maxExponent = 400
)

func invalidJSON(offset int64, detail string) *Problem {
	p := newProblem(http.StatusBadRequest, problem.ReasonInvalidJSON, "Invalid JSON", detail)
	p.Offset = &offset
	return p
}

// precheck scans body once: valid UTF-8, nesting no deeper than MaxDepth, no absurd
// number literals, and no object with the same key twice (parsers disagree on which
// duplicate wins, so a signed or validated body could mean something else to the backend).
// With fold, keys that differ only in case count as the same key too: Go's encoding/json
// (and others) match keys to fields case-insensitively, so {"id":"a","ID":"b"} may give a
// backend the value the gateway did not validate. It does not check the grammar; the
// decoder does that.
func precheck(body []byte, fold bool) *Problem {
	if !utf8.Valid(body) {
		off := 0
		for off < len(body) {
			r, size := utf8.DecodeRune(body[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return invalidJSON(int64(off), fmt.Sprintf("invalid UTF-8 at byte offset %d", off))
	}
	// Typical webhooks nest a few levels and have a few keys per object: start on the stack.
	var framesBuf [8]keyFrame
	var spansBuf [32][2]int
	keys := keyTracker{frames: framesBuf[:0], spans: spansBuf[:0], fold: fold}
	inString, escaped := false, false
	strStart, strEsc, isKey := 0, false, false
	numStart, expStart := -1, -1
	for i := 0; i < len(body); i++ {
		c := body[i]
		if inString {
			switch {
			case escaped:
				escaped = false
				if c == 'u' {
					n, ok := surrogates(body, i-1)
					if !ok {
						return surrogateProblem(body, i-1, strStart)
					}
					i += n
				}
			case c == '\\':
				escaped, strEsc = true, true
			case c == '"':
				inString = false
				if isKey {
					switch keys.seen(body, strStart, i+1, strEsc) {
					case keyRepeated:
						return invalidJSON(int64(strStart), fmt.Sprintf("duplicate object key %s at byte offset %d", body[strStart:i+1], strStart))
					case keyCaseTwin:
						return invalidJSON(int64(strStart), fmt.Sprintf("object key %s at byte offset %d differs from an earlier key of the object only in case (a backend that matches keys case-insensitively, as Go's encoding/json does, could read the other)", body[strStart:i+1], strStart))
					}
				}
			}
			continue
		}
		isNum := (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
		if isNum {
			if numStart < 0 {
				numStart, expStart = i, -1
			}
			if c == 'e' || c == 'E' {
				expStart = i + 1
			}
			if i-numStart >= maxNumberLen {
				return invalidJSON(int64(numStart), fmt.Sprintf("number at byte offset %d is longer than %d characters", numStart, maxNumberLen))
			}
			continue
		}
		if numStart >= 0 {
			if p := checkExponent(body, numStart, expStart, i); p != nil {
				return p
			}
			numStart = -1
		}
		switch c {
		case '"':
			inString, strStart, strEsc, isKey = true, i, false, keys.expectKey
			keys.expectKey = false
		case '{', '[':
			if len(keys.frames) >= MaxDepth {
				return invalidJSON(int64(i), fmt.Sprintf("nesting deeper than %d levels at byte offset %d", MaxDepth, i))
			}
			keys.push(c == '{')
		case '}', ']':
			keys.pop()
		case ',':
			keys.expectKey = keys.inObject()
		case ':':
			keys.expectKey = false
		}
	}
	if numStart >= 0 {
		return checkExponent(body, numStart, expStart, len(body))
	}
	return nil
}

// hex4 reads the 4 hex digits of a \u escape at body[at:], or -1.
func hex4(body []byte, at int) rune {
	if at+4 > len(body) {
		return -1
	}
	var r rune
	for _, c := range body[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

// surrogates checks the \u escape at body[at:] (the backslash): a UTF-16 surrogate must be
// a high one (D800-DBFF) followed at once by a \u escape of a low one (DC00-DFFF). It
// returns how many bytes past the 'u' the scan may skip (the rest of a pair), and false
// for a lone surrogate. An escape without 4 hex digits is the decoder's to refuse.
func surrogates(body []byte, at int) (int, bool) {
	r := hex4(body, at+2)
	switch {
	case r < 0xD800 || r > 0xDFFF:
		return 0, true
	case r >= 0xDC00:
		return 0, false // a low surrogate alone
	}
	if at+8 > len(body) || body[at+6] != '\\' || body[at+7] != 'u' {
		return 0, false
	}
	if lo := hex4(body, at+8); lo < 0xDC00 || lo > 0xDFFF {
		return 0, false
	}
	return 10, true
}

// surrogateProblem is the 400 for a lone surrogate escaped at body[at:], in the string that
// starts at strStart: its offset, and the JSON pointer of the string (read by a decoder on
// this rare path only; the key itself when the string is an object key).
func surrogateProblem(body []byte, at, strStart int) *Problem {
	esc := string(body[at:min(at+6, len(body))])
	pointer, found := "", false
	dec := jsontext.NewDecoder(bytes.NewReader(body), decoderOptions...)
	for {
		if _, err := dec.ReadToken(); err != nil {
			break
		}
		if dec.InputOffset() > int64(strStart) {
			pointer, found = string(dec.StackPointer()), true
			break
		}
	}
	detail := fmt.Sprintf("the string at byte offset %d has a lone UTF-16 surrogate %s at byte offset %d (a high surrogate must be followed by a low one): it is not text", strStart, esc, at)
	if found {
		detail = fmt.Sprintf("the string at %q has a lone UTF-16 surrogate %s at byte offset %d (a high surrogate must be followed by a low one): it is not text", pointer, esc, at)
	}
	p := invalidJSON(int64(at), detail)
	if found {
		p.Errors = []Violation{{Pointer: pointer, Message: "lone UTF-16 surrogate " + esc}}
	}
	return p
}

// keyTracker remembers the keys of every open object. Keys are spans of the body (no
// copies); an object with many keys, or a key with escapes, moves to a map, so a hostile
// object with a million keys costs linear, not quadratic, time.
type keyTracker struct {
	frames    []keyFrame
	spans     [][2]int // keys of open objects, each frame owning a tail
	expectKey bool
	fold      bool // keys that differ only in case are the same key
}

type keyFrame struct {
	object bool
	start  int               // first span of this frame
	set    map[string]string // once the frame has many keys or an escaped one: folded (with fold) → key
}

// keySeen tells how a key relates to the earlier keys of its object.
type keySeen uint8

const (
	keyNew      keySeen = iota
	keyRepeated         // the same key again
	keyCaseTwin         // an earlier key that differs only in case (with fold)
)

const keySpansMax = 16

func (k *keyTracker) push(object bool) {
	k.frames = append(k.frames, keyFrame{object: object, start: len(k.spans)})
	k.expectKey = object
}

func (k *keyTracker) pop() {
	if n := len(k.frames); n > 0 {
		k.spans = k.spans[:k.frames[n-1].start]
		k.frames = k.frames[:n-1]
	}
	k.expectKey = false
}

func (k *keyTracker) inObject() bool {
	return len(k.frames) > 0 && k.frames[len(k.frames)-1].object
}

// seen records the key body[start:end] (quotes included) in the innermost object and
// reports whether it, or with fold a case twin of it, was already there.
func (k *keyTracker) seen(body []byte, start, end int, escaped bool) keySeen {
	if len(k.frames) == 0 {
		return keyNew
	}
	f := &k.frames[len(k.frames)-1]
	raw := body[start+1 : end-1]
	if escaped || f.set != nil || len(k.spans)-f.start >= keySpansMax {
		if f.set == nil {
			f.set = make(map[string]string, 2*keySpansMax)
			for _, sp := range k.spans[f.start:] {
				prev := string(body[sp[0]:sp[1]])
				f.set[k.folded(prev)] = prev
			}
			k.spans = k.spans[:f.start]
		}
		key := string(raw)
		if escaped {
			var s string
			if json.Unmarshal(body[start:end], &s) == nil {
				key = s
			}
		}
		if prev, dup := f.set[k.folded(key)]; dup {
			if prev == key {
				return keyRepeated
			}
			return keyCaseTwin
		}
		f.set[k.folded(key)] = key
		return keyNew
	}
	for _, sp := range k.spans[f.start:] {
		prev := body[sp[0]:sp[1]]
		if bytes.Equal(prev, raw) {
			return keyRepeated
		}
		if k.fold && bytes.EqualFold(prev, raw) {
			return keyCaseTwin
		}
	}
	k.spans = append(k.spans, [2]int{start + 1, end - 1})
	return keyNew
}

// folded is the key as the set holds it: itself, or with fold its case-folded form (ſ and
// the Kelvin sign fold as Go's encoding/json folds them).
func (k *keyTracker) folded(key string) string {
	if !k.fold {
		return key
	}
	return strings.ToLower(strings.ToUpper(key))
}

// checkExponent refuses the number body[numStart:end] when its exponent is absurd or its
// value overflows a float64 (validators and most backends read numbers as float64: 1e309
// would become +Inf). Only numbers with an exponent can overflow: a literal is at most
// maxNumberLen characters long. Underflow (1e-400) is a value, 0, and passes.
func checkExponent(body []byte, numStart, expStart, end int) *Problem {
	if expStart < 0 {
		return nil
	}
	e := 0
	for _, c := range body[expStart:end] {
		if c >= '0' && c <= '9' {
			e = e*10 + int(c-'0')
			if e > maxExponent {
				return invalidJSON(int64(expStart), fmt.Sprintf("number exponent at byte offset %d is out of range (at most %d)", expStart, maxExponent))
			}
		}
	}
	if e >= 300-maxNumberLen { // could overflow: let the parser say
		f, err := strconv.ParseFloat(string(body[numStart:end]), 64)
		if err != nil && math.IsInf(f, 0) {
			return invalidJSON(int64(numStart), fmt.Sprintf("number at byte offset %d is too large for a 64-bit float (at most about 1.8e308)", numStart))
		}
	}
	return nil
}

// parseJSON checks and decodes body. Numbers stay json.Number (their exact text), as the
// schema validator expects and event ids need. decode=false only checks the grammar
// (cheaper when nothing needs the value); fold refuses keys that differ only in case (see
// precheck). names, when set, holds the object keys the schema knows: a decoded key found
// there reuses its string instead of allocating one.
func parseJSON(body []byte, decode, fold bool, names map[string]string) (any, *Problem) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalidJSON(0, "the body is empty")
	}
	if p := precheck(body, fold); p != nil {
		return nil, p
	}
	t := tokenizers.Get().(*tokenizer)
	defer t.put()
	t.buf = *bytes.NewBuffer(body)
	t.dec.Reset(&t.buf, decoderOptions...)
	t.names = names
	var v any
	var err error
	if decode {
		v, err = t.value()
	} else {
		err = t.dec.SkipValue()
	}
	if err != nil {
		return nil, syntaxProblem(err, body)
	}
	// Exactly one value: anything but white space after it is an error.
	off := t.dec.InputOffset()
	if _, err := t.dec.ReadToken(); err != io.EOF {
		for off < int64(len(body)) && isSpace(body[off]) {
			off++
		}
		return nil, invalidJSON(off, fmt.Sprintf("unexpected data after the JSON value at byte offset %d", off))
	}
	return v, nil
}

// decoderOptions: precheck has already refused invalid UTF-8 and duplicate keys (with the
// answers the gateway promises), so the tokenizer need not look for them again.
var decoderOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// tokenizer is a pooled jsontext decoder that reads straight from the body's bytes.
type tokenizer struct {
	buf   bytes.Buffer
	dec   *jsontext.Decoder
	names map[string]string
}

var tokenizers = sync.Pool{New: func() any {
	t := &tokenizer{}
	t.dec = jsontext.NewDecoder(&t.buf)
	return t
}}

func (t *tokenizer) put() {
	t.buf, t.names = bytes.Buffer{}, nil
	t.dec.Reset(&t.buf) // drop the reference to the body
	tokenizers.Put(t)
}

// value builds the next value: map[string]any, []any, string, json.Number, bool or nil.
// Precheck bounds the depth (MaxDepth), so the recursion is bounded too.
func (t *tokenizer) value() (any, error) {
	tok, err := t.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '{':
		m := make(map[string]any, 8)
		for t.dec.PeekKind() == '"' {
			key, err := t.name()
			if err != nil {
				return nil, err
			}
			if m[key], err = t.value(); err != nil {
				return nil, err
			}
		}
		if _, err := t.dec.ReadToken(); err != nil { // '}' (or the error that stopped the loop)
			return nil, err
		}
		return m, nil
	case '[':
		a := make([]any, 0, 4)
		for k := t.dec.PeekKind(); k != ']' && k != 0; k = t.dec.PeekKind() {
			v, err := t.value()
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := t.dec.ReadToken(); err != nil {
			return nil, err
		}
		return a, nil
	case '"':
		return tok.String(), nil
	case '0':
		return json.Number(tok.String()), nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	}
	return nil, nil // null
}

// name reads an object key. A key without escapes that the schema names is the schema's
// string (no allocation); any other is unescaped into a new one.
func (t *tokenizer) name() (string, error) {
	raw, err := t.dec.ReadValue()
	if err != nil {
		return "", err
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if s, ok := t.names[string(inner)]; ok {
			return s, nil
		}
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// syntaxProblem turns a tokenizer error into the 400 answer, with the offset of the byte
// where the body stops being JSON.
func syntaxProblem(err error, body []byte) *Problem {
	var se *jsontext.SyntacticError
	switch {
	case errors.As(err, &se):
		off := se.ByteOffset
		if errors.Is(err, io.ErrUnexpectedEOF) {
			off = int64(len(body))
			return invalidJSON(off, fmt.Sprintf("unexpected end of JSON input at byte offset %d", off))
		}
		return invalidJSON(off, fmt.Sprintf("%v (at byte offset %d)", se.Err, off))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return invalidJSON(int64(len(body)), fmt.Sprintf("unexpected end of JSON input at byte offset %d", len(body)))
	default:
		return invalidJSON(0, err.Error())
	}
}

func jsonError(err error, off int64, n int) *Problem {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// encoding/json counts the offending byte as read; report where it starts.
		off := se.Offset
		if off > 0 {
			off--
		}
		return invalidJSON(off, fmt.Sprintf("%s (at byte offset %d)", se.Error(), off))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return invalidJSON(int64(n), fmt.Sprintf("unexpected end of JSON input at byte offset %d", n))
	default:
		return invalidJSON(off, fmt.Sprintf("%s (at byte offset %d)", err.Error(), off))
	}
}
