package kvsession

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The structured codec must be invisible: json.Marshal's bytes when it
// encodes, json.Unmarshal's value when it decodes, and encoding/json's
// answer, error included, whenever it declines.

type codecRole string

type codecInner struct {
	Theme string            `json:"theme"`
	Sizes []int16           `json:"sizes"`
	Flags map[string]bool   `json:"flags,omitempty"`
	Notes map[string]string `json:"notes"`
}

// codecProfile has a field of every kind the codec handles, and the tag
// forms encoding/json gives meaning to.
type codecProfile struct {
	ID    int64          `json:"id"`
	Name  string         `json:"name"`
	Email string         `json:"email,omitempty"`
	Age   uint8          `json:"age"`
	Small int8           // no tag: the Go name, matched case-insensitively
	Count uint           `json:"count,omitempty"`
	Score float64        `json:"score,omitempty"`
	Ratio float32        `json:"ratio,omitzero"`
	Admin bool           `json:"admin"`
	Seen  time.Time      `json:"seen"`
	Later time.Time      `json:"later,omitzero"`
	Tags  []string       `json:"tags,omitempty"`
	Prefs map[string]int `json:"prefs,omitzero"`
	Inner codecInner     `json:"inner"`
	Skip  string         `json:"-"`
	//lint:ignore SA5008 encoding/json names this field "-", which the codec must do too
	Dash  string    `json:"-,"`
	Role  codecRole `json:"role"`
	Lower string    `json:"k"`
	Upper string    `json:"K"` // folds like "k": exact matches first, then the first field
	//lint:ignore SA5008 an invalid name: encoding/json uses the Go name, which the codec must do too
	BadTag  string `json:"a\\b"`
	Ünicode string
	Empty   struct{}   `json:"empty"`
	Nested  [][]string `json:"nested"`
	ByName  map[codecRole]codecRole
	//lint:ignore U1000 an unexported field, which both encoders skip
	internal int
}

// The targets the fuzz targets try, each a type the codec handles.
var codecTargets = []func() any{
	func() any { return new(map[string]string) },
	func() any { return new(map[string]int) },
	func() any { return new(map[string]float64) },
	func() any { return new(map[string]bool) },
	func() any { return new(map[string][]string) },
	func() any { return new([]string) },
	func() any { return new([]int) },
	func() any { return new([]uint16) },
	func() any { return new([]float32) },
	func() any { return new([]bool) },
	func() any { return new([]time.Time) },
	func() any { return new([]map[string]string) },
	func() any { return new(string) },
	func() any { return new(float64) },
	func() any { return new(uint64) },
	func() any { return new(int32) },
	func() any { return new(codecProfile) },
	func() any { return new([]codecProfile) },
}

