package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func content(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = string(b)
	}
	return out
}

func TestWriteSet(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSet(dir, []File{{"a", content("1")}, {"b", content("2")}}); err != nil {
		t.Fatal(err)
	}
	if got := readDir(t, dir); len(got) != 2 || got["a"] != "1" || got["b"] != "2" {
		t.Fatalf("dir = %v", got)
	}
	if err := WriteSet(dir, []File{{"a", content("x")}, {"a", content("y")}}); err == nil {
		t.Fatal("a name twice was accepted")
	}
	if err := WriteSet(dir, []File{{"../a", content("x")}}); err == nil {
		t.Fatal("a path outside dir was accepted")
	}
}

// A failure while writing the second file (a full disk, say) leaves none of
// the new files visible and no temporary files behind.
func TestWriteSetFailureOnSecondFileKeepsOldSet(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSet(dir, []File{{"a", content("old a")}, {"b", content("old b")}}); err != nil {
		t.Fatal(err)
	}
	full := errors.New("no space left on device")
	err := WriteSet(dir, []File{
		{"a", content("new a")},
		{"b", func(w io.Writer) error { io.WriteString(w, "half"); return full }},
		{"c", content("new c")},
	})
	if !errors.Is(err, full) || !strings.Contains(err.Error(), "b") {
		t.Fatalf("err = %v", err)
	}
	if got := readDir(t, dir); len(got) != 2 || got["a"] != "old a" || got["b"] != "old b" {
		t.Fatalf("after a failed set: %v", got)
	}
	// The same into an empty directory: nothing appears.
	empty := t.TempDir()
	if err := WriteSet(empty, []File{{"a", content("new a")}, {"b", func(io.Writer) error { return full }}}); !errors.Is(err, full) {
		t.Fatalf("err = %v", err)
	}
	if got := readDir(t, empty); len(got) != 0 {
		t.Fatalf("files visible after a failed set: %v", got)
	}
}

func TestWriteSetRenameFailureNamesReplacedFiles(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("boom")
	setHook = func(i int) error {
		if i == 1 {
			return boom
		}
		return nil
	}
	defer func() { setHook = func(int) error { return nil } }()
	err := WriteSet(dir, []File{{"a", content("1")}, {"b", content("2")}})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if got := readDir(t, dir); len(got) != 1 || got["a"] != "1" {
		t.Fatalf("temporary files left or wrong state: %v", got)
	}
}
