package gguf

import (
	"bytes"
	"strings"
	"testing"
)

// A tensor written in parts gives the same file as written whole; too many
// bytes, or a tensor left part-written, is an error.
func TestWriteTensorPart(t *testing.T) {
	heads := []TensorHeader{{Name: "a", Shape: []int{2, 3}, Type: F32}, {Name: "b", Shape: []int{5}, Type: F32}}
	a, b := bytes.Repeat([]byte{1}, 24), bytes.Repeat([]byte{2}, 20)
	write := func(parts [][]byte) ([]byte, error) {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, []KV{{KeyArchitecture, "llama"}}, heads)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			if err := w.WriteTensorPart(map[bool]string{true: "a", false: "b"}[p[0] == 1], p); err != nil {
				return nil, err
			}
		}
		return buf.Bytes(), w.Close()
	}
	whole, err := write([][]byte{a, b})
	if err != nil {
		t.Fatal(err)
	}
	parts, err := write([][]byte{a[:12], a[12:], b[:4], b[4:8], b[8:]})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(whole, parts) {
		t.Error("parts differ from the whole")
	}
	if _, err := write([][]byte{append(a, 1)}); err == nil || !strings.Contains(err.Error(), "needs 24 bytes") {
		t.Errorf("too many bytes: %v", err)
	}
	if _, err := write([][]byte{a, b[:8]}); err == nil || !strings.Contains(err.Error(), "has 8 of its 20 bytes") {
		t.Errorf("part-written tensor: %v", err)
	}
}
