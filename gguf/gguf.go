// Package gguf writes and reads GGUF files, the single-file format of
// ggml/llama.cpp, and writes PEFT LoRA adapters as llama.cpp GGUF LoRA
// adapters (see WriteLoRA).
//
// Layout (GGUF v3, little-endian), per ggml's docs/gguf.md:
//
//	"GGUF" | version u32 = 3 | tensor_count u64 | kv_count u64
//	kv_count × { key: string, value_type u32, value }
//	tensor_count × { name: string, n_dims u32, dims u64[n_dims], type u32, offset u64 }
//	zero padding to general.alignment (default 32)
//	tensor data, each tensor at its offset (a multiple of the alignment,
//	relative to the start of the data), zero-padded to the alignment
//
// A string is a u64 byte length and the UTF-8 bytes; an array is an element
// value type u32, a u64 count and the elements. Tensor dims are listed
// innermost first (ggml's ne[0] is the row length), the reverse of the
// row-major shape PyTorch and safetensors use; Tensor.Shape here is in the
// row-major order and is reversed on write.
package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/bidora/bidora/internal/atomicfile"
)

// Format constants.
const (
	Magic            = "GGUF"
	Version          = 3
	DefaultAlignment = 32
	// MaxNameLength is the longest tensor name llama.cpp accepts (GGML_MAX_NAME - 1).
	MaxNameLength = 63
	// MaxDims is the most dimensions a ggml tensor has.
	MaxDims = 4
	// KeyAlignment is the metadata key holding the data alignment.
	KeyAlignment = "general.alignment"
)

// ValueType is the type of a metadata value.
type ValueType uint32

// Metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

// TensorType is a ggml tensor element type. The writer encodes the float
// types and Q8_0, Q5_0, Q4_K and Q6_K; the reader sizes any of them.
type TensorType uint32

// ggml tensor types this package knows the size of.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q5_0 TensorType = 6
	Q8_0 TensorType = 8
	Q4_K TensorType = 12
	Q6_K TensorType = 14
	I8   TensorType = 24
	I16  TensorType = 25
	I32  TensorType = 26
	I64  TensorType = 27
	F64  TensorType = 28
	BF16 TensorType = 30
)

func (t TensorType) String() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case Q8_0:
		return "Q8_0"
	case Q5_0:
		return "Q5_0"
	case Q4_K:
		return "Q4_K"
	case Q6_K:
		return "Q6_K"
	case I8:
		return "I8"
	case I16:
		return "I16"
	case I32:
		return "I32"
	case I64:
		return "I64"
	case F64:
		return "F64"
	case BF16:
		return "BF16"
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// rowBytes is the size of n elements of t (n a multiple of its block size),
// or an error for a type this package cannot size.
func (t TensorType) rowBytes(n uint64) (uint64, error) {
	switch t {
	case F32, I32:
		return 4 * n, nil
	case F16, BF16, I16:
		return 2 * n, nil
	case I8:
		return n, nil
	case I64, F64:
		return 8 * n, nil
	case Q8_0: // blocks of 32: f16 scale + 32 int8
		if n%32 != 0 {
			return 0, fmt.Errorf("Q8_0 row of %d elements is not a multiple of 32", n)
		}
		return n / 32 * 34, nil
	case Q5_0:
		if n%Q5_0BlockSize != 0 {
			return 0, fmt.Errorf("Q5_0 row of %d elements is not a multiple of %d", n, Q5_0BlockSize)
		}
		return n / Q5_0BlockSize * Q5_0BlockBytes, nil
	case Q4_K, Q6_K:
		if n%QK_K != 0 {
			return 0, fmt.Errorf("%s row of %d elements is not a multiple of %d", t, n, QK_K)
		}
		if t == Q4_K {
			return n / QK_K * Q4_KBlockBytes, nil
		}
		return n / QK_K * Q6_KBlockBytes, nil
	}
	return 0, fmt.Errorf("unsupported tensor type %s", t)
}

