package kvsession

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"
)

// A stored record is a small binary header followed by the session's
// values, each kept as the JSON encoding of what the application stored:
//
//	magic 'k', format 2
//	varint  created     Unix milliseconds
//	varint  updated     Unix milliseconds of the last change to the values
//	varint  deadline    Unix milliseconds: the end of the absolute lifetime
//	varint  idle        Unix milliseconds: the idle deadline as of this write, 0 for none
//	uvarint flags       bit 0: permanent
//	string  user        (uvarint length, bytes)
//	string  user mark   the user's revocation mark when the session was bound
//	string  user agent
//	string  remote address
//	uvarint n, then n × (string key, string JSON value)
//
// Format 1, written by earlier versions, lacks the deadlines and the mark;
// it still decodes (the deadline is then created plus Config.Lifetime).
// The record's own deadlines let any reader (a tool, another version of
// the application, Config.NoStoreTTL) judge its expiry without the
// application's Config; the store's expiry, when it keeps one, is the same
// instant or, after an idle refresh (Touch), a later one.
//
// The format is data only: decoding runs no code and allocates in
// proportion to the input, and JSON values are decoded only when the
// application reads them, into the type it asks for.

const (
	recordMagic   = 'k'
	recordFormat  = 2
	recordFormat1 = 1
	flagPermanent = 1 << 0

	// maxJSONDepth bounds the nesting of a stored value, so that a hostile
	// or corrupt record cannot exhaust the stack of a decoder.
	maxJSONDepth = 64
)

type field struct {
	key string
	raw []byte // JSON
}

// A record's times are Unix milliseconds, as stored: a Session carries its
// record, and four int64s keep it (with the writer and context allocated
// with it) in a smaller size class than four time.Times would.
type record struct {
	created   int64 // Unix milliseconds
	updated   int64 // Unix milliseconds
	deadline  int64 // Unix milliseconds; 0 in a format 1 record
	idle      int64 // Unix milliseconds: the idle deadline as of the last write; 0 for none
	permanent bool
	user      string
	mark      string // the user's revocation mark at binding: see revoke.go
	userAgent string
	remote    string
	// The values: fields, or, in a record decoded and not yet changed,
	// packed, the encoded field list (its count, then the keys and values)
	// that get reads without decoding it. Code that reads or changes
	// fields directly calls unpack first; index, set and del do.
	fields []field
	packed []byte
}

// get returns the value under key, reading a packed record in place.
func (r *record) get(key string) ([]byte, bool) {
	if r.packed == nil {
		if i := r.index(key); i >= 0 {
			return r.fields[i].raw, true
		}
		return nil, false
	}
	// The packed list was checked when the record was decoded.
	d := decoder{b: r.packed}
	for n := d.uvarint(); n > 0; n-- {
		k, v := d.bytes(), d.bytes()
		if string(k) == key {
			return v, true
		}
	}
	return nil, false
}

// unpack decodes a packed field list into fields: one allocation.
func (r *record) unpack() {
	if r.packed == nil {
		return
	}
	d := decoder{b: r.packed}
	r.packed = nil
	n := d.uvarint()
	if n == 0 {
		return
	}
	r.fields = make([]field, n)
	for i := range r.fields {
		r.fields[i].key = aliasString(d.bytes())
		r.fields[i].raw = d.bytes()
	}
}

// len returns the number of values.
func (r *record) len() int {
	if r.packed != nil {
		n, _ := binary.Uvarint(r.packed)
		return int(n)
	}
	return len(r.fields)
}

func (r *record) index(key string) int {
	r.unpack()
	for i := range r.fields {
		if r.fields[i].key == key {
			return i
		}
	}
	return -1
}

func (r *record) set(key string, raw []byte) {
	if i := r.index(key); i >= 0 {
		r.fields[i].raw = raw
		return
	}
	r.fields = append(r.fields, field{key, raw})
}