var codecSeeds = []string{
	`{}`, `[]`, `null`, ` {"a":"b"} `, `{"a":"b","a":"c"}`, `{"a":null}`, `{"a":1}`, `{"a":"x\"y\\z\/\b\f\n\r\t"}`,
	`{"\u00e9":"\u003c\u0026\u003e"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\ud800"}`, `{"a":"é"}`, "{\"a\":\"\xff\"}",
	`{"a":"b",}`, `{"a" "b"}`, `{"a":"b"`, `["a","b"]`, `["a",]`, `[1,2,3]`, `[1.5,-0,1e3,1E-7]`, `[01]`, `[-]`,
	`[true,false,null]`, `[256,-1,65535,65536]`, `["2026-11-30T09:41:07.123Z","2026-11-30T09:41:07+05:30"]`,
	`["2026-11-30T09:41:07Z ","2026-13-01T00:00:00Z"]`, `1e400`, `"plain"`, `"a<b"`, `12345678901234567890`,
	`-9223372036854775809`, `[1e2]`, `{"id":1,"name":"ada","email":"","age":255,"Small":-128,"count":3,"score":0.5,` +
		`"ratio":0.25,"admin":true,"seen":"2026-11-30T09:41:07.123456789Z","tags":["x","y"],"prefs":{"a":1},` +
		`"inner":{"theme":"dark","sizes":[1,2],"flags":{"b":true},"notes":{"n":"m"}},"-":"dash","role":"admin",` +
		`"k":"lower","K":"upper","BadTag":"t","Ünicode":"u","empty":{},"nested":[["a"],[]],"ByName":{"x":"y"},` +
		`"unknown":{"deep":[1,{"x":null}]}}`,
	`{"ID":2,"NAME":"case","small":1,"sMALL":2}`, `{"k":"a","k":"b"}`, `{"Ünicode":"u","ÜNICODE":"v"}`,
	`{"name":"a","Name":"b"}`, `{"seen":null,"tags":null,"inner":null}`, `{"age":256}`, `{"age":-1}`,
	`{"small":1.0}`, `{"unknown":[1,2,}`, `{"unknown":"\x"}`, `{"name\u0041":1}`, `{"skip":"s","internal":1}`,
	`{"nested":[[1]]}`, strings.Repeat("[", 70) + strings.Repeat("]", 70),
	`{"unknown":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`,
}

func FuzzValueDecode(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, target := range codecTargets {
			checkStructuredDecode(t, raw, target)
		}
	})
}

// checkStructuredDecode asserts that decodeStructured, when it decodes raw,
// gives what json.Unmarshal gives, that it leaves the target zero when it
// declines, and that decodeJSON, Get's path, answers as encoding/json does.
func checkStructuredDecode(t *testing.T, raw []byte, target func() any) {
	t.Helper()
	want := target()
	wantErr := json.Unmarshal(raw, want)
	fast := target()
	if decodeStructured(raw, fast) {
		if wantErr != nil || !reflect.DeepEqual(fast, want) {
			t.Fatalf("decodeStructured(%q) into %T = %#v; encoding/json gives %#v, %v", raw, fast, fast, want, wantErr)
		}
		if d := jsonDepth(raw); d > maxJSONDepth {
			t.Fatalf("decodeStructured(%q) accepted nesting %d, above the limit", raw, d)
		}
	} else if !reflect.ValueOf(fast).Elem().IsZero() {
		t.Fatalf("decodeStructured(%q) into %T declined but left %#v", raw, fast, fast)
	}
	got := target()
	err := decodeJSON(raw, got)
	if wantErr == nil && jsonDepth(raw) > maxJSONDepth {
		wantErr = ErrCorrupt
	}
	if (err == nil) != (wantErr == nil) || err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeJSON(%q) into %T = %#v, %v; encoding/json gives %#v, %v", raw, got, got, err, want, wantErr)
	}
}

