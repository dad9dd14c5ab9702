package gguf

import (
	"bytes"
	"encoding/binary"
	"github.com/bidora/bidora/internal/testutil"
	"math/bits"
	"reflect"
	"strings"
	"testing"
)

// elemBytes is the exact byte size of n elements of t, and false when it
// does not fit in a uint64 or t is not sized by this package.
func elemBytes(t TensorType, n uint64) (uint64, bool) {
	var num, den uint64 = 0, 1
	switch t {
	case F32, I32:
		num = 4
	case F16, BF16, I16:
		num = 2
	case I8:
		num = 1
	case I64, F64:
		num = 8
	case Q8_0:
		num, den = 34, 32
	default:
		return 0, false
	}
	hi, lo := bits.Mul64(n/den, num)
	return lo, hi == 0
}

// FuzzRead feeds arbitrary bytes to Parse. It checks that parsing allocates
// no more than a small multiple of the input, that every accepted tensor's
// size is exactly its element count times its type's size and lies inside the
// file, and that an accepted file written back with Write parses to the same
// metadata and tensors (and writing that again gives the same bytes).
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, []KV{{"general.architecture", "llama"}, {"general.alignment", uint32(64)}, {"a.s", []string{"x", ""}},
		{"a.f", []float64{0.5}}, {"a.b", true}, {"a.i", int16(-3)}},
		[]Tensor{{Name: "w", Shape: []int{2, 3}, Type: F32, Data: make([]byte, 24)}, {Name: "q", Shape: []int{1, 32}, Type: Q8_0, Data: make([]byte, 34)}}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	buf.Reset()
	_ = Write(&buf, nil, nil)
	f.Add(buf.Bytes())
	f.Add([]byte("GGUF\x02\x00\x00\x00"))
	f.Add([]byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00k\x09\x00\x00\x00\x08\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\x7f"))
	f.Add([]byte("GGML"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var g *File
		var err error
		if n := testutil.AllocBytes(func() { g, err = Parse(data) }); n > 16*uint64(len(data))+64<<10 {
			t.Fatalf("Parse of %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			return
		}
		var tensors []Tensor
		for _, ti := range g.Tensors {
			n := uint64(1)
			for _, d := range ti.Dims {
				hi, lo := bits.Mul64(n, d)
				if hi != 0 {
					t.Fatalf("tensor %q: dims %v overflow", ti.Name, ti.Dims)
				}
				n = lo
			}
			size, ok := elemBytes(ti.Type, n)
			if !ok || size != ti.Size {
				t.Fatalf("tensor %q: %d elements of %s recorded as %d bytes", ti.Name, n, ti.Type, ti.Size)
			}
			end, carry := bits.Add64(g.DataOffset, ti.Offset, 0)
			end, carry2 := bits.Add64(end, ti.Size, carry)
			if carry2 != 0 || end > uint64(len(data)) {
				t.Fatalf("tensor %q at %d+%d, %d bytes, beyond the %d-byte file", ti.Name, g.DataOffset, ti.Offset, ti.Size, len(data))
			}
			info, b, err := g.Tensor(ti.Name)
			if err != nil || uint64(len(b)) != ti.Size || !reflect.DeepEqual(info, ti) {
				t.Fatalf("Tensor(%q) = %+v, %d bytes, %v", ti.Name, info, len(b), err)
			}
			tensors = append(tensors, Tensor{Name: ti.Name, Shape: ti.Shape(), Type: ti.Type, Data: b})
		}
		var out bytes.Buffer
		if err := Write(&out, g.KV, tensors); err != nil {
			for _, kv := range g.KV {
				if checkKey(kv.Key) != nil {
					return // Write is stricter about key names than Parse
				}
			}
			for _, tt := range tensors {
				if tt.Name == "" {
					return // so it is about tensor names
				}
			}
			t.Fatalf("writing an accepted file back: %v", err)
		}
		g2, err := Parse(out.Bytes())
		if err != nil {
			t.Fatalf("re-parsing the written file: %v", err)
		}
		if len(g2.KV) != len(g.KV) || len(g2.Tensors) != len(g.Tensors) || g2.Alignment != g.Alignment {
			t.Fatalf("round trip: %d KVs, %d tensors, alignment %d; want %d, %d, %d",
				len(g2.KV), len(g2.Tensors), g2.Alignment, len(g.KV), len(g.Tensors), g.Alignment)
		}
		for i, kv := range g.KV {
			if g2.KV[i].Key != kv.Key || reflect.TypeOf(g2.KV[i].Value) != reflect.TypeOf(kv.Value) {
				t.Fatalf("round trip: KV %d is %q %T, want %q %T", i, g2.KV[i].Key, g2.KV[i].Value, kv.Key, kv.Value)
			}
		}
		for i, tt := range tensors {
			info, b, err := g2.Tensor(tt.Name)
			if err != nil || !reflect.DeepEqual(info, g.Tensors[i]) || !bytes.Equal(b, tt.Data) {
				t.Fatalf("round trip: tensor %q = %+v, %v", tt.Name, info, err)
			}
		}
		var again bytes.Buffer
		if err := Write(&again, g2.KV, tensors); err != nil || !bytes.Equal(again.Bytes(), out.Bytes()) {
			t.Fatalf("second write differs: %v", err)
		}
	})
}

// fuzzHeader starts a GGUF v3 file with nt tensors and nkv metadata entries.
func fuzzHeader(nt, nkv uint64) []byte {
	b := binary.LittleEndian.AppendUint32([]byte(Magic), Version)
	b = binary.LittleEndian.AppendUint64(b, nt)
	return binary.LittleEndian.AppendUint64(b, nkv)
}

// TestTensorSizeOverflow is a fuzz finding: an F32 tensor of 2^62 elements
// has a byte size that wraps to 0, and was accepted with Size 0.
func TestTensorSizeOverflow(t *testing.T) {
	le := binary.LittleEndian
	b := fuzzHeader(1, 0)
	b = le.AppendUint64(b, 1)
	b = append(b, 'w')
	b = le.AppendUint32(b, 1)
	b = le.AppendUint64(b, 1<<62)
	b = le.AppendUint32(b, uint32(F32))
	b = le.AppendUint64(b, 0)
	b = append(b, make([]byte, 64)...)
	if g, err := Parse(b); err == nil || !strings.Contains(err.Error(), "more than the file can hold") {
		t.Fatalf("Parse = %+v, %v", g, err)
	}
}

// TestArrayCountAllocation is a fuzz finding: a string array claiming as
// many elements as the file has bytes made Parse allocate 16 bytes per byte
// of input before finding that the file ends early.
func TestArrayCountAllocation(t *testing.T) {
	le := binary.LittleEndian
	b := fuzzHeader(0, 1)
	b = le.AppendUint64(b, 1)
	b = append(b, 'k')
	b = le.AppendUint32(b, uint32(TypeArray))
	b = le.AppendUint32(b, uint32(TypeString))
	b = le.AppendUint64(b, 1<<20)
	b = append(b, make([]byte, 1<<20)...)
	var err error
	if n := testutil.AllocBytes(func() { _, err = Parse(b) }); n > 2*uint64(len(b)) || err == nil {
		t.Fatalf("Parse of %d bytes allocated %d bytes, err %v", len(b), n, err)
	}
}
