package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/bidora/bidora/internal/atomicfile"
)

// Tensor is a named tensor with its raw little-endian data.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NewTensor encodes float32 values as a tensor of dtype dt (F32, F16, BF16 or
// F64), rounding to nearest even where dt is narrower.
func NewTensor(name string, dt DType, shape []int, values []float32) (Tensor, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(values) {
		return Tensor{}, fmt.Errorf("tensor %q: shape %v holds %d values, got %d", name, shape, n, len(values))
	}
	data, err := EncodeFloat32(values, dt)
	if err != nil {
		return Tensor{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	return Tensor{Name: name, DType: dt, Shape: slices.Clone(shape), Data: data}, nil
}

// WriteFile writes tensors and optional metadata as a safetensors file,
// atomically: the data goes to a temporary file in the same directory, which is
// renamed over path once complete. path must be missing or a regular file; a
// symlink, device, named pipe or other special file is refused (see
// atomicfile.CheckFile) and left as it was. Tensors are laid out as the
// reference implementation does (by dtype, widest first, then by name), so that
// every tensor is aligned to its element size and the bytes match its output.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	order, infos := layout(tensors)
	w, err := NewWriter(path, infos, metadata)
	if err != nil {
		return err
	}
	for _, t := range order {
		if err := w.WriteTensor(t.Name, t.Data); err != nil {
			_ = w.Abort()
			return err
		}
	}
	return w.Close()
}

// Encode writes tensors and optional metadata to w in the safetensors format,
// laid out as WriteFile lays them out. It is for writers that place the bytes
// themselves (atomicfile.WriteSet, to write several files as a set).
func Encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	order, infos := layout(tensors)
	infos, header, err := plan(infos, metadata)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	bw.Write(lenBuf[:])
	bw.Write(header)
	for i, t := range order {
		if int64(len(t.Data)) != infos[i].NumBytes() {
			return fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, got %d", t.Name, t.Shape, t.DType, infos[i].NumBytes(), len(t.Data))
		}
		if _, err := bw.Write(t.Data); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// layout orders tensors as the reference implementation writes them and
// returns their header entries (offsets not yet computed).
func layout(tensors []Tensor) ([]Tensor, []TensorInfo) {
	order := slices.Clone(tensors)
	slices.SortStableFunc(order, func(a, b Tensor) int {
		if ra, rb := dtypeRank[a.DType], dtypeRank[b.DType]; ra != rb {
			return rb - ra
		}
		return cmpString(a.Name, b.Name)
	})
	infos := make([]TensorInfo, len(order))
	for i, t := range order {
		infos[i] = TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape}
	}
	return order, infos
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Writer streams a safetensors file: the header is declared up front, then
// each tensor's data is written in the declared order, so a large file never
// has to be held in memory. Close completes the file and renames it into place;
// Abort discards it.
type Writer struct {
	path    string
	tmp     *os.File
	buf     *bufio.Writer
	infos   []TensorInfo
	next    int
	done    bool
	lastErr error
}

// NewWriter starts writing a safetensors file at path holding the given
// tensors in the given order (their Offsets are computed, not read). path must
// be missing or a regular file, as for WriteFile; it is checked here and again
// when Close renames the finished file into place.
func NewWriter(path string, infos []TensorInfo, metadata map[string]string) (*Writer, error) {
	infos, header, err := plan(infos, metadata)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := atomicfile.CheckFile(path); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	w := &Writer{path: path, tmp: tmp, buf: bufio.NewWriterSize(tmp, 1<<20), infos: infos}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	if _, err := w.buf.Write(lenBuf[:]); err != nil {
		_ = w.Abort()
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := w.buf.Write(header); err != nil {
		_ = w.Abort()
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return w, nil
}

// plan checks the declared tensors, computes their offsets and encodes the
// header.
func plan(infos []TensorInfo, metadata map[string]string) ([]TensorInfo, []byte, error) {
	infos = slices.Clone(infos)
	seen := map[string]bool{}
	var off int64
	for i := range infos {
		ti := &infos[i]
		switch {
		case ti.Name == "":
			return nil, nil, fmt.Errorf("tensor %d has an empty name", i)
		case ti.Name == metadataKey:
			return nil, nil, fmt.Errorf("%q is reserved for metadata", metadataKey)
		case seen[ti.Name]:
			return nil, nil, fmt.Errorf("tensor %q appears twice", ti.Name)
		case !ti.DType.Valid():
			return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q", ti.Name, ti.DType)
		}
		seen[ti.Name] = true
		n := int64(1)
		for _, d := range ti.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("tensor %q: negative dimension in shape %v", ti.Name, ti.Shape)
			}
			n *= int64(d)
		}
		ti.Shape = slices.Clone(ti.Shape)
		ti.Offsets = [2]int64{off, off + n*int64(ti.DType.Size())}
		off = ti.Offsets[1]
	}
	header, err := encodeHeader(infos, metadata)
	if err != nil {
		return nil, nil, err
	}
	return infos, header, nil
}

// encodeHeader writes the JSON header, padded with spaces to a multiple of 8
// bytes so that the data starts 8-byte aligned.
func encodeHeader(infos []TensorInfo, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return nil, err
		}
		b.WriteString(`"` + metadataKey + `":`)
		b.Write(m)
	}
	for i, ti := range infos {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		name, err := json.Marshal(ti.Name)
		if err != nil {
			return nil, err
		}
		b.Write(name)
		b.WriteString(`:{"dtype":"` + string(ti.DType) + `","shape":[`)
		for j, d := range ti.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, ti.Offsets[0], ti.Offsets[1])
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}

