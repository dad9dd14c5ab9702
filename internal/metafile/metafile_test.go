package metafile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("x", n)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		path  string
		limit int64
		want  string // error text, "" for success
	}{
		{write("small.json", 10), 10, ""},
		{write("big.json", 11), 10, "big.json is larger than the 10 bytes allowed for this file (11 bytes)"},
		{write("huge.json", 3<<20), 2 << 20, "huge.json is larger than the 2 MiB allowed for this file (3 MiB)"},
		{filepath.Join(dir, "missing.json"), 10, "no such file"},
	}
	for _, c := range cases {
		data, err := Read(c.path, c.limit)
		switch {
		case c.want == "" && (err != nil || int64(len(data)) != c.limit):
			t.Errorf("%s: %d bytes, %v", c.path, len(data), err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.path, err, c.want)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing.json"), 1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v does not match fs.ErrNotExist", err)
	}
	var tl *TooLargeError
	if _, err := Read(filepath.Join(dir, "big.json"), 10); !errors.As(err, &tl) || tl.Limit != 10 {
		t.Errorf("big file: %v is not a *TooLargeError", err)
	}
}

func TestCheckObject(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"a": 1}`, ""},
		{"\ufeff \n{}", ""},
		{`[1, 2]`, "want a JSON object, got an array"},
		{` "x"`, "got a string"},
		{`-1`, "got a number"},
		{`true`, "got a boolean"},
		{`null`, "got null"},
		{``, "got an empty file"},
		{`xyz`, ""}, // not JSON: left to the decoder
	}
	for _, c := range cases {
		err := CheckObject([]byte(c.in))
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
}
