package kvsession

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

func sampleRecord() record {
	return record{
		created:   1700000000123,
		updated:   1700000005000,
		deadline:  1700086400123,
		idle:      1700001805000,
		permanent: true,
		user:      "ada",
		userAgent: "Mozilla/5.0",
		remote:    "127.0.0.1:1234",
		fields:    []field{{"count", []byte("3")}, {"name", []byte(`"Ada"`)}},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []record{sampleRecord(), {}, {created: -5, updated: 1 << 50}} {
		got, err := decodeRecord(r.encode())
		if err != nil {
			t.Fatal(err)
		}
		checkPacked(t, got)
		got.unpack()
		if !reflect.DeepEqual(got, r) {
			t.Errorf("decode(encode(r)) = %+v, want %+v", got, r)
		}
	}
}

func TestCorruptRecords(t *testing.T) {
	good := sampleRecord().encode()
	cases := map[string][]byte{
		"empty":         {},
		"magic":         append([]byte{'x'}, good[1:]...),
		"format":        append([]byte{recordMagic, 9}, good[2:]...),
		"trailing":      append(append([]byte{}, good...), 0),
		"huge count":    {recordMagic, recordFormat, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge string":   {recordMagic, recordFormat, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad varint":    {recordMagic, recordFormat, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"gob, not ours": []byte("\x0c\xff\x81\x04\x01\x02\xff\x82\x00\x01\x0c\x01\x10\x00\x00"),
	}
	for i := range len(good) {
		cases["truncated"+string(rune('a'+i%26))+string(rune('0'+i/26))] = good[:i]
	}
	for name, b := range cases {
		if _, err := decodeRecord(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decodeRecord = %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecodeRecord checks that any bytes decode to a record or ErrCorrupt,
// never a panic, and that what decodes encodes back to the same record.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(sampleRecord().encode())
	f.Add((&record{}).encode())
	f.Add([]byte{recordMagic, recordFormat})
	f.Add([]byte("k\x01\x00\x00\x00\x00\x00\x00\x01\x01a\x01["))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeRecord error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		checkPacked(t, r)
		encoded := r.encode()
		again, err := decodeRecord(encoded)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !bytes.Equal(again.encode(), encoded) {
			t.Fatalf("re-encoded record encodes as %q, then %q", encoded, again.encode())
		}
		// What encode writes decodes packed: a read allocates nothing.
		if again.packed == nil && len(again.fields) != 0 {
			t.Fatalf("a record as encode writes it decoded unpacked")
		}
		// A record decoded from a longer form than encode writes is kept
		// unpacked, and its re-encoding packed: compare them unpacked.
		r.unpack()
		again.unpack()
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoded record does not round-trip")
		}
		// Reading a value never panics, whatever it holds.
		for _, fl := range r.fields {
			var v any
			_ = decodeValue(fl.raw, &v)
		}
	})
}

// TestRecordTimesOutOfRange checks that a record holding the zero time's
// instant is corrupt, and that every other time decodes as it was written
// and is the time.Time of its milliseconds.
func TestRecordTimesOutOfRange(t *testing.T) {
	zeroInstant := time.Time{}.UnixMilli()
	for i, r := range []record{{created: zeroInstant}, {updated: zeroInstant}, {deadline: zeroInstant}, {idle: zeroInstant}} {
		if _, err := decodeRecord(r.encode()); !errors.Is(err, ErrCorrupt) {
			t.Errorf("record time %d holding the zero time's instant: decodeRecord = %v, want ErrCorrupt", i, err)
		}
	}
	for _, ms := range []int64{zeroInstant + 1, zeroInstant - 1, -1, 1, math.MaxInt64, math.MinInt64, math.MaxInt64 / 2, math.MinInt64 / 2} {
		r := record{created: ms, updated: ms, deadline: ms, idle: ms}
		got, err := decodeRecord(r.encode())
		got.unpack()
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("times of %d ms: decodeRecord = %+v, %v; want them back", ms, got, err)
		}
		if back := time.UnixMilli(ms).UnixMilli(); back != ms {
			t.Errorf("time.UnixMilli(%d) round-trips to %d, yet the record accepted it", ms, back)
		}
	}
}

// checkPacked checks that a decoded record, its values still packed,
// reads, counts, sizes and encodes them as it does once they are unpacked
// into fields: the first stored value under a key is the one read, as
// index finds it.
func checkPacked(t *testing.T, packed record) {
	t.Helper()
	unpacked := packed
	unpacked.unpack()
	if packed.len() != len(unpacked.fields) {
		t.Errorf("packed len() = %d, unpacked %d", packed.len(), len(unpacked.fields))
	}
	if got, want := packed.encode(), unpacked.encode(); !bytes.Equal(got, want) {
		t.Errorf("packed encode() = %q, unpacked %q", got, want)
	}
	if got, want := packed.encodedSize(), len(packed.encode()); got != want {
		t.Errorf("packed encodedSize() = %d, len(encode()) = %d", got, want)
	}
	for _, f := range append(unpacked.fields, field{key: "absent\x00"}) {
		got, gotOK := packed.get(f.key)
		want, wantOK := unpacked.get(f.key)
		if gotOK != wantOK || !bytes.Equal(got, want) {
			t.Errorf("get(%q) = %q, %v packed; %q, %v unpacked", f.key, got, gotOK, want, wantOK)
		}
	}
}

// TestNonCanonicalListEncodesAsEncodeWrites checks that a record whose
// value list writes a count or a length in a longer form than encode does
// (0x80 0x00 for 0, 0x81 0x00 for 1) decodes, and encodes back as encode
// writes it, whichever count or length it is.
func TestNonCanonicalListEncodesAsEncodeWrites(t *testing.T) {
	header := (&record{}).encode()
	header = header[:len(header)-1] // without its value count
	// Each part is what the record stores and what encode writes for it.
	type part struct{ stored, written string }
	long := func(v byte) part { return part{string([]byte{v | 0x80, 0x00}), string([]byte{v})} }
	short := func(v byte) part { return part{string([]byte{v}), string([]byte{v})} }
	text := func(s string) part { return part{s, s} }
	for name, parts := range map[string][]part{
		"count":              {long(1), short(1), text("a"), short(1), text("1")},
		"key length":         {short(1), long(1), text("a"), short(1), text("1")},
		"empty key length":   {short(1), long(0), short(1), text("1")},
		"value length":       {short(1), short(1), text("a"), long(1), text("1")},
		"second value":       {short(2), short(1), text("a"), short(1), text("1"), short(1), text("b"), long(1), text("2")},
		"every length, long": {long(1), long(1), text("a"), long(1), text("1")},
	} {
		stored, written := string(header), string(header)
		for _, p := range parts {
			stored += p.stored
			written += p.written
		}
		r, err := decodeRecord([]byte(stored))
		if err != nil {
			t.Fatalf("%s: decodeRecord = %v", name, err)
		}
		checkPacked(t, r)
		if got := r.encode(); string(got) != written {
			t.Errorf("%s: encode() = %q, want %q", name, got, written)
		}
	}
}

func TestJSONDepth(t *testing.T) {
	for in, want := range map[string]int{
		`1`: 0, `[1]`: 1, `{"a":[{}]}`: 3, `"[[["`: 0, `"\"["`: 0, `[`: -1, `]`: -1, `"open`: -1,
	} {
		if got := jsonDepth([]byte(in)); got != want {
			t.Errorf("jsonDepth(%s) = %d, want %d", in, got, want)
		}
	}
	deep := bytes.Repeat([]byte("["), maxJSONDepth+1)
	deep = append(deep, bytes.Repeat([]byte("]"), maxJSONDepth+1)...)
	var v any
	if err := decodeValue(deep, &v); err == nil {
		t.Error("decodeValue accepted a value nested deeper than the limit")
	}
}

func TestEncodedSizeIsExact(t *testing.T) {
	for _, r := range []record{sampleRecord(), {}, {created: -5, fields: []field{{string(make([]byte, 300)), make([]byte, 20000)}}}} {
		if got, want := r.encodedSize(), len(r.encode()); got != want {
			t.Errorf("encodedSize = %d, len(encode()) = %d", got, want)
		}
	}
}

// TestDecodeRecordAllocatesNothing checks what a read-only request relies
// on for its speed: decoding a record and reading a value from it, packed,
// allocate nothing.
func TestDecodeRecordAllocatesNothing(t *testing.T) {
	b := sampleRecord().encode()
	allocs := testing.AllocsPerRun(100, func() {
		r, err := decodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := r.get("name"); !ok || string(v) != `"Ada"` {
			t.Fatalf(`get("name") = %q, %v`, v, ok)
		}
	})
	if allocs != 0 {
		t.Errorf("decodeRecord and get allocate %v times, want 0", allocs)
	}
}
