package order

import "testing"

func TestEncodeOrders(t *testing.T) {
	for _, c := range []struct {
		kind     Kind
		lo, hi   string
		badValue string
	}{
		{Time, "2025-10-01T14:03:00-03:00", "2025-10-01T17:03:00.5Z", "yesterday"},
		{Time, "2025-10-01T23:59:59+05:00", "2025-10-01T18:59:59.000000001Z", "2025-10-01 14:03"},
		{Int, "-10", "3", "3.5"},
		{Int, "9", "10", "ten"},
		{String, "a", "ab", ""},
		{String, "B", "a", ""},
	} {
		lo, err1 := Encode(c.kind, c.lo)
		hi, err2 := Encode(c.kind, c.hi)
		if err1 != nil || err2 != nil || !(lo < hi) {
			t.Errorf("%s: %q < %q: %q %q %v %v", c.kind, c.lo, c.hi, lo, hi, err1, err2)
		}
		if c.badValue != "" {
			if _, err := Encode(c.kind, c.badValue); err == nil {
				t.Errorf("%s %q: no error", c.kind, c.badValue)
			}
		}
	}
	same1, _ := Encode(Time, "2025-10-01T14:03:00-03:00")
	same2, _ := Encode(Time, "2025-10-01T17:03:00Z")
	if same1 != same2 {
		t.Error("the same instant in two offsets differs")
	}
}

// Times outside the int64 nanoseconds (1677–2262) keep their order and decode back; inside
// it the encoding is the one earlier releases stored, so stored values still compare.
func TestTimesOfEveryYear(t *testing.T) {
	prev := ""
	for _, raw := range []string{"0000-01-01T00:00:00+23:59", "1600-01-01T00:00:00Z", "1677-09-21T00:12:43.145224191Z",
		"1677-09-21T00:12:43.145224192Z", "2025-03-11T12:15:00.117Z", "2262-04-11T23:47:16.854775807Z",
		"2262-04-11T23:47:16.854775808Z", "9999-12-31T23:59:59.999999999-23:59"} {
		v, err := Encode(Time, raw)
		if err != nil || !(prev < v) {
			t.Fatalf("%s: %q (after %q) %v", raw, v, prev, err)
		}
		prev = v
		want, _ := ParseTime(raw)
		if got, err := DecodeTime(v); err != nil || !got.Equal(want) {
			t.Fatalf("%s: decodes as %v %v", raw, got, err)
		}
	}
	// The encoding of earlier releases: "i" and the offset nanoseconds in 20 digits.
	if v, _ := Encode(Time, "2025-03-11T12:15:00Z"); v != "i10965067336854775808" {
		t.Fatalf("2025-03-11T12:15:00Z encodes as %q, not as before", v)
	}
	for k, raw := range map[Kind]string{Int: "-42", String: "héllo"} {
		v, _ := Encode(k, raw)
		if back, err := Decode(k, v); err != nil || back != raw {
			t.Fatalf("%s %q: decodes as %q %v", k, raw, back, err)
		}
	}
}

// ParseTime never panics, and what it reads encodes and decodes to the same instant.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2025-03-11T09:21:00-0300", "2025-03-11t09:21:00,5z", "2024-12-31T23:59:60-03", "0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999999Z", "2025-03-11T09:21:00+0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tm, err := ParseTime(raw)
		if err != nil {
			return
		}
		back, err := DecodeTime(EncodeTime(tm))
		if err != nil || !back.Equal(tm) {
			t.Fatalf("%q: %v → %v %v", raw, tm, back, err)
		}
	})
}
