package celx

import (
	"os"
	"reflect"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	v, longest, ok := DecodeJSON([]byte(` {"a": [1, -2.5, 12345678901234567, 1e400, "xyz", true, false, null], "long key": {}} `))
	want := map[string]any{"a": []any{int64(1), -2.5, int64(12345678901234567), v.(map[string]any)["a"].([]any)[3], "xyz", true, false, nil}, "long key": map[string]any{}}
	if !ok || !reflect.DeepEqual(v, want) || longest != 8 {
		t.Errorf("got %#v %d %v", v, longest, ok)
	}
	for _, bad := range []string{``, `{`, `{} {}`, `[1,]`, `{"a" 1}`, `nul`} {
		if _, _, ok := DecodeJSON([]byte(bad)); ok {
			t.Errorf("%q decoded", bad)
		}
	}
	deep := make([]byte, 0, 400)
	for i := 0; i < 200; i++ {
		deep = append(deep, '[')
	}
	for i := 0; i < 200; i++ {
		deep = append(deep, ']')
	}
	if _, _, ok := DecodeJSON(deep); ok {
		t.Error("200 levels decoded")
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	body, err := os.ReadFile("../../examples/samples/ploomes/contact-update.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, ok := DecodeJSON(body); !ok {
			b.Fatal("not decoded")
		}
	}
}