// Infos lists the declared tensors with their computed offsets.
func (w *Writer) Infos() []TensorInfo { return slices.Clone(w.infos) }

// WriteTensor writes the data of the next declared tensor, which must be name.
func (w *Writer) WriteTensor(name string, data []byte) error {
	if w.done {
		return fmt.Errorf("writing %s: writer is closed", w.path)
	}
	if w.lastErr != nil {
		return w.lastErr
	}
	if w.next >= len(w.infos) {
		return fmt.Errorf("writing %s: tensor %q was not declared or was already written", w.path, name)
	}
	ti := w.infos[w.next]
	if ti.Name != name {
		return fmt.Errorf("writing %s: got tensor %q, want %q next (tensors are written in declared order)", w.path, name, ti.Name)
	}
	if int64(len(data)) != ti.NumBytes() {
		return fmt.Errorf("writing %s: tensor %q: shape %v of %s needs %d bytes, got %d", w.path, name, ti.Shape, ti.DType, ti.NumBytes(), len(data))
	}
	if _, err := w.buf.Write(data); err != nil {
		w.lastErr = fmt.Errorf("writing %s: %w", w.path, err)
		return w.lastErr
	}
	w.next++
	return nil
}

// Close checks that every declared tensor was written, syncs the temporary
// file and renames it to the target path. On error the temporary file is removed.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	if w.lastErr != nil {
		_ = w.Abort()
		return w.lastErr
	}
	if w.next < len(w.infos) {
		err := fmt.Errorf("writing %s: closed before tensor %q (%d of %d written)", w.path, w.infos[w.next].Name, w.next, len(w.infos))
		_ = w.Abort()
		return err
	}
	w.done = true
	err := w.buf.Flush()
	if err == nil {
		err = w.tmp.Chmod(0o644)
	}
	if err == nil {
		err = w.tmp.Sync()
	}
	if cerr := w.tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(w.tmp.Name())
		return fmt.Errorf("writing %s: %w", w.path, err)
	}
	if err := atomicfile.Commit(w.tmp.Name(), w.path); err != nil {
		_ = os.Remove(w.tmp.Name())
		return err
	}
	return nil
}

// Abort discards the partly written file.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	return errors.Join(w.tmp.Close(), os.Remove(w.tmp.Name()))
}
