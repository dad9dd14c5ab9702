// Package metafile reads the small JSON metadata files of a model directory
// (config.json, generation_config.json, adapter_config.json, …) with a bound on
// their size, and checks that a document is a JSON object before it is decoded
// into a struct, so that a wrong file gives a message naming what it holds
// instead of a Go type.
package metafile

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// MaxJSONBytes bounds a JSON metadata file. The largest real ones (a
// config.json with a long id2label table) are a few hundred KiB.
const MaxJSONBytes = 16 << 20

// TooLargeError is a file larger than the limit its reader allows.
type TooLargeError struct {
	Path  string
	Size  int64 // the size found (at least Limit+1 when the file grew while read)
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than the %s allowed for this file (%s)", e.Path, formatSize(e.Limit), formatSize(e.Size))
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Read returns the contents of path, or a *TooLargeError when it holds more
// than limit bytes. Open errors are returned as os.Open gives them (a
// *fs.PathError matching fs.ErrNotExist and the like).
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > limit {
		return nil, &TooLargeError{Path: path, Size: fi.Size(), Limit: limit}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: path, Size: int64(len(data)), Limit: limit}
	}
	return data, nil
}

// CheckObject reports an error unless data is (starts like) a JSON object:
// "want a JSON object, got an array". Invalid JSON is left to the decoder.
func CheckObject(data []byte) error {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) > 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		data = bytes.TrimLeft(data[3:], " \t\r\n") // UTF-8 byte-order mark
	}
	if len(data) == 0 {
		return fmt.Errorf("want a JSON object, got an empty file")
	}
	got := ""
	switch c := data[0]; {
	case c == '{':
		return nil
	case c == '[':
		got = "an array"
	case c == '"':
		got = "a string"
	case c == '-' || c >= '0' && c <= '9':
		got = "a number"
	case bytes.HasPrefix(data, []byte("true")) || bytes.HasPrefix(data, []byte("false")):
		got = "a boolean"
	case bytes.HasPrefix(data, []byte("null")):
		got = "null"
	default:
		return nil // not JSON at all: the decoder says where
	}
	return fmt.Errorf("want a JSON object, got %s", got)
}
