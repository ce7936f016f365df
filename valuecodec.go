package kvsession

import (
	"encoding"
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// A codec for the structured values sessions hold most: maps with string
// keys, slices, and flat structs, of strings, numbers, booleans and
// time.Time. It gives exactly what encoding/json gives, or it declines and
// encoding/json does the work:
//
//   - A type is handled only if every part of it is one of those shapes,
//     with no pointers, interfaces, arrays, embedded fields, []byte,
//     json.Number, ",string" options, clashing field names, or methods that
//     change how encoding/json treats it (Marshaler, Unmarshaler and their
//     Text forms; time.Time's own are reproduced exactly).
//   - Decoding is into a zero value only (a non-empty map merges, a
//     non-empty struct keeps fields: encoding/json's business), and declines
//     at the first byte it is not sure about: a syntax error, a value of the
//     wrong type, a number it cannot convert exactly, a string with invalid
//     UTF-8 or a surrogate escape, an escaped key in a struct, a struct key
//     given twice. The target is zero again when it declines.
//
// Plans, one per type, are cached. The strings of a decoded value share
// the bytes decoded (and a block for those with escapes): a value of a
// loaded record, whose bytes nothing writes to. Keeping one of them keeps
// the record's bytes alive.

// codecKind is the shape of a plan.
type codecKind uint8

const (
	ckString codecKind = iota + 1
	ckBool
	ckInt
	ckUint
	ckFloat
	ckTime
	ckMap
	ckSlice
	ckStruct
)

// codecPlan says how to encode and decode one type.
type codecPlan struct {
	kind   codecKind
	typ    reflect.Type
	size   uintptr    // of the type; of an element for ckSlice
	elem   *codecPlan // ckMap values, ckSlice elements
	fields []codecField
	depth  int // deepest nesting of arrays and objects a value can have
	// For ckMap: types for the scratch values of encoding.
	keyType, elemSlice reflect.Type
}

// codecField is one encoded field of a struct.
type codecField struct {
	name      string
	folded    string // the name as encoding/json folds it for matching
	key       string // `"name":`, as encoding/json writes it
	offset    uintptr
	plan      *codecPlan
	omitEmpty bool
	omitZero  bool
}

// codecPlans caches a *codecPlan per reflect.Type; unsupported types map to
// noPlan.
var codecPlans sync.Map

var noPlan = &codecPlan{}

var (
	timeType             = reflect.TypeFor[time.Time]()
	numberType           = reflect.TypeFor[json.Number]()
	mapStringStringType  = reflect.TypeFor[map[string]string]()
	jsonMarshalerType    = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshalerType  = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType    = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType  = reflect.TypeFor[encoding.TextUnmarshaler]()
	isZeroerType         = reflect.TypeFor[interface{ IsZero() bool }]()
	maxCodecPlanDepth    = 16
	maxCodecStructFields = 64 // a decoded struct's fields are marked in a uint64
)

// planFor returns the plan for t, or nil if the codec does not handle t.
func planFor(t reflect.Type) *codecPlan {
	if p, ok := codecPlans.Load(t); ok {
		return nilIfNoPlan(p.(*codecPlan))
	}
	p := buildPlan(t, map[reflect.Type]bool{})
	if p == nil {
		p = noPlan
	}
	p2, _ := codecPlans.LoadOrStore(t, p)
	return nilIfNoPlan(p2.(*codecPlan))
}

func nilIfNoPlan(p *codecPlan) *codecPlan {
	if p == noPlan {
		return nil
	}
	return p
}

// customJSON reports whether encoding/json would call a method of t (or *t)
// instead of looking at its shape.
func customJSON(t reflect.Type) bool {
	for _, i := range [...]reflect.Type{jsonMarshalerType, jsonUnmarshalerType, textMarshalerType, textUnmarshalerType} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}

func buildPlan(t reflect.Type, visiting map[reflect.Type]bool) *codecPlan {
	if t == timeType {
		return &codecPlan{kind: ckTime, typ: t, size: t.Size()}
	}
	if t == numberType || customJSON(t) || visiting[t] {
		return nil
	}
	p := &codecPlan{typ: t, size: t.Size()}
	switch t.Kind() {
	case reflect.String:
		p.kind = ckString
	case reflect.Bool:
		p.kind = ckBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.kind = ckInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		p.kind = ckUint
	case reflect.Float32, reflect.Float64:
		p.kind = ckFloat
	case reflect.Map:
		kt := t.Key()
		if kt.Kind() != reflect.String || customJSON(kt) {
			return nil
		}
		visiting[t] = true
		p.elem = buildPlan(t.Elem(), visiting)
		delete(visiting, t)
		if p.elem == nil {
			return nil
		}
		p.kind, p.depth = ckMap, p.elem.depth+1
		p.keyType, p.elemSlice = kt, reflect.SliceOf(t.Elem())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 { // []byte is base64
			return nil
		}
		visiting[t] = true
		p.elem = buildPlan(t.Elem(), visiting)
		delete(visiting, t)
		if p.elem == nil {
			return nil
		}
		p.kind, p.depth, p.size = ckSlice, p.elem.depth+1, t.Elem().Size()
	case reflect.Struct:
		visiting[t] = true
		ok := p.structFields(visiting)
		delete(visiting, t)
		if !ok {
			return nil
		}
		p.kind = ckStruct
	default:
		return nil
	}
	if p.depth > maxCodecPlanDepth {
		return nil
	}
	return p
}

// structFields fills in the fields of a struct plan, as encoding/json's
// typeFields finds them, and reports false for a struct outside the codec.
func (p *codecPlan) structFields(visiting map[reflect.Type]bool) bool {
	t := p.typ
	names := map[string]bool{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return false
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if !isValidTag(name) {
			name = sf.Name
		}
		f := codecField{name: name, offset: sf.Offset}
		for opts != "" {
			var opt string
			opt, opts, _ = strings.Cut(opts, ",")
			switch opt {
			case "string":
				return false
			case "omitempty":
				f.omitEmpty = true
			case "omitzero":
				f.omitZero = true
			}
		}
		if f.omitZero && sf.Type != timeType &&
			(sf.Type.Implements(isZeroerType) || reflect.PointerTo(sf.Type).Implements(isZeroerType)) {
			return false
		}
		if names[name] {
			return false // encoding/json drops both, or picks one
		}
		names[name] = true
		if f.plan = buildPlan(sf.Type, visiting); f.plan == nil {
			return false
		}
		f.folded = string(appendFoldedName(nil, []byte(name)))
		f.key = string(appendJSONString(nil, name)) + ":"
		p.depth = max(p.depth, f.plan.depth+1)
		p.fields = append(p.fields, f)
	}
	p.depth = max(p.depth, 1)
	return len(p.fields) <= maxCodecStructFields
}

// isValidTag is encoding/json's test of a json tag name.
func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// appendFoldedName is encoding/json's case folding of names, which it uses
// to match keys to fields when no name matches exactly.
func appendFoldedName(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// --- encoding ----------------------------------------------------------------

// encodeStructured returns json.Marshal(v) for the types the codec handles,
// and false for the others.
func encodeStructured(v any) ([]byte, bool) {
	switch x := v.(type) {
	case map[string]string:
		return encodeMapStringString(x), true
	case []string:
		if x == nil {
			return []byte("null"), true
		}
		n := 2
		for _, s := range x {
			n += len(s) + 3
		}
		b := append(make([]byte, 0, n), '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		return append(b, ']'), true
	}
	t := reflect.TypeOf(v)
	if t == nil {
		return nil, false
	}
	p := planFor(t)
	if p == nil {
		return nil, false
	}
	// An addressable copy, for the pointer arithmetic of the plans.
	c := reflect.New(t)
	c.Elem().Set(reflect.ValueOf(v))
	b, ok := p.encode(make([]byte, 0, 64), c.UnsafePointer())
	return b, ok
}

func encodeMapStringString(m map[string]string) []byte {
	if m == nil {
		return []byte("null")
	}
	keys := make([]string, 0, len(m))
	n := 2
	for k, v := range m {
		keys = append(keys, k)
		n += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	b := append(make([]byte, 0, n), '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// encode appends the value of p's type at ptr to b. It reports false for a
// value encoding/json refuses (a NaN, a time it cannot write).
func (p *codecPlan) encode(b []byte, ptr unsafe.Pointer) ([]byte, bool) {
	switch p.kind {
	case ckString:
		return appendJSONString(b, *(*string)(ptr)), true
	case ckBool:
		return strconv.AppendBool(b, *(*bool)(ptr)), true
	case ckInt:
		return strconv.AppendInt(b, loadInt(ptr, p.size), 10), true
	case ckUint:
		return strconv.AppendUint(b, loadUint(ptr, p.size), 10), true
	case ckFloat:
		return appendJSONFloat(b, loadFloat(ptr, p.size), int(p.size*8))
	case ckTime:
		return appendJSONTime(b, *(*time.Time)(ptr))
	case ckMap:
		return p.encodeMap(b, ptr)
	case ckSlice:
		h := (*sliceHeader)(ptr)
		if h.data == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i := range h.len {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = p.elem.encode(b, unsafe.Add(h.data, uintptr(i)*p.size)); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case ckStruct:
		b = append(b, '{')
		first := true
		for i := range p.fields {
			f := &p.fields[i]
			fp := unsafe.Add(ptr, f.offset)
			if f.omitEmpty && f.plan.empty(fp) || f.omitZero && f.plan.zero(fp) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, f.key...)
			var ok bool
			if b, ok = f.plan.encode(b, fp); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	}
	return b, false
}

type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

func (p *codecPlan) encodeMap(b []byte, ptr unsafe.Pointer) ([]byte, bool) {
	if p.typ == mapStringStringType {
		return append(b, encodeMapStringString(*(*map[string]string)(ptr))...), true
	}
	m := reflect.NewAt(p.typ, ptr).Elem()
	if m.IsNil() {
		return append(b, "null"...), true
	}
	n := m.Len()
	keys := make([]string, n)
	order := make([]int, n)
	vals := reflect.MakeSlice(p.elemSlice, n, n)
	k := reflect.New(p.keyType).Elem()
	it := m.MapRange()
	for i := 0; it.Next() && i < n; i++ {
		k.SetIterKey(it)
		keys[i] = k.String()
		vals.Index(i).SetIterValue(it)
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return strings.Compare(keys[i], keys[j]) })
	base := vals.UnsafePointer()
	size := p.elem.typ.Size()
	b = append(b, '{')
	for j, i := range order {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, keys[i])
		b = append(b, ':')
		var ok bool
		if b, ok = p.elem.encode(b, unsafe.Add(base, uintptr(i)*size)); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// empty is encoding/json's isEmptyValue, for omitempty.
func (p *codecPlan) empty(ptr unsafe.Pointer) bool {
	switch p.kind {
	case ckString:
		return len(*(*string)(ptr)) == 0
	case ckBool:
		return !*(*bool)(ptr)
	case ckInt:
		return loadInt(ptr, p.size) == 0
	case ckUint:
		return loadUint(ptr, p.size) == 0
	case ckFloat:
		return loadFloat(ptr, p.size) == 0
	case ckMap:
		return reflect.NewAt(p.typ, ptr).Elem().Len() == 0
	case ckSlice:
		return (*sliceHeader)(ptr).len == 0
	}
	return false // structs, times
}

// zero is what encoding/json tests for omitzero: reflect's IsZero, or
// time.Time's.
func (p *codecPlan) zero(ptr unsafe.Pointer) bool {
	if p.kind == ckTime {
		return (*time.Time)(ptr).IsZero()
	}
	return reflect.NewAt(p.typ, ptr).Elem().IsZero()
}

func loadInt(ptr unsafe.Pointer, size uintptr) int64 {
	switch size {
	case 1:
		return int64(*(*int8)(ptr))
	case 2:
		return int64(*(*int16)(ptr))
	case 4:
		return int64(*(*int32)(ptr))
	}
	return *(*int64)(ptr)
}

func loadUint(ptr unsafe.Pointer, size uintptr) uint64 {
	switch size {
	case 1:
		return uint64(*(*uint8)(ptr))
	case 2:
		return uint64(*(*uint16)(ptr))
	case 4:
		return uint64(*(*uint32)(ptr))
	}
	return *(*uint64)(ptr)
}

func loadFloat(ptr unsafe.Pointer, size uintptr) float64 {
	if size == 4 {
		return float64(*(*float32)(ptr))
	}
	return *(*float64)(ptr)
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's appendString with HTML escaping, as
// json.Marshal writes strings.
func appendJSONString(dst []byte, src string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(src); {
		if c := src[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, src[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(src[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, src[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, src[start:]...)
	return append(dst, '"')
}

// appendJSONFloat is encoding/json's float encoder.
func appendJSONFloat(b []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// appendJSONTime writes what time.Time's MarshalJSON writes, and reports
// false where it fails.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	n0 := len(b)
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	s := b[n0+1:]
	switch {
	case len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-': // year outside [0,9999]
		return b, false
	case s[len(s)-1] != 'Z':
		c := s[len(s)-len("Z07:00")]
		hour := 10*int(s[len(s)-5]-'0') + int(s[len(s)-4]-'0')
		if '0' <= c && c <= '9' || hour >= 24 {
			return b, false
		}
	}
	return append(b, '"'), true
}

// --- decoding ----------------------------------------------------------------

// decodeStructured decodes raw into v, a pointer to a zero value of a type
// the codec handles, exactly as json.Unmarshal would, and reports whether it
// did. The strings in v share raw, which must not change afterwards. When it reports false, *v is zero and encoding/json must decode raw.
func decodeStructured(raw []byte, v any) bool {
	d := valueDecoder{data: raw}
	if m, ok := v.(*map[string]string); ok && *m == nil {
		// The commonest structured value, without reflection.
		var out map[string]string
		if d.mapStringString(&out, 0) && d.end() {
			*m = out
			return true
		}
		return false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	p := planFor(rv.Type().Elem())
	if p == nil || !rv.Elem().IsZero() {
		return false
	}
	if d.value(p, rv.UnsafePointer(), 0) && d.end() {
		return true
	}
	rv.Elem().SetZero()
	return false
}

// valueDecoder reads one JSON text. Its methods report false at anything
// they do not decode exactly as encoding/json.
type valueDecoder struct {
	data  []byte
	i     int
	arena []byte // the bytes of the strings with escapes
}

// end reports whether only space is left.
func (d *valueDecoder) end() bool {
	d.space()
	return d.i == len(d.data)
}

func (d *valueDecoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips space and returns the next byte, or 0 at the end.
func (d *valueDecoder) next() byte {
	d.space()
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

// literal consumes lit (null, true, false) if it is next.
func (d *valueDecoder) literal(lit string) bool {
	if len(d.data)-d.i >= len(lit) && string(d.data[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// value decodes a value of p's type into ptr, which holds a zero value.
// depth is the nesting of arrays and objects around it.
func (d *valueDecoder) value(p *codecPlan, ptr unsafe.Pointer, depth int) bool {
	c := d.next()
	switch c {
	case 0:
		return false // the end, or a NUL: not JSON
	case 'n':
		return d.literal("null") // leaves the zero value, as encoding/json does for these types
	}
	switch p.kind {
	case ckString:
		if c != '"' {
			return false
		}
		s, ok := d.str()
		*(*string)(ptr) = s
		return ok
	case ckBool:
		switch {
		case d.literal("true"):
			*(*bool)(ptr) = true
			return true
		case d.literal("false"):
			return true
		}
		return false
	case ckInt:
		return d.int(ptr, p.size)
	case ckUint:
		return d.uint(ptr, p.size)
	case ckFloat:
		return d.float(ptr, p.size)
	case ckTime:
		return d.time((*time.Time)(ptr))
	case ckMap:
		if p.typ == mapStringStringType {
			return d.mapStringString((*map[string]string)(ptr), depth)
		}
		return d.mapValue(p, ptr, depth)
	case ckSlice:
		return d.slice(p, ptr, depth)
	case ckStruct:
		return d.structValue(p, ptr, depth)
	}
	return false
}

// str decodes the string at d.i (its opening quote). Strings without
// escapes are copied into the arena as they are.
func (d *valueDecoder) str() (string, bool) {
	d.i++ // the quote
	start := d.i
	for d.i < len(d.data) {
		// Eight plain bytes at a time, then one.
		for d.i+8 <= len(d.data) && plainWord(binary.LittleEndian.Uint64(d.data[d.i:])) {
			d.i += 8
		}
		for d.i < len(d.data) && plainByte[d.data[d.i]] {
			d.i++
		}
		if d.i == len(d.data) {
			break
		}
		switch c := d.data[d.i]; {
		case c == '"':
			s := d.keep(start, d.i)
			d.i++
			return s, true
		case c == '\\':
			return d.escapedStr(start)
		case c < 0x20:
			return "", false
		default:
			r, n := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && n == 1 {
				return "", false // encoding/json replaces it
			}
			d.i += n
		}
	}
	return "", false
}

// plainWord reports whether the eight bytes of x are all plain (see
// plainByte): none is a quote or a backslash, below 0x20 or above 0x7f.
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(x uint64) uint64 { return (x - ones) & ^x & highs }
	return hasZero(x^(ones*'"'))|hasZero(x^(ones*'\\'))|(x-ones*0x20)&^x&highs|x&highs == 0
}

// plainByte marks the bytes that stand for themselves in a JSON string:
// ASCII but control characters, quotes and backslashes.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// keep returns the text data[start:end], which has no escapes, as a
// string that shares data's bytes: data is a value of a loaded record,
// whose bytes nothing writes to.
func (d *valueDecoder) keep(start, end int) string {
	return aliasString(d.data[start:end])
}

// escapedStr finishes a string that has an escape; its text started at
// start, and d.i is at the first backslash.
func (d *valueDecoder) escapedStr(start int) (string, bool) {
	if cap(d.arena)-len(d.arena) < len(d.data)-start {
		// Unescaped, the strings are no longer than the text: one block,
		// the rest of the text's length.
		d.arena = make([]byte, 0, len(d.data)-start)
	}
	n := len(d.arena)
	buf := append(d.arena, d.data[start:d.i]...)
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			d.arena = buf
			if len(buf) == n {
				return "", true
			}
			return unsafe.String(&buf[n], len(buf)-n), true
		case c == '\\':
			if d.i+1 >= len(d.data) {
				return "", false
			}
			e := d.data[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := hex4(d.data[d.i:])
				if !ok || 0xD800 <= r && r < 0xE000 {
					return "", false // surrogates: encoding/json's rules
				}
				buf = utf8.AppendRune(buf, r)
				d.i += 4
			default:
				return "", false
			}
		case c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			buf = append(buf, d.data[d.i:d.i+size]...)
			d.i += size
		}
	}
	return "", false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number consumes a JSON number and returns its text, and whether it is
// an integer (no fraction, no exponent).
func (d *valueDecoder) number() (text []byte, integer, ok bool) {
	start := d.i
	b := d.data
	i := d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return nil, false, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return nil, false, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return nil, false, false
		}
	}
	d.i = i
	return b[start:i], integer, true
}

func (d *valueDecoder) int(ptr unsafe.Pointer, size uintptr) bool {
	text, integer, ok := d.number()
	if !ok || !integer {
		return false
	}
	n, ok := parseInt(text)
	if !ok {
		return false
	}
	switch size {
	case 1:
		if n != int64(int8(n)) {
			return false
		}
		*(*int8)(ptr) = int8(n)
	case 2:
		if n != int64(int16(n)) {
			return false
		}
		*(*int16)(ptr) = int16(n)
	case 4:
		if n != int64(int32(n)) {
			return false
		}
		*(*int32)(ptr) = int32(n)
	default:
		*(*int64)(ptr) = n
	}
	return true
}

func (d *valueDecoder) uint(ptr unsafe.Pointer, size uintptr) bool {
	text, integer, ok := d.number()
	if !ok || !integer || text[0] == '-' {
		return false // ParseUint refuses "-0" too
	}
	n, ok := parseInt(text)
	if !ok {
		return false
	}
	u := uint64(n)
	switch size {
	case 1:
		if u > math.MaxUint8 {
			return false
		}
		*(*uint8)(ptr) = uint8(u)
	case 2:
		if u > math.MaxUint16 {
			return false
		}
		*(*uint16)(ptr) = uint16(u)
	case 4:
		if u > math.MaxUint32 {
			return false
		}
		*(*uint32)(ptr) = uint32(u)
	default:
		*(*uint64)(ptr) = u
	}
	return true
}

func (d *valueDecoder) float(ptr unsafe.Pointer, size uintptr) bool {
	text, _, ok := d.number()
	if !ok {
		return false
	}
	// The text is a JSON number, which ParseFloat reads as encoding/json
	// has it read.
	f, err := strconv.ParseFloat(unsafe.String(&text[0], len(text)), int(size*8))
	if err != nil {
		return false
	}
	if size == 4 {
		*(*float32)(ptr) = float32(f)
	} else {
		*(*float64)(ptr) = f
	}
	return true
}

// time hands the string's raw text to time.Time's UnmarshalJSON, as
// encoding/json does.
func (d *valueDecoder) time(t *time.Time) bool {
	if d.i >= len(d.data) || d.data[d.i] != '"' {
		return false
	}
	start := d.i
	for i := d.i + 1; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			d.i = i + 1
			return t.UnmarshalJSON(d.data[start:d.i]) == nil
		case c == '\\', c < 0x20, c >= utf8.RuneSelf:
			return false // not an RFC 3339 time, or not for us to judge
		}
	}
	return false
}

// count returns the number of elements of the array or object that starts
// at d.i, or 0 if it is empty (or broken: decoding then fails anyway).
func (d *valueDecoder) count() int {
	b := d.data
	depth, n, seen := 0, 0, false
	for i := d.i + 1; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			seen = true
		case '[', '{':
			depth++
			seen = true
		case ']', '}':
			if depth == 0 {
				if seen {
					n++
				}
				return n
			}
			depth--
		case ',':
			if depth == 0 {
				n++
			}
		case ' ', '\t', '\n', '\r':
		default:
			seen = true
		}
	}
	return 0
}

// open consumes the '{' or '[' at d.i and reports whether the container
// stays within the nesting limit; it returns the new depth.
func (d *valueDecoder) open(c byte, depth int) (int, bool) {
	if d.i >= len(d.data) || d.data[d.i] != c || depth+1 > maxJSONDepth {
		return depth, false
	}
	d.i++
	return depth + 1, true
}

// more is called after an element: it consumes ',' and reports true, or
// consumes the closing byte and reports false with ok true.
func (d *valueDecoder) more(close byte) (more, ok bool) {
	switch d.next() {
	case ',':
		d.i++
		return true, true
	case close:
		d.i++
		return false, true
	}
	return false, false
}

// key decodes an object key and its colon.
func (d *valueDecoder) key() (string, bool) {
	if d.next() != '"' {
		return "", false
	}
	k, ok := d.str()
	if !ok || d.next() != ':' {
		return "", false
	}
	d.i++
	return k, true
}

func (d *valueDecoder) mapStringString(m *map[string]string, depth int) bool {
	switch d.next() {
	case 'n':
		return d.literal("null")
	case '{':
	default:
		return false
	}
	if _, ok := d.open('{', depth); !ok {
		return false
	}
	// The entries, gathered first so that the map is made at its size.
	var buf [32][2]string
	entries := buf[:0]
	if d.next() == '}' {
		d.i++
	} else {
		for {
			k, ok := d.key()
			if !ok {
				return false
			}
			var v string
			switch d.next() {
			case '"':
				if v, ok = d.str(); !ok {
					return false
				}
			case 'n':
				if !d.literal("null") {
					return false
				}
			default:
				return false
			}
			entries = append(entries, [2]string{k, v})
			more, ok := d.more('}')
			if !ok {
				return false
			}
			if !more {
				break
			}
		}
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e[0]] = e[1] // a later duplicate wins, as in encoding/json
	}
	*m = out
	return true
}

func (d *valueDecoder) mapValue(p *codecPlan, ptr unsafe.Pointer, depth int) bool {
	n := d.count()
	depth, ok := d.open('{', depth)
	if !ok {
		return false
	}
	m := reflect.MakeMapWithSize(p.typ, n)
	if d.next() == '}' {
		d.i++
		reflect.NewAt(p.typ, ptr).Elem().Set(m)
		return true
	}
	k := reflect.New(p.keyType).Elem()
	kp := (*string)(k.Addr().UnsafePointer())
	e := reflect.New(p.elem.typ).Elem()
	ep := e.Addr().UnsafePointer()
	for {
		key, ok := d.key()
		if !ok {
			return false
		}
		*kp = key
		e.SetZero()
		if !d.value(p.elem, ep, depth) {
			return false
		}
		m.SetMapIndex(k, e)
		more, ok := d.more('}')
		if !ok {
			return false
		}
		if !more {
			reflect.NewAt(p.typ, ptr).Elem().Set(m)
			return true
		}
	}
}

func (d *valueDecoder) slice(p *codecPlan, ptr unsafe.Pointer, depth int) bool {
	n := d.count()
	depth, ok := d.open('[', depth)
	if !ok {
		return false
	}
	s := reflect.MakeSlice(p.typ, n, n)
	base := s.UnsafePointer()
	i := 0
	if d.next() == ']' {
		d.i++
	} else {
		for {
			if i >= n {
				return false
			}
			if !d.value(p.elem, unsafe.Add(base, uintptr(i)*p.size), depth) {
				return false
			}
			i++
			more, ok := d.more(']')
			if !ok {
				return false
			}
			if !more {
				break
			}
		}
	}
	if i != n {
		return false
	}
	reflect.NewAt(p.typ, ptr).Elem().Set(s)
	return true
}

func (d *valueDecoder) structValue(p *codecPlan, ptr unsafe.Pointer, depth int) bool {
	depth, ok := d.open('{', depth)
	if !ok {
		return false
	}
	if d.next() == '}' {
		d.i++
		return true
	}
	var seen uint64
	for {
		if d.next() != '"' {
			return false
		}
		key, ok := d.plainKey()
		if !ok {
			return false
		}
		if d.next() != ':' {
			return false
		}
		d.i++
		if f := p.field(key); f >= 0 {
			if seen&(1<<f) != 0 {
				return false // a second value for the field: encoding/json's merging rules
			}
			seen |= 1 << f
			if !d.value(p.fields[f].plan, unsafe.Add(ptr, p.fields[f].offset), depth) {
				return false
			}
		} else if !d.skip(depth) {
			return false
		}
		more, ok := d.more('}')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// plainKey returns the text of a key without escapes, in place.
func (d *valueDecoder) plainKey() ([]byte, bool) {
	d.i++
	start := d.i
	ascii := true
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			k := d.data[start:d.i]
			d.i++
			return k, ascii || utf8.Valid(k)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return nil, false
}

// field returns the index of the field key names, as encoding/json matches
// it (the exact name, else the first whose name folds alike), or -1.
func (p *codecPlan) field(key []byte) int {
	for i := range p.fields {
		if p.fields[i].name == string(key) {
			return i
		}
	}
	var buf [64]byte
	folded := appendFoldedName(buf[:0], key)
	for i := range p.fields {
		if p.fields[i].folded == string(folded) {
			return i
		}
	}
	return -1
}

// skip consumes any JSON value, checking its syntax as encoding/json's
// scanner does.
func (d *valueDecoder) skip(depth int) bool {
	switch c := d.next(); c {
	case '"':
		return d.skipString()
	case '{', '[':
		depth, ok := d.open(c, depth)
		if !ok {
			return false
		}
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		if d.next() == close {
			d.i++
			return true
		}
		for {
			if c == '{' {
				if d.next() != '"' || !d.skipString() || d.next() != ':' {
					return false
				}
				d.i++
			}
			if !d.skip(depth) {
				return false
			}
			more, ok := d.more(close)
			if !ok {
				return false
			}
			if !more {
				return true
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	_, _, ok := d.number()
	return ok
}

// skipString consumes a string as the scanner accepts it: any bytes but
// control characters, and valid escapes.
func (d *valueDecoder) skipString() bool {
	d.i++
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			return true
		case c == '\\':
			if d.i+1 >= len(d.data) {
				return false
			}
			switch d.data[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				if _, ok := hex4(d.data[d.i+2:]); !ok {
					return false
				}
				d.i += 6
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			d.i++
		}
	}
	return false
}
