// Package transform reshapes a webhook's JSON body with a CEL expression: on an inbound
// route, for the app that receives it; on an outbound endpoint or subscription, for the
// subscriber that gets it. An expression is compiled once, when its route or endpoint is
// configured, and evaluated within a cost limit and a budget of time and regular-expression
// input (shared, outbound, with the publish's filters).
//
// The expression returns the new body, a JSON object or list:
//
//	{"id": body.New.Id, "name": body.New.LegalName, "changed": body.Old.LegalName != body.New.LegalName}
//
// or, to set headers on the hand-off too, with_headers(body, headers):
//
//	with_headers({"id": body.New.Id}, {"X-Entity": body.Entity})
package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"github.com/hookgate/hookgate/internal/celx"
	"github.com/hookgate/hookgate/internal/credential"
	"golang.org/x/net/http/httpguts"
)

// Side says where a transform runs, and so what it sees.
type Side int

const (
	// Inbound transforms (webhook_receive) see body, headers (the request's, lower-case
	// names, first value, without credential headers), route and event_id.
	Inbound Side = iota
	// Outbound transforms (endpoints and subscriptions) see body (the published event),
	// type, event_id and endpoint. They do not see the publish's headers: a delivery whose
	// transform failed runs it again before each attempt, when those are gone.
	Outbound
)

func (s Side) String() string {
	if s == Outbound {
		return "outbound"
	}
	return "inbound"
}

// Limits.
const (
	// MaxLength caps an expression's length.
	MaxLength = 8192
	// CostLimit bounds the work of one evaluation (CEL's cost units, about one per value
	// visited or built).
	CostLimit = 1_000_000
	// MaxOutput caps the JSON a transform may produce.
	MaxOutput = 10 << 20
	// DefaultTime is how long an inbound transform may run (an outbound one spends the
	// publish's filter budget instead).
	DefaultTime = 50 * time.Millisecond
	// DefaultRegexBytes is how many bytes an inbound transform's `matches` calls may scan.
	DefaultRegexBytes = 1 << 20
)

// ErrFailed is wrapped by every run-time failure of a transform.
var ErrFailed = errors.New("the transform failed")

// ErrBudget is wrapped (with ErrFailed) when a transform ran out of its cost limit or its
// budget of time and regular-expression input.
var ErrBudget = errors.New("over its budget")

// Transform is a compiled transform expression.
type Transform struct {
	src  string
	side Side
	prg  celx.Program
}

var (
	envOnce [2]sync.Once
	envs    [2]*cel.Env
	envErrs [2]error
)

// outputType is what with_headers returns: a body with headers to set.
var outputType = types.NewOpaqueType("hookgate.output")

// output is with_headers' value.
type output struct {
	body    ref.Val
	headers ref.Val
}

func (o *output) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("with_headers(…) is a transform's result, not a value to use")
}
func (o *output) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return outputType
	}
	return types.NewErr("with_headers(…) cannot be converted to %s", t)
}
func (o *output) Equal(other ref.Val) ref.Val { return types.Bool(ref.Val(o) == other) }
func (o *output) Type() ref.Type              { return outputType }
func (o *output) Value() any                  { return o }

// adapter lets expressions read documents the inbound core decoded for its schema, whose
// numbers are json.Number (their exact text): an integer becomes an int, any other number
// a double. Maps and lists are wrapped with it, so their members are read the same way.
type adapter struct{ types.Adapter }

func (a adapter) NativeToValue(v any) ref.Val {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return types.Int(i)
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !math.IsInf(f, 0) {
			return types.NewErr("number %s: %v", x, err)
		}
		return types.Double(f)
	case map[string]any:
		return types.NewStringInterfaceMap(a, x)
	case []any:
		return types.NewDynamicList(a, x)
	}
	return a.Adapter.NativeToValue(v)
}