// KV is one metadata entry. Value is one of uint8, int8, uint16, int16,
// uint32, int32, float32, bool, string, uint64, int64, float64, or a slice of
// one of them (an array).
type KV struct {
	Key   string
	Value any
}

// Tensor is a tensor to write: Shape is row-major (outermost first, as in
// safetensors) and Data its little-endian bytes in Type.
type Tensor struct {
	Name  string
	Shape []int
	Type  TensorType
	Data  []byte
}

// TensorInfo describes a tensor of a read file.
type TensorInfo struct {
	Name string
	// Dims are ggml's ne: innermost (row length) first.
	Dims   []uint64
	Type   TensorType
	Offset uint64 // relative to the start of the data section
	Size   uint64 // bytes
}

// Shape is the row-major shape (Dims reversed).
func (t TensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(s)-1-i] = int(d)
	}
	return s
}

func align(n, a uint64) uint64 { return (n + a - 1) / a * a }

// alignmentOf returns the alignment a KV list asks for (DefaultAlignment if
// none) and checks it.
func alignmentOf(kvs []KV) (uint64, error) {
	for _, kv := range kvs {
		if kv.Key != KeyAlignment {
			continue
		}
		v, ok := kv.Value.(uint32)
		if !ok {
			return 0, fmt.Errorf("%s must be a uint32, got %T", KeyAlignment, kv.Value)
		}
		if v == 0 || v%8 != 0 || v&(v-1) != 0 {
			return 0, fmt.Errorf("%s = %d: want a power of two and a multiple of 8", KeyAlignment, v)
		}
		return uint64(v), nil
	}
	return DefaultAlignment, nil
}

// Write writes a GGUF v3 file to w: the metadata in the given order, then the
// tensors in the given order, each at the next aligned offset.
func Write(w io.Writer, kvs []KV, tensors []Tensor) error {
	heads := make([]TensorHeader, len(tensors))
	for i, t := range tensors {
		heads[i] = TensorHeader{Name: t.Name, Shape: t.Shape, Type: t.Type}
	}
	sw, err := NewWriter(w, kvs, heads)
	if err != nil {
		return err
	}
	for _, t := range tensors {
		if err := sw.WriteTensor(t.Name, t.Data); err != nil {
			return err
		}
	}
	return sw.Close()
}

// TensorHeader is what a streaming Writer needs to know of a tensor before
// its data: Shape is row-major, as in Tensor.
type TensorHeader struct {
	Name  string
	Shape []int
	Type  TensorType
}

// Size is the byte size of the tensor's data.
func (h TensorHeader) Size() (uint64, error) {
	n := uint64(1)
	for _, d := range h.Shape {
		if d <= 0 {
			return 0, fmt.Errorf("gguf: tensor %q has shape %v; dimensions must be positive", h.Name, h.Shape)
		}
		n *= uint64(d)
	}
	size, err := h.Type.rowBytes(n)
	if err != nil {
		return 0, fmt.Errorf("gguf: tensor %q: %w", h.Name, err)
	}
	return size, nil
}

// Writer streams a GGUF file: NewWriter writes the header, metadata and
// tensor descriptions; WriteTensor then takes each tensor's data in the
// order given, so that only one tensor needs to be in memory at a time.
type Writer struct {
	bw    *bufio.Writer
	e     *encoder
	al    uint64
	heads []TensorHeader
	sizes []uint64
	next  int
	part  uint64 // bytes of tensor next written so far (WriteTensorPart)
}