func FuzzValueEncode(f *testing.F) {
	for _, s := range codecSeeds {
		f.Add([]byte(s), "", int64(0), 0.0)
	}
	for _, s := range []string{"", "ada", "a<b>&c", `q"\`, "\x00\x1f\x7f", "é\u2028\u2029", "\xff\xfe", "😀"} {
		f.Add([]byte(nil), s, int64(len(s)), float64(len(s))/3)
	}
	for _, n := range []int64{math.MaxInt64, math.MinInt64, -62135596800, 253402300799, 253402300800, 86399, 86400} {
		f.Add([]byte(nil), "x", n, float64(n))
	}
	for _, x := range []float64{1e-7, 1e21, 1e20, math.Copysign(0, -1), 123456789e-30, math.MaxFloat64, math.SmallestNonzeroFloat64, 3.4e38, 1e39} {
		f.Add([]byte(nil), "", int64(0), x)
	}
	f.Fuzz(func(t *testing.T, raw []byte, s string, n int64, x float64) {
		// Values encoding/json decodes from arbitrary text...
		for _, target := range codecTargets {
			v := target()
			if json.Unmarshal(raw, v) == nil {
				checkStructuredEncode(t, reflect.ValueOf(v).Elem().Interface())
			}
		}
		// ...and values it could not: invalid UTF-8, NaN, any time.
		tm := time.Unix(n/1000, n%1000*1e6).In(time.FixedZone("", int(n%200000)))
		p := codecProfile{
			ID: n, Name: s, Email: s, Age: uint8(n), Small: int8(n), Count: uint(n), Score: x, Ratio: float32(x),
			Seen: tm, Later: tm, Tags: []string{s, s + s}, Prefs: map[string]int{s: int(n), "": 1},
			Inner: codecInner{Theme: s, Sizes: []int16{int16(n)}, Flags: map[string]bool{s: true}},
			Role:  codecRole(s), Upper: s, Nested: [][]string{{s}, nil, {}}, ByName: map[codecRole]codecRole{codecRole(s): "r"},
		}
		for _, v := range []any{
			s, x, float32(x), uint64(n), int8(n), tm, p, []codecProfile{p, {}},
			map[string]string{s: s, s + "k": ""}, map[string]float64{s: x}, []string{s, "", s},
			[]float32{float32(x)}, []time.Time{tm}, map[string][]string{s: {s}, "nil": nil},
			map[string]string(nil), []string(nil), []string{},
		} {
			checkStructuredEncode(t, v)
		}
	})
}

// checkStructuredEncode asserts that encodeStructured gives json.Marshal's
// bytes, and that it declines a value of a type it handles only where
// encoding/json fails.
func checkStructuredEncode(t *testing.T, v any) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, ok := encodeStructured(v)
	switch {
	case ok && (wantErr != nil || !bytes.Equal(got, want)):
		t.Fatalf("encodeStructured(%#v) = %s; encoding/json gives %s, %v", v, got, want, wantErr)
	case !ok && wantErr == nil:
		t.Fatalf("encodeStructured(%#v) declined; encoding/json gives %s", v, want)
	}
}

type codecMarshaler struct{ A string }

func (codecMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"custom"`), nil }

type codecTextKey string

func (k *codecTextKey) UnmarshalText(b []byte) error { *k = codecTextKey("t" + string(b)); return nil }

type codecEmbedded struct {
	codecInner
	B string
}

// The codec handles the shapes it was made for and declines the rest,
// which encoding/json then treats its own way.
func TestCodecPlans(t *testing.T) {
	for _, c := range []struct {
		v    any
		want bool
	}{
		{map[string]string{}, true},
		{[]int{}, true},
		{codecProfile{}, true},
		{map[codecRole][]codecInner{}, true},
		{time.Time{}, true},
		{[]byte{}, false},
		{[2]string{}, false},
		{map[int]string{}, false},
		{map[codecTextKey]string{}, false},
		{map[string]any{}, false},
		{[]*string{}, false},
		{json.Number("1"), false},
		{json.RawMessage{}, false},
		{codecMarshaler{}, false},
		{[]codecMarshaler{}, false},
		{codecEmbedded{}, false},
		{struct {
			N int `json:"n,string"`
		}{}, false},
		{struct {
			A string `json:"B"`
			B string
		}{}, false},
		{struct{ P *int }{}, false},
		{struct {
			D time.Duration `json:"d,omitzero"`
		}{}, true},
	} {
		if got := planFor(reflect.TypeOf(c.v)) != nil; got != c.want {
			t.Errorf("planFor(%T) handled = %v, want %v", c.v, got, c.want)
		}
	}
}

