package gorillasession

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Values are stored as kvsession stores them, as JSON, so that native
// kvsession handlers, the Admin API and the command-line tool read them.
// Only the types that come back from JSON as the same Go type are
// accepted, so that a handler's type assertion on a later request never
// fails: nil, bool, string, int, float64, and []interface{} and
// map[string]interface{} holding those.

// errType is the error for a value that would not round-trip.
func errType(key string, v any) error {
	return fmt.Errorf("gorillasession: value under %q: type %T does not round-trip through JSON (store nil, bool, string, int, float64, or []interface{} / map[string]interface{} of those)", key, v)
}

// encode returns the JSON encoding of v, or an error if v does not
// round-trip. A float64 is written with a fraction or exponent ("3.0"), so
// that it comes back as a float64 and not as an int.
func encode(key string, v any) ([]byte, error) {
	return appendValue(nil, key, v, 0)
}

// maxDepth bounds the nesting of a value, below kvsession's own limit.
const maxDepth = 32

func appendValue(b []byte, key string, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("gorillasession: value under %q: nested deeper than %d", key, maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("gorillasession: value under %q: %v has no JSON encoding", key, x)
		}
		start := len(b)
		raw, _ := json.Marshal(x) // finite: cannot fail
		b = append(b, raw...)
		if !bytes.ContainsAny(b[start:], ".eE") {
			b = append(b, ".0"...)
		}
		return b, nil
	case string:
		raw, _ := json.Marshal(x) // a string: cannot fail
		return append(b, raw...), nil
	case []interface{}:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, key, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]interface{}:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			raw, _ := json.Marshal(k)
			b = append(append(b, raw...), ':')
			var err error
			if b, err = appendValue(b, key, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, errType(key, v)
}

// decode returns the Go value of a stored JSON value: numbers without a
// fraction or exponent that fit an int become an int, other numbers a
// float64, arrays []interface{} and objects map[string]interface{}.
func decode(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return convert(v), nil
}

func convert(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !bytes.ContainsAny([]byte(s), ".eE") {
			if n, err := strconv.Atoi(s); err == nil {
				return n
			}
		}
		f, _ := strconv.ParseFloat(s, 64) // valid JSON: the nearest float64
		return f
	case []interface{}:
		for i := range x {
			x[i] = convert(x[i])
		}
	case map[string]interface{}:
		for k := range x {
			x[k] = convert(x[k])
		}
	}
	return v
}