// NewWriter checks the metadata and tensor descriptions and writes them to w.
func NewWriter(w io.Writer, kvs []KV, tensors []TensorHeader) (*Writer, error) {
	al, err := alignmentOf(kvs)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	e := &encoder{w: bw}
	e.bytes([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	seen := map[string]bool{}
	for _, kv := range kvs {
		if err := checkKey(kv.Key); err != nil {
			return nil, err
		}
		if seen[kv.Key] {
			return nil, fmt.Errorf("gguf: metadata key %q appears twice", kv.Key)
		}
		seen[kv.Key] = true
		e.str(kv.Key)
		if err := e.value(kv.Value, true); err != nil {
			return nil, fmt.Errorf("gguf: metadata %q: %w", kv.Key, err)
		}
	}
	var off uint64
	names := map[string]bool{}
	sizes := make([]uint64, len(tensors))
	for i, t := range tensors {
		switch {
		case t.Name == "" || len(t.Name) > MaxNameLength:
			return nil, fmt.Errorf("gguf: tensor name %q: want 1 to %d bytes", t.Name, MaxNameLength)
		case names[t.Name]:
			return nil, fmt.Errorf("gguf: tensor %q appears twice", t.Name)
		case len(t.Shape) == 0 || len(t.Shape) > MaxDims:
			return nil, fmt.Errorf("gguf: tensor %q has %d dimensions; want 1 to %d", t.Name, len(t.Shape), MaxDims)
		}
		names[t.Name] = true
		size, err := t.Size()
		if err != nil {
			return nil, err
		}
		sizes[i] = size
		e.str(t.Name)
		e.u32(uint32(len(t.Shape)))
		for i := len(t.Shape) - 1; i >= 0; i-- {
			e.u64(uint64(t.Shape[i]))
		}
		e.u32(uint32(t.Type))
		e.u64(off)
		off = align(off+size, al)
	}
	e.pad(al)
	if e.err != nil {
		return nil, fmt.Errorf("gguf: %w", e.err)
	}
	return &Writer{bw: bw, e: e, al: al, heads: tensors, sizes: sizes}, nil
}

// WriteTensor writes the data of the next tensor, which must be the one
// named, in the size its header gives.
func (w *Writer) WriteTensor(name string, data []byte) error {
	if w.next < len(w.sizes) && (w.part != 0 || uint64(len(data)) != w.sizes[w.next]) {
		h := w.heads[w.next]
		if h.Name == name {
			return fmt.Errorf("gguf: tensor %q: shape %v of %s needs %d bytes, got %d", name, h.Shape, h.Type, w.sizes[w.next], w.part+uint64(len(data)))
		}
	}
	return w.WriteTensorPart(name, data)
}

// WriteTensorPart writes the next part of the data of the tensor due, which
// must be the one named; the tensor is complete, and the next one due, once
// its parts add up to the size its header gives.
func (w *Writer) WriteTensorPart(name string, data []byte) error {
	if w.next >= len(w.heads) {
		return fmt.Errorf("gguf: tensor %q: all %d tensors are already written", name, len(w.heads))
	}
	h := w.heads[w.next]
	if h.Name != name {
		return fmt.Errorf("gguf: tensor %q written where %q is due", name, h.Name)
	}
	if w.part+uint64(len(data)) > w.sizes[w.next] {
		return fmt.Errorf("gguf: tensor %q: shape %v of %s needs %d bytes, got %d", name, h.Shape, h.Type, w.sizes[w.next], w.part+uint64(len(data)))
	}
	w.e.bytes(data)
	w.part += uint64(len(data))
	if w.part == w.sizes[w.next] {
		w.e.pad(w.al)
		w.next++
		w.part = 0
	}
	if w.e.err != nil {
		return fmt.Errorf("gguf: %w", w.e.err)
	}
	return nil
}

// Close checks that every tensor was written and flushes the buffer; it does
// not close the underlying writer.
func (w *Writer) Close() error {
	if w.next != len(w.heads) {
		if w.part > 0 {
			return fmt.Errorf("gguf: tensor %q has %d of its %d bytes", w.heads[w.next].Name, w.part, w.sizes[w.next])
		}
		return fmt.Errorf("gguf: %d of %d tensors written; %q is missing", w.next, len(w.heads), w.heads[w.next].Name)
	}
	if w.e.err != nil {
		return fmt.Errorf("gguf: %w", w.e.err)
	}
	return w.bw.Flush()
}

// WriteFile writes a GGUF file atomically: to a temporary file in the same
// directory, synced and renamed over path once complete. path must be missing
// or a regular file; a symlink, device, named pipe or other special file is
// refused (an error matching atomicfile.ErrNotReplaceable) and left as it was.
func WriteFile(path string, kvs []KV, tensors []Tensor) error {
	return atomicfile.Write(path, func(w io.Writer) error { return Write(w, kvs, tensors) })
}

// checkKey applies the spec's rules: ASCII, dot-separated lower_snake_case
// segments, at most 65535 bytes.
func checkKey(k string) error {
	if k == "" || len(k) > 65535 {
		return fmt.Errorf("gguf: metadata key %q: want 1 to 65535 bytes", k)
	}
	for _, seg := range strings.Split(k, ".") {
		if seg == "" {
			return fmt.Errorf("gguf: metadata key %q has an empty segment", k)
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return fmt.Errorf("gguf: metadata key %q: segments must be lower_snake_case ASCII", k)
			}
		}
	}
	return nil
}

type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
		e.n += uint64(len(b))
	}
}

