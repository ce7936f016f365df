package kvsession

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"testing"
)

// The fast paths of the value codec must be invisible: the same bytes as
// encoding/json when encoding, the same values (or a fall back to
// encoding/json) when decoding.

func FuzzValueCodec(f *testing.F) {
	for _, s := range []string{"", "ada", "a<b", "x&y", `q"uote`, `back\slash`, "tab\t", "é", "\u2028", "\x7f"} {
		f.Add(s, int64(0), false, []byte(strconv.Quote(s)))
	}
	for _, n := range []int64{1, -1, 42, 999999999999999999, -999999999999999999, math.MaxInt64, math.MinInt64} {
		f.Add("", n, true, []byte(strconv.FormatInt(n, 10)))
	}
	for _, raw := range []string{"-0", "007", "1e3", "1.0", "-", "", "true", "false", "null", "tru", `"a\"b"`,
		`"\u00e9"`, "1000000000000000000", "9223372036854775808", " 1", "1 ", `"unterminated`, "[1]", `{"a":1}`} {
		f.Add("", int64(0), false, []byte(raw))
	}
	f.Fuzz(func(t *testing.T, s string, n int64, b bool, raw []byte) {
		for _, v := range []any{s, n, int(n), b} {
			got, err := encodeValue(v)
			want, wantErr := json.Marshal(v)
			if err != nil || wantErr != nil || !bytes.Equal(got, want) {
				t.Errorf("encodeValue(%#v) = %q, %v; encoding/json gives %q, %v", v, got, err, want, wantErr)
			}
		}
		checkDecode[string](t, raw)
		checkDecode[int](t, raw)
		checkDecode[int64](t, raw)
		checkDecode[bool](t, raw)
	})
}

// checkDecode asserts that decodeScalar, when it decodes raw at all,
// agrees with encoding/json.
func checkDecode[T any](t *testing.T, raw []byte) {
	t.Helper()
	var fast T
	if !decodeScalar(raw, &fast) {
		return
	}
	var slow T
	if err := json.Unmarshal(raw, &slow); err != nil || !reflect.DeepEqual(fast, slow) {
		t.Errorf("decodeScalar(%q) into %T = %#v; encoding/json gives %#v, %v", raw, fast, fast, slow, err)
	}
}

// decodeValue decodes a stored value into v, a pointer, as Get does.
func decodeValue(raw []byte, v any) error {
	if decodeScalar(raw, v) {
		return nil
	}
	return decodeJSON(raw, v)
}

// The fast paths must decode what the application stored, so a round trip
// through Set and Get keeps every value of the common types.
func TestScalarRoundTrip(t *testing.T) {
	for _, v := range []any{"", "ada", "a<b>&c", "é", 0, -7, math.MaxInt64, math.MinInt64, true, false, 3.5} {
		raw, err := encodeValue(v)
		if err != nil {
			t.Fatal(err)
		}
		got := reflect.New(reflect.TypeOf(v))
		if err := decodeValue(raw, got.Interface()); err != nil {
			t.Fatalf("decode %q: %v", raw, err)
		}
		if got.Elem().Interface() != v {
			t.Errorf("round trip of %#v gave %#v", v, got.Elem().Interface())
		}
	}
}
