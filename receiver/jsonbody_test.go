package receiver

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDuplicateKeys(t *testing.T) {
	many := func(n int, dup bool) string {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		if dup {
			b.WriteString(`"k3":0`)
		} else {
			b.WriteString(`"end":0`)
		}
		b.WriteString("}")
		return b.String()
	}
	bad := map[string]string{
		"simple":             `{"eventId":"a","eventId":"b"}`,
		"nested":             `{"a":{"x":1,"y":2,"x":3}}`,
		"escaped":            `{"eventId":"a","\u0065ventId":"b"}`,
		"escaped both":       `{"\u0061":1,"\u0061":2}`,
		"after a child":      `{"a":1,"b":{"a":2},"a":3}`,
		"many keys then dup": many(40, true),
		"in array element":   `[{"a":1},{"a":1,"a":2}]`,
	}
	for name, body := range bad {
		_, p := parseJSON([]byte(body), true, false, nil)
		if p == nil || p.Status != 400 || !strings.Contains(p.Detail, "duplicate object key") || p.Offset == nil {
			t.Errorf("%s: %v", name, p)
		}
	}
	good := map[string]string{
		"same key in sibling objects": `[{"a":1},{"a":1}]`,
		"same key at two levels":      `{"a":{"a":{"a":1}}}`,
		"key equal to a value":        `{"a":"b","b":"a"}`,
		"many distinct keys":          many(40, false),
		"escaped distinct":            `{"\u0061":1,"b":2}`,
		"strings in arrays":           `{"a":["a","a"]}`,
	}
	for name, body := range good {
		if _, p := parseJSON([]byte(body), true, false, nil); p != nil {
			t.Errorf("%s: refused: %v", name, p)
		}
	}
	if _, p := parseJSON([]byte(`{"x":1,"x":1}`), true, false, nil); p == nil || *p.Offset != 7 {
		t.Errorf("offset of the duplicate: %+v", p)
	}
}

// A hostile object with 200,000 keys is checked in linear time.
func TestManyKeysAreLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 200000; i++ {
		fmt.Fprintf(&b, `"k%d":1,`, i)
	}
	b.WriteString(`"k0":2}`)
	start := time.Now()
	p := precheck([]byte(b.String()), false)
	if p == nil || !strings.Contains(p.Detail, "duplicate") {
		t.Fatalf("dup not found: %v", p)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("precheck of 200,000 keys took %v", took)
	}
}

// With fold, keys that differ only in case are the same key, on every path: few keys
// (spans), many keys (a set), escaped keys, non-ASCII folds.
func TestCaseFoldedDuplicateKeys(t *testing.T) {
	many := `{`
	for i := 0; i < 40; i++ {
		many += fmt.Sprintf(`"key%d":1,`, i)
	}
	dup := map[string]string{
		"spans":   `{"id":"a","ID":"b"}`,
		"set":     many + `"KEY7":2}`,
		"escaped": `{"id":1,"\u0049d":2}`,
		"kelvin":  "{\"kind\":1,\"\u212aind\":2}",
		"nested":  `{"a":{"x":1,"b":{"Id":1,"iD":2}}}`,
	}
	for name, body := range dup {
		if _, p := parseJSON([]byte(body), true, true, nil); p == nil || p.Offset == nil {
			t.Errorf("%s: %s passed with fold", name, body)
		}
		if _, p := parseJSON([]byte(body), true, false, nil); p != nil { // none is an exact duplicate
			t.Errorf("%s: refused without fold: %s", name, p.Detail)
		}
	}
	for _, body := range []string{`{"id":1,"idx":2}`, `{"a":{"id":1},"b":{"ID":2}}`, `[{"id":1},{"ID":2}]`} {
		if _, p := parseJSON([]byte(body), true, true, nil); p != nil {
			t.Errorf("%s refused with fold: %s", body, p.Detail)
		}
	}
}

func TestLoneSurrogates(t *testing.T) {
	for _, tc := range []struct{ body, pointer string }{
		{`{"a":"\ud800"}`, "/a"},
		{`{"a":["ok","\udfff"]}`, "/a/1"},
		{`{"a":{"b":"x\uD83Dy"}}`, "/a/b"},
		{`{"a":"\ud83d\u0041"}`, "/a"},
		{`{"a":"\ud83d\\udc00"}`, "/a"}, // the second escape is an escaped backslash
		{`{"k\ud800":1}`, "/k\ufffd"},
		{`"\ud800`, ""},
	} {
		_, p := parseJSON([]byte(tc.body), true, false, nil)
		if p == nil || p.Status != 400 || !strings.Contains(p.Detail, "surrogate") {
			t.Errorf("%s: %+v, want a 400 naming the surrogate", tc.body, p)
			continue
		}
		if tc.pointer != "" && (len(p.Errors) != 1 || p.Errors[0].Pointer != tc.pointer) {
			t.Errorf("%s: errors %+v, want the pointer %q", tc.body, p.Errors, tc.pointer)
		}
	}
	for _, ok := range []string{`{"a":"\ud83d\ude00"}`, `{"a":"\u00e9\uffff\\ud800"}`, `"\uD83D\uDE00\uD83D\uDE00"`} {
		if _, p := parseJSON([]byte(ok), true, false, nil); p != nil {
			t.Errorf("%s: %+v", ok, p)
		}
	}
}
