package dataset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A row is decoded without encoding/json's reflection: the object is validated once
// (json.Valid allocates nothing), split into its members as sub-slices of the line, and
// only the values a row kind uses are decoded, each string straight into its final
// allocation. A long row so costs about its own size once more (its text), not the
// several copies of map[string]json.RawMessage + json.Unmarshal.

// value is one member of a row: JSON text, or (from CSV and parquet) a string already
// decoded.
type value struct {
	raw    []byte // JSON text; nil when isText
	text   string
	isText bool
}

func (v value) isNull() bool { return !v.isText && string(v.raw) == "null" }

// member is a key and its value.
type member struct {
	key string
	val value
}

// members is an object's members in document order.
type members []member

// get returns the value of key; with duplicate keys the last wins, as in encoding/json.
func (ms members) get(key string) (value, bool) {
	if key == "" {
		return value{}, false
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].key == key {
			return ms[i].val, true
		}
	}
	return value{}, false
}

func (ms members) has(key string) bool {
	_, ok := ms.get(key)
	return ok
}

// jsonKind names the kind of a JSON value by its first byte, for messages.
func jsonKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// describe names a value for an error: its kind and (abbreviated) text.
func describe(raw []byte) string {
	return fmt.Sprintf("a JSON %s (%s)", jsonKind(raw), abbreviate(raw))
}

// splitObject validates data as one JSON object and returns its members, whose values
// are sub-slices of data.
func splitObject(data []byte) (members, error) {
	if !json.Valid(data) {
		var v struct{}
		err := json.Unmarshal(data, &v) // only for the message: it stops at the syntax error
		if err == nil {
			err = fmt.Errorf("not valid JSON")
		}
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	p := skipSpace(data, 0)
	if data[p] != '{' {
		return nil, fmt.Errorf("want a JSON object, got %s", describe(data))
	}
	return objectMembers(data, p)
}

// objectMembers splits the valid JSON object starting at data[p].
func objectMembers(data []byte, p int) (members, error) {
	var ms members
	p = skipSpace(data, p+1)
	if data[p] == '}' {
		return ms, nil
	}
	for {
		end := skipValue(data, p)
		key, err := decodeString(data[p:end])
		if err != nil {
			return nil, err
		}
		p = skipSpace(data, end)
		p = skipSpace(data, p+1) // ':'
		end = skipValue(data, p)
		ms = append(ms, member{key: key, val: value{raw: data[p:end]}})
		p = skipSpace(data, end)
		if data[p] == '}' {
			return ms, nil
		}
		p = skipSpace(data, p+1) // ','
	}
}

// arrayElements returns the elements of the valid JSON array raw.
func arrayElements(raw []byte) [][]byte {
	p := skipSpace(raw, 0)
	var out [][]byte
	p = skipSpace(raw, p+1)
	if raw[p] == ']' {
		return out
	}
	for {
		end := skipValue(raw, p)
		out = append(out, raw[p:end])
		p = skipSpace(raw, end)
		if raw[p] == ']' {
			return out
		}
		p = skipSpace(raw, p+1)
	}
}

func skipSpace(data []byte, p int) int {
	for p < len(data) {
		switch data[p] {
		case ' ', '\t', '\r', '\n':
			p++
		default:
			return p
		}
	}
	return p
}

// skipValue returns the end of the valid JSON value that starts at data[p].
func skipValue(data []byte, p int) int {
	switch data[p] {
	case '"':
		return skipString(data, p)
	case '{', '[':
		depth := 0
		for p < len(data) {
			switch data[p] {
			case '"':
				p = skipString(data, p)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return p + 1
				}
			}
			p++
		}
		return p
	}
	for p < len(data) {
		switch data[p] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return p
		}
		p++
	}
	return p
}