func env(side Side) (*cel.Env, error) {
	envOnce[side].Do(func() {
		opts := []cel.EnvOption{
			cel.CustomTypeAdapter(adapter{types.DefaultTypeAdapter}),
			cel.Variable("body", cel.DynType),
			cel.Variable("event_id", cel.StringType),
			cel.CrossTypeNumericComparisons(true),
			cel.Function("with_headers",
				cel.Overload("with_headers_dyn_map", []*cel.Type{cel.DynType, cel.MapType(cel.StringType, cel.DynType)}, cel.DynType,
					cel.BinaryBinding(func(body, headers ref.Val) ref.Val { return &output{body: body, headers: headers} }))),
		}
		if side == Inbound {
			opts = append(opts, cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
				cel.Variable("route", cel.StringType))
		} else {
			opts = append(opts, cel.Variable("type", cel.StringType), cel.Variable("endpoint", cel.StringType))
		}
		envs[side], envErrs[side] = cel.NewEnv(opts...)
	})
	return envs[side], envErrs[side]
}

// Compile compiles a transform for side. It is an error if the expression is empty or too
// long, does not parse, names unknown variables or functions, or cannot give an object or
// a list (a string, a number or a boolean is not a body).
func Compile(side Side, src string) (*Transform, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("the transform is empty")
	}
	if len(src) > MaxLength {
		return nil, fmt.Errorf("the transform is longer than %d characters", MaxLength)
	}
	e, err := env(side)
	if err != nil {
		return nil, fmt.Errorf("transform environment: %w", err)
	}
	ast, iss := e.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("the transform does not compile: %s", strings.TrimSpace(iss.Err().Error()))
	}
	switch t := ast.OutputType(); {
	case t.IsExactType(cel.DynType), t.Kind() == types.MapKind, t.Kind() == types.ListKind:
	default:
		return nil, fmt.Errorf("the transform must give a JSON object or list (or with_headers(body, headers)), but it gives a %s", t)
	}
	prg, err := celx.NewProgram(e, ast, CostLimit)
	if err != nil {
		return nil, fmt.Errorf("the transform does not compile: %w", err)
	}
	return &Transform{src: src, side: side, prg: prg}, nil
}

// String returns the expression.
func (t *Transform) String() string { return t.src }

// Matches reports whether the expression calls `matches` (whose budget is charged for
// the longest string of the input: a caller that knows no tighter bound than the body's
// length passes the body undecoded instead).
func (t *Transform) Matches() bool { return t.prg.RegexCalls() > 0 }

// Side returns where the transform runs.
func (t *Transform) Side() Side { return t.side }

// Input is what a transform runs on.
type Input struct {
	// Body is the JSON body (the webhook received, or the event published).
	Body []byte
	// Decoded, when not nil, is Body already decoded: by celx.DecodeJSON (shared with
	// the other expressions of a publish), or by the inbound core for its schema (numbers
	// as json.Number). Longest is its longest string, or, when unknown, any bound of it
	// (the body's length). Nil decodes Body.
	Decoded any
	Longest int64
	// Header is the inbound request's header (inbound only); credential headers, and those
	// named in Hidden, are not shown to the expression.
	Header http.Header
	// Hidden names more headers to keep from the expression (the route's own credential
	// headers).
	Hidden []string
	// EventID is the event id ("" when the route computes none).
	EventID string
	// Route is the inbound route's name (inbound only).
	Route string
	// Type and Endpoint are the event type and the endpoint's name (outbound only).
	Type, Endpoint string
	// Budget, when set (celx.Budget.Start), is the budget the run spends, shared with
	// other expressions; unset, the run has DefaultTime and DefaultRegexBytes of its own.
	Budget *celx.Budget
}

// Output is a transform's result.
type Output struct {
	// Body is the new JSON body.
	Body []byte
	// Header holds the headers with_headers set (canonical names), or nil.
	Header http.Header
}

