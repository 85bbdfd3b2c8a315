package receiver

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

type idKind uint8

const (
	idHeader idKind = iota
	idJSON
	idBodySHA256
)

type idSource struct {
	kind    idKind
	headers []string // idHeader: canonical header names; the first one present is used
	tokens  []string // idJSON: unescaped JSON pointer tokens
	text    string   // the source as configured
}

// eventIDSpec computes an event id from one source, or a composite key from several.
type eventIDSpec struct {
	sources []idSource
}

// maxIDLen is the longest id kept verbatim; a longer one is replaced by its SHA-256.
const maxIDLen = 200

// ParseEventIDSources checks event id sources: "header:<Name>" (or "header:<Name>|<Name>…",
// the first header present), "json:<pointer>" or "body_sha256".
func ParseEventIDSources(srcs []string) error {
	_, err := newEventIDSpec(srcs)
	return err
}

func newEventIDSpec(srcs []string) (*eventIDSpec, error) {
	if len(srcs) == 0 {
		return nil, nil
	}
	s := &eventIDSpec{}
	for _, src := range srcs {
		switch {
		case src == "body_sha256":
			s.sources = append(s.sources, idSource{kind: idBodySHA256, text: src})
		case strings.HasPrefix(src, "header:"):
			var names []string
			for _, name := range strings.Split(strings.TrimPrefix(src, "header:"), "|") {
				if name == "" || strings.ContainsAny(name, " \t:") {
					return nil, fmt.Errorf("event_id %q: header:<Name>[|<Name>…] needs header names", src)
				}
				names = append(names, http.CanonicalHeaderKey(name))
			}
			s.sources = append(s.sources, idSource{kind: idHeader, headers: names, text: src})
		case strings.HasPrefix(src, "json:"):
			ptr := strings.TrimPrefix(src, "json:")
			toks, err := parsePointer(ptr)
			if err != nil {
				return nil, fmt.Errorf("event_id %q: %w", src, err)
			}
			s.sources = append(s.sources, idSource{kind: idJSON, tokens: toks, text: src})
		default:
			return nil, fmt.Errorf("event_id %q: a source is header:<Name>, json:<pointer> or body_sha256", src)
		}
	}
	return s, nil
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, fmt.Errorf("empty JSON pointer (the whole document cannot be an id; use body_sha256)")
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("a JSON pointer starts with '/'")
	}
	parts := strings.Split(p[1:], "/")
	for i, t := range parts {
		if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(t, "~0", ""), "~1", ""), "~") {
			return nil, fmt.Errorf("bad escape in JSON pointer token %q", t)
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

func (s *eventIDSpec) needsJSON() bool {
	for _, src := range s.sources {
		if src.kind == idJSON {
			return true
		}
	}
	return false
}

// lookup resolves tokens in a decoded document (json.Number numbers).
func lookup(doc any, tokens []string) (any, bool) {
	cur := doc
	for _, t := range tokens {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[t]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(v) || (len(t) > 1 && t[0] == '0') {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// part returns one source's value, and false when it is absent. A JSON null is absent.
func (src *idSource) part(r *http.Request, body []byte, doc any) (string, bool) {
	switch src.kind {
	case idBodySHA256:
		sum := sha256.Sum256(body)
		return hex.EncodeToString(sum[:]), true
	case idHeader:
		for _, name := range src.headers {
			if vals := r.Header[name]; len(vals) > 0 {
				return vals[0], true
			}
		}
		return "", false
	default:
		v, ok := lookup(doc, src.tokens)
		if !ok || v == nil {
			return "", false
		}
		switch x := v.(type) {
		case string:
			return x, true
		case json.Number:
			return x.String(), true
		case bool:
			return strconv.FormatBool(x), true
		default:
			b, err := json.Marshal(x) // objects: sorted keys, so stable
			if err != nil {
				return "", false
			}
			return string(b), true
		}
	}
}

// compute returns the event id, and false when a single-source id is missing (or empty).
// A composite id always exists: each part is encoded as absent (0x00) or present (0x01,
// length, bytes) before hashing, so absent, empty and adjacent values never collide.
func (s *eventIDSpec) compute(r *http.Request, body []byte, doc any) (string, bool) {
	if len(s.sources) == 1 {
		v, ok := s.sources[0].part(r, body, doc)
		if !ok || v == "" {
			return "", false
		}
		if len(v) > maxIDLen {
			sum := sha256.Sum256([]byte(v))
			return "sha256:" + hex.EncodeToString(sum[:]), true
		}
		return v, true
	}
	h := sha256.New()
	var lenBuf [binary.MaxVarintLen64]byte
	for i := range s.sources {
		v, ok := s.sources[i].part(r, body, doc)
		if !ok {
			h.Write([]byte{0})
			continue
		}
		h.Write([]byte{1})
		n := binary.PutUvarint(lenBuf[:], uint64(len(v)))
		h.Write(lenBuf[:n])
		h.Write([]byte(v))
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

func (s *eventIDSpec) describe() string {
	parts := make([]string, len(s.sources))
	for i, src := range s.sources {
		parts[i] = src.text
	}
	return strings.Join(parts, " ")
}