func (r *record) del(key string) {
	if i := r.index(key); i >= 0 {
		r.fields = append(r.fields[:i], r.fields[i+1:]...)
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func stringLen(n int) int { return uvarintLen(uint64(n)) + n }

// encodedSize returns the exact length of r.encode().
func (r record) encodedSize() int {
	n := 2 + varintLen(r.created) + varintLen(r.updated) + varintLen(r.deadline) + varintLen(r.idle) +
		1 + stringLen(len(r.user)) + stringLen(len(r.mark)) + stringLen(len(r.userAgent)) +
		stringLen(len(r.remote))
	if r.packed != nil {
		return n + len(r.packed)
	}
	n += uvarintLen(uint64(len(r.fields)))
	for _, f := range r.fields {
		n += stringLen(len(f.key)) + stringLen(len(f.raw))
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

func (r record) encode() []byte {
	b := make([]byte, 0, r.encodedSize())
	b = append(b, recordMagic, recordFormat)
	b = binary.AppendVarint(b, r.created)
	b = binary.AppendVarint(b, r.updated)
	b = binary.AppendVarint(b, r.deadline)
	b = binary.AppendVarint(b, r.idle)
	var flags uint64
	if r.permanent {
		flags |= flagPermanent
	}
	b = binary.AppendUvarint(b, flags)
	b = appendString(b, r.user)
	b = appendString(b, r.mark)
	b = appendString(b, r.userAgent)
	b = appendString(b, r.remote)
	if r.packed != nil {
		return append(b, r.packed...)
	}
	b = binary.AppendUvarint(b, uint64(len(r.fields)))
	for _, f := range r.fields {
		b = appendString(b, f.key)
		b = binary.AppendUvarint(b, uint64(len(f.raw)))
		b = append(b, f.raw...)
	}
	return b
}

// unixMilli returns t in Unix milliseconds, and 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// milliTime returns the time of ms Unix milliseconds, and the zero time for
// 0, which the record's optional times (deadline, idle) keep for none.
func milliTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = ErrCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

// millis reads a time in Unix milliseconds. Every count is a time.Time
// but one: the zero time's instant, which the session keeps for "none". A
// record that holds it is corrupt, since it could not be written back as
// it was read.
func (d *decoder) millis() int64 {
	ms := d.varint()
	if ms == zeroTimeMillis && d.err == nil {
		d.err = fmt.Errorf("%w: time out of range", ErrCorrupt)
	}
	return ms
}

// zeroTimeMillis is the zero time.Time in Unix milliseconds.
var zeroTimeMillis = time.Time{}.UnixMilli()

// aliasString returns b as a string without copying it. The strings of a
// decoded record alias the stored bytes, as its values do: those belong to
// the caller (see Entry.Value), which never writes to them, so the strings
// never change. Keeping one keeps the record's bytes (at most
// Config.MaxRecordBytes) alive.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = ErrCorrupt
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// decodeRecord decodes a stored record. The record's values and strings
// alias b, which the caller must not change afterwards. It checks the whole
// record but allocates nothing: the values stay packed until a change or a
// listing needs them as fields (see record.unpack).
func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) < 2 || b[0] != recordMagic {
		return r, ErrCorrupt
	}
	format := b[1]
	if format != recordFormat && format != recordFormat1 {
		return r, fmt.Errorf("%w: unknown format %d", ErrCorrupt, b[1])
	}
	d := decoder{b: b[2:]}
	r.created = d.millis()
	r.updated = d.millis()
	if format >= recordFormat {
		r.deadline = d.millis()
		r.idle = d.millis()
	}
	flags := d.uvarint()
	r.permanent = flags&flagPermanent != 0
	r.user = aliasString(d.bytes())
	if format >= recordFormat {
		r.mark = aliasString(d.bytes())
	}
	r.userAgent, r.remote = aliasString(d.bytes()), aliasString(d.bytes())
	packed := d.b
	n := d.uvarint()
	// Each field takes at least two bytes, which bounds unpack's
	// allocation by the input's size.
	if d.err == nil && n > uint64(len(d.b)/2) {
		return record{}, ErrCorrupt
	}
	// size is the list's length as encode writes it: every count and
	// length in its shortest form.
	count, size := n, uvarintLen(n)
	for ; n > 0 && d.err == nil; n-- {
		size += stringLen(len(d.bytes()))
		size += stringLen(len(d.bytes()))
	}
	if d.err != nil {
		return record{}, d.err
	}
	if len(d.b) != 0 {
		return record{}, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	if count > 0 { // no values: no fields
		r.packed = packed[:len(packed):len(packed)]
		if size != len(packed) { // not as encode writes it: unpack, so that encode does
			r.unpack()
		}
	}
	return r, nil
}

// jsonDepth returns the deepest nesting of arrays and objects in a JSON
// text, ignoring brackets inside strings, or -1 if the brackets are
// unbalanced.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			deepest = max(deepest, depth)
		case ']', '}':
			depth--
			if depth < 0 {
				return -1
			}
		}
	}
	if depth != 0 || inString {
		return -1
	}
	return deepest
}