// Run evaluates the transform on in. Every failure wraps ErrFailed, and ErrBudget when the
// cost limit or the budget ran out; its message says what went wrong (a missing field, a
// type mismatch, a result that is not JSON).
func (t *Transform) Run(ctx context.Context, in *Input) (Output, error) {
	body, longest := in.Decoded, in.Longest
	if body == nil {
		var ok bool
		if body, longest, ok = celx.DecodeJSON(in.Body); !ok {
			return Output{}, fmt.Errorf("%w: the body is not JSON", ErrFailed)
		}
	}
	vars := map[string]any{"body": body, "event_id": in.EventID}
	if t.side == Inbound {
		hs := make(map[string]string, len(in.Header))
		for k, vs := range in.Header {
			if len(vs) == 0 || credential.IsCredentialHeader(k) || slices.ContainsFunc(in.Hidden, func(h string) bool { return strings.EqualFold(h, k) }) {
				continue
			}
			hs[strings.ToLower(k)] = vs[0]
			longest = max(longest, int64(len(vs[0])))
		}
		vars["headers"], vars["route"] = hs, in.Route
	} else {
		vars["type"], vars["endpoint"] = in.Type, in.Endpoint
	}
	b := in.Budget
	if b == nil || !b.Set() {
		b = &celx.Budget{}
		b.Start(ctx, DefaultTime, DefaultRegexBytes)
		defer b.Release()
	}
	out, err := t.prg.Eval(vars, longest, b)
	if err != nil {
		switch {
		case errors.Is(err, celx.ErrBudget):
			return Output{}, fmt.Errorf("%w: %w: it ran out of time or of regular-expression input", ErrFailed, ErrBudget)
		case strings.Contains(err.Error(), "cost limit exceeded"):
			return Output{}, fmt.Errorf("%w: %w: it exceeded the cost limit (%d)", ErrFailed, ErrBudget, CostLimit)
		}
		return Output{}, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	var res Output
	if o, ok := out.(*output); ok {
		if res.Header, err = headersOf(o.headers); err != nil {
			return Output{}, fmt.Errorf("%w: %v", ErrFailed, err)
		}
		out = o.body
	}
	switch out.(type) {
	case traits.Mapper, traits.Lister:
	default:
		return Output{}, fmt.Errorf("%w: it gave a %s; a transform gives a JSON object or list", ErrFailed, out.Type().TypeName())
	}
	var buf bytes.Buffer
	if err := appendJSON(&buf, out, 0); err != nil {
		return Output{}, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	res.Body = buf.Bytes()
	return res, nil
}

// notSettable are headers a transform may not set: the framing of the request and the
// hop-by-hop headers, which the proxy and the delivery set themselves (nor Webhook-*,
// X-Webhook-* and X-Hookgate-*: what Hookgate tells the app).
var notSettable = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Host": true, "Connection": true, "Keep-Alive": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Proxy-Connection": true, "Content-Encoding": true,
	"Content-Type": true,
}

func headersOf(v ref.Val) (http.Header, error) {
	m, ok := v.(traits.Mapper)
	if !ok {
		return nil, fmt.Errorf("with_headers: the headers are a %s, not a map", v.Type().TypeName())
	}
	h := http.Header{}
	for it := m.Iterator(); it.HasNext() == types.True; {
		k := it.Next()
		ks, ok := k.(types.String)
		if !ok {
			return nil, fmt.Errorf("with_headers: a header name is a %s", k.Type().TypeName())
		}
		name := http.CanonicalHeaderKey(string(ks))
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("with_headers: %q is not a header name", string(ks))
		}
		if notSettable[name] || strings.HasPrefix(name, "Webhook-") || strings.HasPrefix(name, "X-Hookgate-") || strings.HasPrefix(name, "X-Webhook-") {
			return nil, fmt.Errorf("with_headers: %s is set by Hookgate, not by a transform", name)
		}
		if _, dup := h[name]; dup {
			return nil, fmt.Errorf("with_headers: %s is given twice (header names are case-insensitive)", name)
		}
		val := m.Get(k)
		vs, ok := val.(types.String)
		if !ok {
			return nil, fmt.Errorf("with_headers: the value of %s is a %s, not a string", name, val.Type().TypeName())
		}
		if !httpguts.ValidHeaderFieldValue(string(vs)) {
			return nil, fmt.Errorf("with_headers: the value of %s has characters a header cannot carry", name)
		}
		h.Set(name, string(vs))
	}
	return h, nil
}

