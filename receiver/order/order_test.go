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