func (e *encoder) u32(v uint32) { e.bytes(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *encoder) u64(v uint64) { e.bytes(binary.LittleEndian.AppendUint64(nil, v)) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.bytes([]byte(s)) }

func (e *encoder) pad(al uint64) {
	if p := align(e.n, al) - e.n; p > 0 {
		e.bytes(make([]byte, p))
	}
}

// value writes a metadata value, preceded by its type when typed is set
// (array elements carry no type of their own).
func (e *encoder) value(v any, typed bool) error {
	t, err := valueType(v)
	if err != nil {
		return err
	}
	if typed {
		e.u32(uint32(t))
	}
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		e.bytes([]byte{x})
	case int8:
		e.bytes([]byte{byte(x)})
	case uint16:
		e.bytes(le.AppendUint16(nil, x))
	case int16:
		e.bytes(le.AppendUint16(nil, uint16(x)))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		e.bytes([]byte{b})
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	default:
		return e.array(v)
	}
	return nil
}

func (e *encoder) array(v any) error {
	var elems []any
	var et ValueType
	add := func(n int, at func(int) any, t ValueType) {
		et = t
		for i := 0; i < n; i++ {
			elems = append(elems, at(i))
		}
	}
	switch x := v.(type) {
	case []uint8:
		add(len(x), func(i int) any { return x[i] }, TypeUint8)
	case []int8:
		add(len(x), func(i int) any { return x[i] }, TypeInt8)
	case []uint16:
		add(len(x), func(i int) any { return x[i] }, TypeUint16)
	case []int16:
		add(len(x), func(i int) any { return x[i] }, TypeInt16)
	case []uint32:
		add(len(x), func(i int) any { return x[i] }, TypeUint32)
	case []int32:
		add(len(x), func(i int) any { return x[i] }, TypeInt32)
	case []float32:
		add(len(x), func(i int) any { return x[i] }, TypeFloat32)
	case []bool:
		add(len(x), func(i int) any { return x[i] }, TypeBool)
	case []string:
		add(len(x), func(i int) any { return x[i] }, TypeString)
	case []uint64:
		add(len(x), func(i int) any { return x[i] }, TypeUint64)
	case []int64:
		add(len(x), func(i int) any { return x[i] }, TypeInt64)
	case []float64:
		add(len(x), func(i int) any { return x[i] }, TypeFloat64)
	default:
		return fmt.Errorf("unsupported value type %T", v)
	}
	e.u32(uint32(et))
	e.u64(uint64(len(elems)))
	for _, el := range elems {
		if err := e.value(el, false); err != nil {
			return err
		}
	}
	return nil
}

func valueType(v any) (ValueType, error) {
	switch v.(type) {
	case uint8:
		return TypeUint8, nil
	case int8:
		return TypeInt8, nil
	case uint16:
		return TypeUint16, nil
	case int16:
		return TypeInt16, nil
	case uint32:
		return TypeUint32, nil
	case int32:
		return TypeInt32, nil
	case float32:
		return TypeFloat32, nil
	case bool:
		return TypeBool, nil
	case string:
		return TypeString, nil
	case uint64:
		return TypeUint64, nil
	case int64:
		return TypeInt64, nil
	case float64:
		return TypeFloat64, nil
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64, []int64, []float64:
		return TypeArray, nil
	}
	return 0, fmt.Errorf("unsupported value type %T", v)
}