// maxDepth bounds the nesting of a transform's output.
const maxDepth = 64

// appendJSON writes v as JSON: object keys sorted, so one input always gives the same
// bytes (what is signed and compared).
func appendJSON(buf *bytes.Buffer, v ref.Val, depth int) error {
	if buf.Len() > MaxOutput {
		return fmt.Errorf("the result is over %d MB", MaxOutput>>20)
	}
	if depth > maxDepth {
		return fmt.Errorf("the result is nested deeper than %d", maxDepth)
	}
	switch x := v.(type) {
	case types.Null:
		buf.WriteString("null")
	case types.Bool:
		buf.WriteString(strconv.FormatBool(bool(x)))
	case types.Int:
		buf.WriteString(strconv.FormatInt(int64(x), 10))
	case types.Uint:
		buf.WriteString(strconv.FormatUint(uint64(x), 10))
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return errors.New("the result holds a number JSON cannot carry (NaN or infinite)")
		}
		buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	case types.String:
		writeString(buf, string(x))
	case types.Timestamp:
		writeString(buf, x.Time.UTC().Format(time.RFC3339Nano))
	case types.Duration:
		writeString(buf, x.Duration.String())
	case *output:
		return errors.New("with_headers(…) must be the whole result, not inside it")
	case traits.Mapper:
		if m, ok := x.Value().(map[string]any); ok { // a part of the body, as decoded
			return appendNative(buf, m, depth)
		}
		keys := make([]string, 0, 8)
		for it := x.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return fmt.Errorf("an object key is a %s; JSON keys are strings", k.Type().TypeName())
			}
			keys = append(keys, string(ks))
		}
		slices.Sort(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if err := appendJSON(buf, x.Get(types.String(k)), depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case traits.Lister:
		if a, ok := x.Value().([]any); ok {
			return appendNative(buf, a, depth)
		}
		buf.WriteByte('[')
		n := int64(x.Size().(types.Int))
		for i := int64(0); i < n; i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := appendJSON(buf, x.Get(types.Int(i)), depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case *types.Err:
		return x
	default:
		return fmt.Errorf("the result holds a %s, which JSON cannot carry", v.Type().TypeName())
	}
	return nil
}

// appendNative writes a value as celx.DecodeJSON made it (keys sorted too). A value of
// another Go type (a list the expression built of CEL values) goes through appendJSON.
func appendNative(buf *bytes.Buffer, v any, depth int) error {
	if buf.Len() > MaxOutput {
		return fmt.Errorf("the result is over %d MB", MaxOutput>>20)
	}
	if depth > maxDepth {
		return fmt.Errorf("the result is nested deeper than %d", maxDepth)
	}
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
	case json.Number: // as received, already valid JSON
		buf.WriteString(string(x))
	case float64:
		return appendJSON(buf, types.Double(x), depth)
	case string:
		writeString(buf, x)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if err := appendNative(buf, x[k], depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := appendNative(buf, e, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case ref.Val:
		return appendJSON(buf, x, depth)
	default:
		return appendJSON(buf, types.DefaultTypeAdapter.NativeToValue(x), depth)
	}
	return nil
}

const hex = "0123456789abcdef"

// writeString writes s as a JSON string (invalid UTF-8 becomes U+FFFD).
func writeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case c < 0x20:
				switch c {
				case '\n':
					buf.WriteString(`\n`)
				case '\r':
					buf.WriteString(`\r`)
				case '\t':
					buf.WriteString(`\t`)
				default:
					buf.WriteString(`\u00`)
					buf.WriteByte(hex[c>>4])
					buf.WriteByte(hex[c&0xf])
				}
			default:
				buf.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf.WriteString("\ufffd")
		} else {
			buf.WriteString(s[i : i+size])
		}
		i += size
	}
	buf.WriteByte('"')
}
