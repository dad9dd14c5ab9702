//go:build unix

package safetensors

import (
	"bytes"
	"errors"
	"github.com/bidora/bidora/internal/testutil"
	"os"
	"path/filepath"
	"testing"

	"github.com/bidora/bidora/internal/atomicfile"
)

// WriteFile and the streaming Writer refuse to replace a symlink or a FIFO,
// leaving it as it was, and write the same bytes as Encode.
func TestWriteRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	real, link, fifo := testutil.SpecialFiles(t, dir, ".safetensors")
	tensor, err := NewTensor("w", F32, []int{2}, []float32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, fifo} {
		before, _ := os.Lstat(p)
		if err := WriteFile(p, []Tensor{tensor}, nil); !errors.Is(err, atomicfile.ErrNotReplaceable) {
			t.Fatalf("WriteFile(%s): err = %v", p, err)
		}
		if _, err := NewWriter(p, []TensorInfo{{Name: "w", DType: F32, Shape: []int{2}}}, nil); !errors.Is(err, atomicfile.ErrNotReplaceable) {
			t.Fatalf("NewWriter(%s): err = %v", p, err)
		}
		if after, _ := os.Lstat(p); after == nil || after.Mode() != before.Mode() {
			t.Fatalf("%s was replaced", p)
		}
	}
	// A symlink that appears while the file is streamed is refused at Close.
	late := filepath.Join(dir, "late.safetensors")
	w, err := NewWriter(late, []TensorInfo{{Name: "w", DType: F32, Shape: []int{2}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("w", tensor.Data); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, late); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, atomicfile.ErrNotReplaceable) {
		t.Fatalf("Close over a new symlink: err = %v", err)
	}
	if b, _ := os.ReadFile(real); string(b) != "keep" {
		t.Fatalf("symlink target changed: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestEncodeMatchesWriteFile(t *testing.T) {
	a, _ := NewTensor("b", F16, []int{3}, []float32{1, 2, 3})
	b, _ := NewTensor("a", F32, []int{2, 1}, []float32{4, 5})
	md := map[string]string{"format": "pt"}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteFile(path, []Tensor{a, b}, md); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(path)
	var got bytes.Buffer
	if err := Encode(&got, []Tensor{a, b}, md); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatal("Encode and WriteFile differ")
	}
	bad := a
	bad.Data = bad.Data[:2]
	if err := Encode(&got, []Tensor{bad}, nil); err == nil {
		t.Fatal("short tensor data was accepted")
	}
}