// Values stored by Set come back whole from Get's decoding, and a value the
// codec declines is still decoded, by encoding/json.
func TestStructuredRoundTrip(t *testing.T) {
	p := codecProfile{
		ID: 7, Name: "Ada <admin>", Age: 36, Small: -3, Score: 0.1, Admin: true,
		Seen:  time.Date(2026, 11, 30, 9, 41, 7, 123, time.UTC),
		Tags:  []string{"a", "b\n"},
		Prefs: map[string]int{"x": 1},
		Inner: codecInner{Theme: "dark", Sizes: []int16{}, Notes: map[string]string{"k": "v"}},
		Role:  "editor", Lower: "l", Upper: "U", Ünicode: "ü",
	}
	for _, v := range []any{
		map[string]string{"theme": "dark", "lang": "en-GB", "q": `"quoted" & <tagged>`},
		[]string{"/a", "/b", "ünï"},
		p,
		map[string]any{"mixed": []any{1.5, "x", true, nil}}, // encoding/json's
	} {
		raw, err := encodeValue(v)
		if err != nil {
			t.Fatal(err)
		}
		got := reflect.New(reflect.TypeOf(v))
		if err := decodeValue(raw, got.Interface()); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		if !reflect.DeepEqual(got.Elem().Interface(), v) {
			t.Errorf("round trip of %#v gave %#v", v, got.Elem().Interface())
		}
	}
}

// Decoding into a value that is not zero is encoding/json's: a map merges.
func TestStructuredDecodeMerges(t *testing.T) {
	m := map[string]string{"kept": "1"}
	if err := decodeJSON([]byte(`{"new":"2"}`), &m); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"kept": "1", "new": "2"}; !reflect.DeepEqual(m, want) {
		t.Errorf("decoding into a non-empty map gave %v, want %v", m, want)
	}
}

// The strings of a decoded value share the stored bytes: decoding a map of
// strings allocates the map alone (five blocks for 20 entries).
func TestStructuredDecodeAllocs(t *testing.T) {
	m := map[string]string{}
	for i := range 20 {
		m["key"+strconv.Itoa(i)] = strings.Repeat("v", i)
	}
	raw, err := encodeValue(m)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		var got map[string]string
		if err := decodeJSON(raw, &got); err != nil || len(got) != 20 {
			t.Fatalf("decode: %v, %d entries", err, len(got))
		}
	})
	if allocs > 5 {
		t.Errorf("decoding a 20-entry map[string]string made %.0f allocations, want at most 5", allocs)
	}
}

func BenchmarkStructuredDecode(b *testing.B) {
	m := map[string]string{}
	for i := range 20 {
		m["key"+strconv.Itoa(i)] = strings.Repeat("v", 16)
	}
	p := codecProfile{ID: 1, Name: "Alice", Email: "alice@example.com", Seen: time.Now().UTC(), Admin: true}
	l := make([]string, 20)
	for i := range l {
		l[i] = "/projects/" + strconv.Itoa(i)
	}
	for _, c := range []struct {
		name   string
		v      any
		target func() any
	}{
		{"map", m, func() any { return new(map[string]string) }},
		{"struct", p, func() any { return new(codecProfile) }},
		{"slice", l, func() any { return new([]string) }},
	} {
		raw, err := encodeValue(c.v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/codec", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeJSON(raw, c.target()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := json.Unmarshal(raw, c.target()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// plainWord agrees with plainByte on every byte in every position, and on
// words of random bytes.
func TestPlainWord(t *testing.T) {
	check := func(w [8]byte) {
		want := true
		for _, c := range w {
			want = want && plainByte[c]
		}
		x := uint64(0)
		for i := 7; i >= 0; i-- {
			x = x<<8 | uint64(w[i])
		}
		if got := plainWord(x); got != want {
			t.Fatalf("plainWord(% x) = %v, want %v", w, got, want)
		}
	}
	for pos := range 8 {
		for c := range 256 {
			w := [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
			w[pos] = byte(c)
			check(w)
			w = [8]byte{0x7f, '"' + 1, '\\' - 1, 0x20, 0x21, 0x5d, 0x23, 0x7e}
			w[pos] = byte(c)
			check(w)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		var w [8]byte
		for i := range w {
			w[i] = byte(rng.IntN(256))
		}
		check(w)
	}
}
