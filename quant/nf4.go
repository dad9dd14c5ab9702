package quant

import (
	"fmt"
	"math"

	"github.com/bidora/bidora/kernels"
)

// NF4Code is the NormalFloat-4 code table of bitsandbytes (get_4bit_type("nf4")): the
// 16 levels a scaled value is rounded to, in code order.
var NF4Code = [16]float32{
	-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
	0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
}

// Block sizes of bitsandbytes' defaults: 64 values per absmax, 256 absmax values per
// nested (double-quantisation) scale.
const (
	NF4BlockSize    = 64
	NestedBlockSize = 256
)

// tiny is the floor bitsandbytes puts under an absmax before dividing by it (an f32
// subnormal, as torch rounds the literal 1e-38).
const tiny = float32(1e-38)

// nf4Bounds are the f32 midpoints between consecutive NF4 levels; a scaled value x gets
// the code that counts the bounds below it (torch.bucketize, right=False: a value equal
// to a midpoint takes the lower code).
var nf4Bounds = midpointsOf(NF4Code[:])

// dynBounds are the midpoints of the dynamic map.
var dynBounds = func() []float32 { m := dynamicMap(); return midpointsOf(m[:]) }()

func midpointsOf(code []float32) []float32 {
	b := make([]float32, len(code)-1)
	for i := range b {
		b[i] = (code[i] + code[i+1]) / 2
	}
	return b
}

// DynamicMap returns bitsandbytes' signed 8-bit dynamic map (create_dynamic_map), the
// code of double-quantised absmax values.
func DynamicMap() [256]float32 { return dynamicMap() }

func dynamicMap() [256]float32 {
	var m [256]float32
	for i, b := range dynamicMapBits {
		m[i] = math.Float32frombits(b)
	}
	return m
}

