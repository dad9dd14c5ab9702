package safetensors

import (
	"bytes"
	"github.com/bidora/bidora/internal/testutil"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzRoundTrip feeds arbitrary file images to the parser. Parsing must not
// allocate far more than the image, and an accepted file, written back with
// WriteFile and opened again (through Open, the path a user's file takes),
// must hold the same tensors (names, dtypes, shapes, bytes) and metadata;
// Encode gives exactly the bytes WriteFile wrote.
func FuzzRoundTrip(f *testing.F) {
	f.Add(image(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, []byte{0, 0, 128, 63, 0, 0, 0, 64}))
	f.Add(image(`{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[3],"data_offsets":[4,7]}}`, []byte{1, 2, 3, 4, 5, 6, 7}))
	f.Add(image(`{"z":{"dtype":"I64","shape":[0,5],"data_offsets":[0,0]},"s":{"dtype":"F16","shape":[],"data_offsets":[0,2]}}`, []byte{0, 60}))
	f.Add(image(`{"__metadata__":null,"x":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, []byte{1}))
	f.Add(image(`{"":{"dtype":"U16","shape":[1],"data_offsets":[0,2]}}`, []byte{1, 2}))
	f.Add(image(`{"a":{"dtype":"F32","shape":[9223372036854775807],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add(image(`{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"F64","shape":[1],"data_offsets":[4,12]}}`, make([]byte, 12)))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		var sf *File
		var err error
		if n := testutil.AllocBytes(func() { sf, err = parse("fuzz", data) }); n > 32*uint64(len(data))+1<<20 {
			t.Fatalf("parse of %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			return
		}
		var tensors []Tensor
		for _, name := range sf.Names() {
			if name == "" {
				return // the writer refuses empty names, which the reader tolerates
			}
			info, _ := sf.Info(name)
			b, err := sf.Bytes(name)
			if err != nil {
				t.Fatal(err)
			}
			tensors = append(tensors, Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: b})
		}
		path := filepath.Join(dir, "rt.safetensors")
		if err := WriteFile(path, tensors, sf.Metadata()); err != nil {
			t.Fatalf("writing an accepted file back: %v", err)
		}
		sf2, err := Open(path)
		if err != nil {
			t.Fatalf("opening the written file: %v", err)
		}
		defer sf2.Close()
		if !slices.Equal(sf2.Names(), sf.Names()) {
			t.Fatalf("round trip names %q, want %q", sf2.Names(), sf.Names())
		}
		if m1, m2 := sf.Metadata(), sf2.Metadata(); !maps.Equal(m1, m2) {
			t.Fatalf("round trip metadata %v, want %v", m2, m1)
		}
		for _, tt := range tensors {
			info, _ := sf2.Info(tt.Name)
			b, err := sf2.Bytes(tt.Name)
			if err != nil || info.DType != tt.DType || !slices.Equal(info.Shape, tt.Shape) || !bytes.Equal(b, tt.Data) {
				t.Fatalf("round trip tensor %q = %+v, %v", tt.Name, info, err)
			}
		}
		var enc bytes.Buffer
		if err := Encode(&enc, tensors, sf.Metadata()); err != nil {
			t.Fatal(err)
		}
		if written, err := os.ReadFile(path); err != nil || !bytes.Equal(written, enc.Bytes()) {
			t.Fatalf("Encode and WriteFile lay the file out differently (%v)", err)
		}
	})
}