// skipString returns the end of the string whose opening quote is data[p].
func skipString(data []byte, p int) int {
	p++
	for p < len(data) {
		i := bytes.IndexAny(data[p:], `"\`)
		if i < 0 {
			return len(data)
		}
		p += i
		if data[p] == '\\' {
			p += 2
			continue
		}
		return p + 1
	}
	return p
}

// decodeString decodes a valid JSON string (quotes included) as encoding/json does,
// invalid UTF-8 and lone surrogates becoming U+FFFD, into one allocation.
func decodeString(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", fmt.Errorf("want a string, got %s", describe(raw))
	}
	body := raw[1 : len(raw)-1]
	esc := bytes.IndexByte(body, '\\')
	if esc < 0 && utf8.Valid(body) {
		return string(body), nil
	}
	var b strings.Builder
	b.Grow(len(body))
	for len(body) > 0 {
		switch {
		case body[0] == '\\':
			if len(body) < 2 {
				return "", fmt.Errorf("bad escape in string")
			}
			switch body[1] {
			case '"', '\\', '/':
				b.WriteByte(body[1])
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, ok := hex4(body[2:])
				if !ok {
					return "", fmt.Errorf("bad \\u escape in string")
				}
				body = body[6:]
				if utf16.IsSurrogate(r) {
					if len(body) >= 6 && body[0] == '\\' && body[1] == 'u' {
						if r2, ok := hex4(body[2:]); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								b.WriteRune(dec)
								body = body[6:]
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				b.WriteRune(r)
				continue
			default:
				return "", fmt.Errorf("bad escape in string")
			}
			body = body[2:]
		default:
			// The run up to the next escape: at once when it is valid UTF-8, else rune by
			// rune with U+FFFD for each invalid byte.
			n := bytes.IndexByte(body, '\\')
			if n < 0 {
				n = len(body)
			}
			seg := body[:n]
			if utf8.Valid(seg) {
				b.Write(seg)
			} else {
				for len(seg) > 0 {
					r, size := utf8.DecodeRune(seg)
					if r == utf8.RuneError && size == 1 {
						b.WriteRune(utf8.RuneError)
					} else {
						b.Write(seg[:size])
					}
					seg = seg[size:]
				}
			}
			body = body[n:]
		}
	}
	return b.String(), nil
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
		r = r*16 + rune(c)
	}
	return r, true
}

// decodeInts decodes a valid JSON array of integers; key names it in errors.
func decodeInts(raw []byte, key string) ([]int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("%q: want a list of integers, got %s", key, describe(raw))
	}
	out := make([]int, 0, bytes.Count(raw, []byte{','})+1)
	p := skipSpace(raw, 1)
	if raw[p] == ']' {
		return out, nil
	}
	for i := 0; ; i++ {
		end := skipValue(raw, p)
		v, err := strconv.Atoi(string(raw[p:end]))
		if err != nil {
			return nil, fmt.Errorf("%q[%d]: want an integer, got %s", key, i, describe(raw[p:end]))
		}
		out = append(out, v)
		p = skipSpace(raw, end)
		if raw[p] == ']' {
			return out, nil
		}
		p = skipSpace(raw, p+1)
	}
}

// decodeMessages decodes a valid JSON list of {"role":…, "content":…} objects. A null or
// missing content is empty (an assistant turn that only calls tools); other keys are
// ignored.
func decodeMessages(raw []byte, key string) ([]Message, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf(`%q: want a list of {"role":…, "content":…} objects, got %s`, key, describe(raw))
	}
	elems := arrayElements(raw)
	msgs := make([]Message, len(elems))
	for i, e := range elems {
		if e[0] != '{' {
			return nil, fmt.Errorf(`%q[%d]: want a {"role":…, "content":…} object, got %s`, key, i, describe(e))
		}
		ms, err := objectMembers(e, 0)
		if err != nil {
			return nil, err
		}
		for _, f := range []struct {
			name string
			dst  *string
		}{{"role", &msgs[i].Role}, {"content", &msgs[i].Content}} {
			v, ok := ms.get(f.name)
			if !ok || v.isNull() {
				continue
			}
			if *f.dst, err = decodeString(v.raw); err != nil {
				return nil, fmt.Errorf("%q[%d].%s: want a string, got %s", key, i, f.name, describe(v.raw))
			}
		}
	}
	return msgs, nil
}
