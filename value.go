package kvsession

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Values are stored as their JSON encoding. Strings, integers and
// booleans, the bulk of what sessions hold, take fast paths that give the
// same bytes as encoding/json (so an unchanged value is still seen as
// unchanged) and accept only what encoding/json would decode the same way.
// Maps, slices and flat structs of such values go through the codec of
// valuecodec.go, with the same guarantee; anything else goes through
// encoding/json.

// encodeValue returns the JSON encoding of v.
func encodeValue(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		if jsonPlain(x) {
			b := make([]byte, 0, len(x)+2)
			b = append(b, '"')
			b = append(b, x...)
			return append(b, '"'), nil
		}
	case int:
		return strconv.AppendInt(make([]byte, 0, 20), int64(x), 10), nil
	case int64:
		return strconv.AppendInt(make([]byte, 0, 20), x, 10), nil
	case bool:
		return strconv.AppendBool(make([]byte, 0, 5), x), nil
	}
	if raw, ok := encodeStructured(v); ok {
		return raw, nil // nested no deeper than maxCodecPlanDepth
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if jsonDepth(raw) > maxJSONDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrTooLarge, maxJSONDepth)
	}
	return raw, nil
}

// jsonPlain reports whether encoding/json writes s as it is, in quotes: no
// character it escapes (quotes, backslashes, control characters, the HTML
// characters <, > and &) and nothing but ASCII. Such a string is also the
// inside of a JSON string that needs no unescaping.
func jsonPlain[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x80, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// decodeScalar decodes raw into *string, *int, *int64 or *bool when raw is
// a plain JSON value of that type, and reports whether it did. When it
// reports false, v is unchanged and encoding/json must decode raw. v never
// escapes. A string shares raw's bytes, as the structured codec's strings
// do: raw is a value of a loaded record, whose bytes nothing writes to.
func decodeScalar(raw []byte, v any) bool {
	switch p := v.(type) {
	case *string:
		if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && jsonPlain(raw[1:n-1]) {
			*p = aliasString(raw[1 : n-1])
			return true
		}
	case *int:
		if n, ok := parseInt(raw); ok && int64(int(n)) == n {
			*p = int(n)
			return true
		}
	case *int64:
		if n, ok := parseInt(raw); ok {
			*p = n
			return true
		}
	case *bool:
		switch string(raw) {
		case "true":
			*p = true
			return true
		case "false":
			*p = false
			return true
		}
	}
	return false
}

// parseInt parses a JSON integer of at most 18 digits, which cannot
// overflow an int64: -?(0|[1-9][0-9]*). It reports false for anything else
// (fractions, exponents, longer numbers), which encoding/json then handles.
func parseInt(raw []byte) (int64, bool) {
	neg := len(raw) > 0 && raw[0] == '-'
	digits := raw
	if neg {
		digits = raw[1:]
	}
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// decodeJSON decodes a stored JSON value into v, a pointer: with the codec
// of valuecodec.go when it can (it checks nesting as it goes), else with
// encoding/json after checking its nesting against the limit.
func decodeJSON(raw []byte, v any) error {
	if decodeStructured(raw, v) {
		return nil
	}
	if jsonDepth(raw) > maxJSONDepth {
		return fmt.Errorf("%w: value nested deeper than %d", ErrCorrupt, maxJSONDepth)
	}
	return json.Unmarshal(raw, v)
}