// File is a parsed GGUF file held in memory.
type File struct {
	Version   uint32
	KV        []KV
	Tensors   []TensorInfo
	Alignment uint64
	// DataOffset is where the tensor data starts in the file.
	DataOffset uint64
	data       []byte
}

// Get returns the value of a metadata key.
func (f *File) Get(key string) (any, bool) {
	for _, kv := range f.KV {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Tensor returns a tensor's description and bytes.
func (f *File) Tensor(name string) (TensorInfo, []byte, error) {
	for _, t := range f.Tensors {
		if t.Name == name {
			start := f.DataOffset + t.Offset
			return t, f.data[start : start+t.Size], nil
		}
	}
	return TensorInfo{}, nil, fmt.Errorf("gguf: no tensor %q", name)
}

// ReadFile reads and parses a GGUF file.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// errShort is returned for a file that ends early.
var errShort = errors.New("file ends early")

// Parse parses a little-endian GGUF v2 or v3 file, checking it as llama.cpp's
// loader does: known value types, unique keys and tensor names, at most 4
// dims, and tensor data laid out back to back at aligned offsets within the file.
func Parse(data []byte) (*File, error) {
	d := &decoder{b: data}
	if string(d.take(4)) != Magic {
		return nil, errors.New("gguf: not a GGUF file (bad magic)")
	}
	f := &File{Version: d.u32(), data: data}
	if d.err == nil && f.Version != 2 && f.Version != 3 {
		return nil, fmt.Errorf("gguf: version %d not supported; want 3", f.Version)
	}
	nt, nkv := d.u64(), d.u64()
	if d.err != nil {
		return nil, fmt.Errorf("gguf: header: %w", d.err)
	}
	if nt > uint64(len(data)) || nkv > uint64(len(data)) {
		return nil, fmt.Errorf("gguf: header claims %d tensors and %d metadata entries, more than the file can hold", nt, nkv)
	}
	keys := map[string]bool{}
	for i := uint64(0); i < nkv; i++ {
		k := d.str()
		v := d.value(ValueType(d.u32()), 0)
		if d.err != nil {
			return nil, fmt.Errorf("gguf: metadata entry %d (%q): %w", i, k, d.err)
		}
		if keys[k] {
			return nil, fmt.Errorf("gguf: metadata key %q appears twice", k)
		}
		keys[k] = true
		f.KV = append(f.KV, KV{k, v})
	}
	al, err := alignmentOf(f.KV)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f.Alignment = al
	names := map[string]bool{}
	var expect uint64
	for i := uint64(0); i < nt; i++ {
		t := TensorInfo{Name: d.str()}
		nd := d.u32()
		if d.err == nil && (nd == 0 || nd > MaxDims) {
			return nil, fmt.Errorf("gguf: tensor %q has %d dimensions; want 1 to %d", t.Name, nd, MaxDims)
		}
		n := uint64(1)
		for j := uint32(0); j < nd && d.err == nil; j++ {
			dim := d.u64()
			if dim == 0 || dim > math.MaxInt64/n {
				return nil, fmt.Errorf("gguf: tensor %q has a bad dimension %d", t.Name, dim)
			}
			n *= dim
			t.Dims = append(t.Dims, dim)
		}
		if d.err == nil && n/2 > uint64(len(data)) {
			// Every type this package sizes takes at least 4 bits an element
			// (Q4_K 4.5); this also keeps the byte size below from overflowing.
			return nil, fmt.Errorf("gguf: tensor %q has %d elements, more than the file can hold", t.Name, n)
		}
		t.Type = TensorType(d.u32())
		t.Offset = d.u64()
		if d.err != nil {
			return nil, fmt.Errorf("gguf: tensor info %d: %w", i, d.err)
		}
		if names[t.Name] || len(t.Name) > MaxNameLength {
			return nil, fmt.Errorf("gguf: tensor name %q is repeated or longer than %d bytes", t.Name, MaxNameLength)
		}
		names[t.Name] = true
		if t.Size, err = t.Type.rowBytes(n); err != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		if t.Offset != expect {
			return nil, fmt.Errorf("gguf: tensor %q at offset %d, want %d (data must be back to back, aligned to %d)", t.Name, t.Offset, expect, al)
		}
		expect = align(t.Offset+t.Size, al)
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = align(d.off, al)
	if nt > 0 {
		last := f.Tensors[len(f.Tensors)-1]
		if f.DataOffset+last.Offset+last.Size > uint64(len(data)) {
			return nil, fmt.Errorf("gguf: tensor data needs %d bytes, the file has %d", f.DataOffset+last.Offset+last.Size, len(data))
		}
	}
	return f, nil
}

type decoder struct {
	b   []byte
	off uint64
	err error
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b))-d.off {
		d.err = errShort
		return nil
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) str() string { return string(d.take(d.u64())) }

// value reads one value of type t; depth bounds nested arrays.
func (d *decoder) value(t ValueType, depth int) any {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		return int8(d.u8())
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		return int16(d.u16())
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		return int32(d.u32())
	case TypeFloat32:
		return math.Float32frombits(d.u32())
	case TypeBool:
		b := d.u8()
		if b > 1 && d.err == nil {
			d.err = fmt.Errorf("bool value %d is neither 0 nor 1", b)
		}
		return b == 1
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		return int64(d.u64())
	case TypeFloat64:
		return math.Float64frombits(d.u64())
	case TypeArray:
		et, n := ValueType(d.u32()), d.u64()
		if d.err != nil {
			return nil
		}
		if et == TypeArray || depth > 0 {
			d.err = errors.New("nested arrays are not supported")
			return nil
		}
		// Each element takes at least minBytes of the file (a string its
		// 8-byte length), so a count the rest of the file cannot hold is
		// refused before anything is allocated for it.
		if n > (uint64(len(d.b))-d.off)/et.minBytes() {
			d.err = errShort
			return nil
		}
		return d.array(et, int(n))
	}
	if d.err == nil {
		d.err = fmt.Errorf("unknown value type %d", t)
	}
	return nil
}

// minBytes is the fewest bytes a value of type t takes in a file.
func (t ValueType) minBytes() uint64 {
	switch t {
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeString, TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 1
}

func (d *decoder) array(et ValueType, n int) any {
	collect := func(out any, set func(i int)) any {
		for i := 0; i < n && d.err == nil; i++ {
			set(i)
		}
		return out
	}
	switch et {
	case TypeUint8:
		s := make([]uint8, n)
		return collect(s, func(i int) { s[i] = d.u8() })
	case TypeInt8:
		s := make([]int8, n)
		return collect(s, func(i int) { s[i] = int8(d.u8()) })
	case TypeUint16:
		s := make([]uint16, n)
		return collect(s, func(i int) { s[i] = d.u16() })
	case TypeInt16:
		s := make([]int16, n)
		return collect(s, func(i int) { s[i] = int16(d.u16()) })
	case TypeUint32:
		s := make([]uint32, n)
		return collect(s, func(i int) { s[i] = d.u32() })
	case TypeInt32:
		s := make([]int32, n)
		return collect(s, func(i int) { s[i] = int32(d.u32()) })
	case TypeFloat32:
		s := make([]float32, n)
		return collect(s, func(i int) { s[i] = math.Float32frombits(d.u32()) })
	case TypeBool:
		s := make([]bool, n)
		return collect(s, func(i int) { s[i] = d.value(TypeBool, 1).(bool) })
	case TypeString:
		s := make([]string, n)
		return collect(s, func(i int) { s[i] = d.str() })
	case TypeUint64:
		s := make([]uint64, n)
		return collect(s, func(i int) { s[i] = d.u64() })
	case TypeInt64:
		s := make([]int64, n)
		return collect(s, func(i int) { s[i] = int64(d.u64()) })
	case TypeFloat64:
		s := make([]float64, n)
		return collect(s, func(i int) { s[i] = math.Float64frombits(d.u64()) })
	}
	d.err = fmt.Errorf("unknown array element type %d", et)
	return nil
}