// nf4Index codes a scaled value (in [-1, 1], not NaN) by a branch-free 4-level binary
// search over nf4Bounds: the result is the number of bounds strictly below x.
func nf4Index(x float32) byte {
	b := nf4Bounds[:15:15]
	i := 8 * b2i(x > b[7])
	i += 4 * b2i(x > b[i+3])
	i += 2 * b2i(x > b[i+1])
	i += b2i(x > b[i])
	return byte(i)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bucket is torch.bucketize(x, bounds) for sorted bounds: the number of bounds < x.
func bucket(x float32, bounds []float32) byte {
	lo, hi := 0, len(bounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bounds[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return byte(lo)
}

// NF4 is a [Rows, Cols] matrix in bitsandbytes' NF4 format.
//
// Values are flattened row-major and cut into blocks of BlockSize; value i is
// Code[nibble i] · absmax(block i/BlockSize), where nibble i is the high half of
// Data[i/2] for even i and the low half for odd i. The absmax values are either plain
// (Absmax) or double-quantised (Nested).
type NF4 struct {
	Rows, Cols int
	BlockSize  int
	Data       []byte      // ⌈Rows·Cols/2⌉ bytes
	Code       [16]float32 // quant_map: NF4Code, or what a checkpoint stored
	Absmax     []float32   // one per block; nil when Nested is set
	Nested     *NestedAbsmax
	// DType is the dtype of the weight before quantisation, as bitsandbytes records it
	// ("bfloat16", "float16" or "float32").
	DType string
}

// NestedAbsmax holds double-quantised absmax values: absmax(b) =
// Code[Q[b]] · Absmax[b/BlockSize] + Offset, computed in f32 as bitsandbytes does.
type NestedAbsmax struct {
	Q         []byte    // one code per NF4 block
	Absmax    []float32 // one per nested block
	BlockSize int       // 256
	Offset    float32   // the mean of the original absmax values
	Code      [256]float32
}

// Value returns absmax b.
func (n *NestedAbsmax) Value(b int) float32 {
	return float32(n.Code[n.Q[b]]*n.Absmax[b/n.BlockSize]) + n.Offset
}

// NF4Options configures NF4 quantisation.
type NF4Options struct {
	// DoubleQuant codes the absmax values with 8 bits in blocks of 256
	// (bitsandbytes' compress_statistics / bnb_4bit_use_double_quant): 0.127 instead of
	// 0.5 bits of scale per weight.
	DoubleQuant bool
}

// Shape returns (Rows, Cols).
func (w *NF4) Shape() (rows, cols int) { return w.Rows, w.Cols }

// Kind returns KindNF4.
func (w *NF4) Kind() Kind { return KindNF4 }

// Bytes is the memory the weight occupies: codes plus scales.
func (w *NF4) Bytes() int64 {
	n := int64(len(w.Data)) + int64(len(w.Absmax))*4
	if w.Nested != nil {
		n += int64(len(w.Nested.Q)) + int64(len(w.Nested.Absmax))*4 + 4
	}
	return n
}

// NumBlocks is the number of absmax blocks.
func (w *NF4) NumBlocks() int { return (w.Rows*w.Cols + w.BlockSize - 1) / w.BlockSize }

// BlockAbsmax returns the scale of block b.
func (w *NF4) BlockAbsmax(b int) float32 {
	if w.Nested != nil {
		return w.Nested.Value(b)
	}
	return w.Absmax[b]
}

// Validate checks that the fields are consistent (sizes, block sizes), as needed before
// the kernels index into them.
func (w *NF4) Validate() error {
	if w.Rows < 0 || w.Cols < 0 {
		return fmt.Errorf("nf4: negative shape [%d, %d]", w.Rows, w.Cols)
	}
	if w.BlockSize <= 0 || w.BlockSize%2 != 0 {
		return fmt.Errorf("nf4: block size %d, want a positive even number", w.BlockSize)
	}
	n := w.Rows * w.Cols
	if len(w.Data) != (n+1)/2 {
		return fmt.Errorf("nf4: %d data bytes for [%d, %d], want %d", len(w.Data), w.Rows, w.Cols, (n+1)/2)
	}
	nb := w.NumBlocks()
	if w.Nested == nil {
		if len(w.Absmax) != nb {
			return fmt.Errorf("nf4: %d absmax values for %d blocks of %d", len(w.Absmax), nb, w.BlockSize)
		}
		return nil
	}
	if w.Absmax != nil {
		return fmt.Errorf("nf4: both plain and nested absmax set")
	}
	q := w.Nested
	if q.BlockSize <= 0 {
		return fmt.Errorf("nf4: nested block size %d, want > 0", q.BlockSize)
	}
	if len(q.Q) != nb {
		return fmt.Errorf("nf4: %d nested absmax codes for %d blocks", len(q.Q), nb)
	}
	if want := (nb + q.BlockSize - 1) / q.BlockSize; len(q.Absmax) != want {
		return fmt.Errorf("nf4: %d nested absmax values, want %d", len(q.Absmax), want)
	}
	return nil
}

// QuantizeNF4 quantises a row-major [rows, cols] f32 matrix; a NaN or ±Inf is refused
// with a *NonFiniteError.
func QuantizeNF4(w []float32, rows, cols int, opt NF4Options) (*NF4, error) {
	if len(w) != rows*cols {
		return nil, fmt.Errorf("nf4: %d values for shape [%d, %d]", len(w), rows, cols)
	}
	return quantizeNF4(rows, cols, "float32", opt, func(dst []float32, start int) { copy(dst, w[start:]) })
}

// QuantizeNF4BF16 quantises a row-major [rows, cols] bf16 matrix (raw bits); a NaN or
// ±Inf is refused with a *NonFiniteError.
func QuantizeNF4BF16(w []uint16, rows, cols int, opt NF4Options) (*NF4, error) {
	if len(w) != rows*cols {
		return nil, fmt.Errorf("nf4: %d values for shape [%d, %d]", len(w), rows, cols)
	}
	return quantizeNF4(rows, cols, "bfloat16", opt, func(dst []float32, start int) {
		for i, b := range w[start : start+len(dst)] {
			dst[i] = kernels.BF16ToF32(b)
		}
	})
}

// chunkBlocks is how many NF4 blocks a quantisation worker converts to f32 at a time.
const chunkBlocks = 256

// quantizeNF4 quantises rows·cols values that read(dst, start) delivers as f32, chunk by
// chunk (never all at once), spread over the kernel threads.
func quantizeNF4(rows, cols int, dtype string, opt NF4Options, read func(dst []float32, start int)) (*NF4, error) {
	if rows < 0 || cols < 0 {
		return nil, fmt.Errorf("nf4: negative shape [%d, %d]", rows, cols)
	}
	n := rows * cols
	bs := NF4BlockSize
	nb := (n + bs - 1) / bs
	w := &NF4{Rows: rows, Cols: cols, BlockSize: bs, Code: NF4Code, DType: dtype,
		Data: make([]byte, (n+1)/2), Absmax: make([]float32, nb)}
	chunk := chunkBlocks * bs
	nChunks := (n + chunk - 1) / chunk
	errs := make([]error, nChunks)
	kernels.Parallel(nChunks, 1, func(lo, hi int) {
		buf := make([]float32, min(chunk, n))
		for c := lo; c < hi; c++ {
			start := c * chunk
			vals := buf[:min(chunk, n-start)]
			read(vals, start)
			if err := quantizeNF4Chunk(w.Data[start/2:], w.Absmax[start/bs:], vals, bs); err != nil {
				if nf := nonFinite(KindNF4, vals, start, cols); nf != nil {
					errs[c] = nf
				} else {
					errs[c] = fmt.Errorf("nf4: value %d..%d: %w", start, start+len(vals), err)
				}
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if opt.DoubleQuant {
		nested, err := DoubleQuantize(w.Absmax)
		if err != nil {
			return nil, err
		}
		w.Nested, w.Absmax = nested, nil
	}
	return w, nil
}

// scaleBlock writes the scaled values of one block into s and returns the absmax to
// store, as bitsandbytes' reference: a full block is multiplied by 1/max(absmax, tiny)
// and stores absmax as is; the ragged last block is divided by max(absmax, tiny) and
// stores that. Scaled values are clamped to [-1, 1].
func scaleBlock(s, v []float32, full bool) (float32, error) {
	var am float32
	for _, x := range v {
		am = max(am, abs32(x))
	}
	if !(am <= math.MaxFloat32) {
		return 0, fmt.Errorf("non-finite value (block absmax %v)", am)
	}
	stored := am
	if full {
		inv := 1 / max(am, tiny)
		for i, x := range v {
			s[i] = clamp1(x * inv)
		}
	} else {
		stored = max(am, tiny)
		for i, x := range v {
			s[i] = clamp1(x / stored)
		}
	}
	return stored, nil
}

// quantizeNF4Chunk codes vals (which start at a block boundary, an even value index)
// into data (packed) and absmax; a block shorter than bs is the tensor's last.
func quantizeNF4Chunk(data []byte, absmax []float32, vals []float32, bs int) error {
	var sbuf [4096]float32
	s := sbuf[:bs]
	if bs > len(sbuf) {
		s = make([]float32, bs)
	}
	for b := 0; b*bs < len(vals); b++ {
		v := vals[b*bs : min(len(vals), (b+1)*bs)]
		am, err := scaleBlock(s, v, len(v) == bs)
		if err != nil {
			return fmt.Errorf("block %d: %w", b, err)
		}
		absmax[b] = am
		d := data[b*bs/2:]
		sc := s[:len(v)]
		for i := 0; i+1 < len(sc); i += 2 {
			d[i/2] = nf4Index(sc[i])<<4 | nf4Index(sc[i+1])
		}
		if len(sc)%2 == 1 {
			// bitsandbytes pads an odd count with a scaled 0.0 (code 7).
			d[len(sc)/2] = nf4Index(sc[len(sc)-1])<<4 | nf4Index(0)
		}
	}
	return nil
}

// DoubleQuantize codes NF4 absmax values as bitsandbytes' compress_statistics does:
// offset = mean(absmax), then absmax − offset quantised blockwise (256) with the signed
// dynamic map. The mean is the f64 sum of the values in order, divided by their count
// and rounded to f32 (bitsandbytes' torch.mean agrees to within one ulp; its last bit
// depends on the backend's reduction order).
func DoubleQuantize(absmax []float32) (*NestedAbsmax, error) {
	var sum float64
	for _, a := range absmax {
		sum += float64(a)
	}
	var offset float32
	if len(absmax) > 0 {
		offset = float32(sum / float64(len(absmax)))
	}
	x := make([]float32, len(absmax))
	for i, a := range absmax {
		x[i] = a - offset
	}
	q, nab, err := QuantizeBlockwise8(x, NestedBlockSize)
	if err != nil {
		return nil, fmt.Errorf("double quantisation: %w", err)
	}
	return &NestedAbsmax{Q: q, Absmax: nab, BlockSize: NestedBlockSize, Offset: offset, Code: dynamicMap()}, nil
}

// QuantizeBlockwise8 is bitsandbytes' quantize_blockwise with the signed dynamic map:
// per block of bs values, codes (nearest map entry of x/absmax by midpoints) and absmax.
func QuantizeBlockwise8(x []float32, bs int) (q []byte, absmax []float32, err error) {
	if bs <= 0 {
		return nil, nil, fmt.Errorf("block size %d, want > 0", bs)
	}
	nb := (len(x) + bs - 1) / bs
	q = make([]byte, len(x))
	absmax = make([]float32, nb)
	s := make([]float32, bs)
	for b := range nb {
		v := x[b*bs : min(len(x), (b+1)*bs)]
		am, err := scaleBlock(s, v, len(v) == bs)
		if err != nil {
			return nil, nil, fmt.Errorf("block %d: %w", b, err)
		}
		absmax[b] = am
		for i := range v {
			q[b*bs+i] = bucket(s[i], dynBounds)
		}
	}
	return q, absmax, nil
}

// DequantizeRange writes values [start, start+len(dst)) of the row-major flattening.
func (w *NF4) DequantizeRange(dst []float32, start int) {
	end := start + len(dst)
	bs := w.BlockSize
	for pos := start; pos < end; {
		b := pos / bs
		be := min(end, (b+1)*bs)
		decodeNF4(dst[pos-start:be-start], w.Data, pos, &w.Code, w.BlockAbsmax(b))
		pos = be
	}
}

// Dequantize writes the whole matrix as f32 into dst[:Rows·Cols].
func (w *NF4) Dequantize(dst []float32) {
	n := w.Rows * w.Cols
	dst = dst[:n]
	kernels.Parallel(w.Rows, 64, func(lo, hi int) {
		w.DequantizeRange(dst[lo*w.Cols:hi*w.Cols], lo*w.Cols)
	})
}

// Row writes row r as f32 into dst[:Cols].
func (w *NF4) Row(r int, dst []float32) { w.DequantizeRange(dst[:w.Cols], r*w.Cols) }

// decodeNF4 writes len(dst) values starting at value index pos, all with one scale.
func decodeNF4(dst []float32, data []byte, pos int, code *[16]float32, scale float32) {
	if len(dst) == 0 {
		return
	}
	if pos%2 == 1 {
		dst[0] = code[data[pos/2]&15] * scale
		dst = dst[1:]
		pos++
	}
	pairs := len(dst) / 2
	if pairs > 0 {
		decodeNF4Pairs(dst[:2*pairs], data[pos/2:pos/2+pairs], code, scale)
	}
	if len(dst)%2 == 1 {
		dst[len(dst)-1] = code[data[pos/2+pairs]>>4] * scale
	}
}

// decodeNF4PairsGo is the plain-Go twin of the assembly decoder: dst[2i], dst[2i+1] =
// code[hi(src[i])]·scale, code[lo(src[i])]·scale.
func decodeNF4PairsGo(dst []float32, src []byte, code *[16]float32, scale float32) {
	dst = dst[:2*len(src)]
	for i, b := range src {
		dst[2*i] = code[b>>4] * scale
		dst[2*i+1] = code[b&15] * scale
	}
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

func clamp1(x float32) float32 {
	if x > 1 {
		return 1
	}
	if x < -1 {
		return -1
	}
	return x
}
