package quant

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bidora/bidora/safetensors"
)

// The edge cases below are checked from the definition of the format (value i is
// Code[nibble i] · absmax(block i/64)), not against tools/reference/bnb_nf4.py, whose
// golden cases may not reach them.

// nibble returns the NF4 code of value i.
func nibble(w *NF4, i int) byte {
	if i%2 == 0 {
		return w.Data[i/2] >> 4
	}
	return w.Data[i/2] & 15
}

// nearestNF4 is the code of the level nearest to s, a tie going to the lower code.
func nearestNF4(s float64) byte {
	best := 0
	for k := 1; k < 16; k++ {
		if math.Abs(s-float64(NF4Code[k])) < math.Abs(s-float64(NF4Code[best])) {
			best = k
		}
	}
	return byte(best)
}

// zeroCode is the code of 0.0 in the NF4 table.
const zeroCode = 7

// All-zero blocks, full or the last partial one, alone or between non-zero blocks, code
// every value as the 0 level and dequantise to exactly 0, with or without double
// quantisation (whose offset then makes the stored scale of such a block non-zero).
func TestNF4AllZeroBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct {
		name       string
		rows, cols int
		zero       func(i int) bool // which values are 0
	}{
		{"one full block", 1, 64, func(int) bool { return true }},
		{"full blocks and a zero tail", 3, 50, func(int) bool { return true }},
		{"one value", 1, 1, func(int) bool { return true }},
		{"zero block between non-zero ones", 4, 48, func(i int) bool { return i/64 == 1 }},
		{"zero tail after non-zero blocks", 5, 27, func(i int) bool { return i >= 128 }},
		{"zero blocks across 300 blocks", 100, 192, func(i int) bool { return (i/64)%3 == 0 }},
	} {
		n := c.rows * c.cols
		vals := randNormal(r, n, 0.02)
		for i := range vals {
			if c.zero(i) {
				vals[i] = 0
			}
		}
		for _, dq := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dq=%v", c.name, dq), func(t *testing.T) {
				w, err := QuantizeNF4(vals, c.rows, c.cols, NF4Options{DoubleQuant: dq})
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Validate(); err != nil {
					t.Fatal(err)
				}
				for b := range w.NumBlocks() {
					if am := w.BlockAbsmax(b); !(abs32(am) <= math.MaxFloat32) {
						t.Fatalf("block %d: absmax %v", b, am)
					}
				}
				got := make([]float32, n)
				w.Dequantize(got)
				for i := range n {
					if !c.zero(i) {
						continue
					}
					if k := nibble(w, i); k != zeroCode {
						t.Fatalf("value %d (0): code %d, want %d", i, k, zeroCode)
					}
					if got[i] != 0 {
						t.Fatalf("value %d (0) dequantises to %v", i, got[i])
					}
				}
				if dq {
					return
				}
				// Plain absmax as bitsandbytes' reference stores it: 0 for a full zero
				// block, the 1e-38 floor it divides by for a partial one.
				for b := range w.NumBlocks() {
					if !c.zero(b * 64) {
						continue
					}
					want := float32(0)
					if (b+1)*64 > n {
						want = tiny
					}
					if w.Absmax[b] != want {
						t.Errorf("zero block %d: absmax %v, want %v", b, w.Absmax[b], want)
					}
				}
			})
		}
	}
}

// A block that holds a single non-zero value codes it as ±1 (the level of its own
// absmax) and the rest as 0: plain absmax gives the value back exactly, double
// quantisation gives ±(the dequantised absmax). Checked in every position that matters:
// first and last of a block, odd and even (low and high nibble), and in the last partial
// block. A value below the 1e-38 floor bitsandbytes divides by decodes to 0.
func TestNF4SingleNonZeroBlock(t *testing.T) {
	const rows, cols = 3, 53 // 159 values: two full blocks and a 31-value tail
	n := rows * cols
	for _, c := range []struct {
		pos int
		v   float32
	}{
		{0, 3}, {1, -0.7}, {63, 1e-3}, {64, -5e4}, {95, 0.0123}, {128, 2.5}, {158, -1e-30}, {157, 7},
	} {
		vals := make([]float32, n)
		vals[c.pos] = c.v
		for _, dq := range []bool{false, true} {
			t.Run(fmt.Sprintf("pos=%d/v=%v/dq=%v", c.pos, c.v, dq), func(t *testing.T) {
				w, err := QuantizeNF4(vals, rows, cols, NF4Options{DoubleQuant: dq})
				if err != nil {
					t.Fatal(err)
				}
				got := make([]float32, n)
				w.Dequantize(got)
				for i := range n {
					if i == c.pos {
						continue
					}
					if k := nibble(w, i); k != zeroCode || got[i] != 0 {
						t.Fatalf("value %d (0): code %d, dequantised %v", i, k, got[i])
					}
				}
				wantCode := byte(15)
				if c.v < 0 {
					wantCode = 0
				}
				if k := nibble(w, c.pos); k != wantCode {
					t.Fatalf("the non-zero value %v: code %d, want %d", c.v, k, wantCode)
				}
				am := w.BlockAbsmax(c.pos / 64)
				if want := NF4Code[wantCode] * am; got[c.pos] != want {
					t.Fatalf("the non-zero value dequantises to %v, want code·absmax = %v", got[c.pos], want)
				}
				if !dq && got[c.pos] != c.v {
					t.Fatalf("the non-zero value %v dequantises to %v", c.v, got[c.pos])
				}
				if dq && math.Abs(float64(got[c.pos]-c.v)) > 0.02*math.Abs(float64(c.v)) {
					t.Fatalf("the non-zero value %v dequantises to %v (double-quantised absmax)", c.v, got[c.pos])
				}
			})
		}
	}
	t.Run("below the 1e-38 floor", func(t *testing.T) {
		for _, pos := range []int{10, 140} { // a full block, the partial one
			vals := make([]float32, n)
			vals[pos] = 1e-40
			w, err := QuantizeNF4(vals, rows, cols, NF4Options{})
			if err != nil {
				t.Fatal(err)
			}
			if k := nibble(w, pos); k != zeroCode || w.At(pos/cols, pos%cols) != 0 {
				t.Errorf("pos %d: 1e-40 coded %d, dequantised %v; want the 0 level", pos, k, w.At(pos/cols, pos%cols))
			}
		}
	})
}

// The last block, shorter than 64, is scaled by its own absmax (not a neighbour's),
// codes each value by the nearest level, pads an odd count with the 0 level in the low
// nibble, and survives the bitsandbytes serialisation and every dequantisation path.
func TestNF4LastPartialBlock(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, sh := range [][2]int{{1, 1}, {1, 2}, {1, 63}, {1, 65}, {3, 17}, {7, 65}, {1, 127}, {33, 257}} {
		rows, cols := sh[0], sh[1]
		n := rows * cols
		full := n / 64 * 64
		vals := randNormal(r, n, 0.02)
		for i := full; i < n; i++ {
			vals[i] *= 1000 // a tail far larger than the blocks before it
		}
		for _, dq := range []bool{false, true} {
			t.Run(fmt.Sprintf("%dx%d/dq=%v", rows, cols, dq), func(t *testing.T) {
				w, err := QuantizeNF4(vals, rows, cols, NF4Options{DoubleQuant: dq})
				if err != nil {
					t.Fatal(err)
				}
				if nb := (n + 63) / 64; w.NumBlocks() != nb || len(w.Data) != (n+1)/2 {
					t.Fatalf("%d blocks and %d bytes, want %d and %d", w.NumBlocks(), len(w.Data), nb, (n+1)/2)
				}
				if n%2 == 1 && w.Data[n/2]&15 != zeroCode {
					t.Fatalf("odd count: pad nibble %d, want %d (0.0)", w.Data[n/2]&15, zeroCode)
				}
				if full == n {
					t.Fatal("shape has no partial block")
				}
				var am float32
				for _, x := range vals[full:] {
					am = max(am, abs32(x))
				}
				if !dq && w.Absmax[full/64] != am {
					t.Fatalf("tail absmax %v, want max|tail| %v", w.Absmax[full/64], am)
				}
				for i := full; i < n; i++ {
					if k, want := nibble(w, i), nearestNF4(float64(vals[i])/float64(am)); k != want {
						t.Fatalf("tail value %d (%v): code %d, want the nearest level %d", i, vals[i], k, want)
					}
				}
				want := make([]float32, n)
				for i := range want {
					want[i] = NF4Code[nibble(w, i)] * w.BlockAbsmax(i/64)
				}
				got := make([]float32, n)
				w.Dequantize(got)
				for i := range n {
					if got[i] != want[i] || w.At(i/cols, i%cols) != want[i] {
						t.Fatalf("value %d: Dequantize %v, At %v, want %v", i, got[i], w.At(i/cols, i%cols), want[i])
					}
				}
				// A range that starts in the last full block and ends in the tail.
				lo := max(0, full-5)
				part := make([]float32, n-lo)
				w.DequantizeRange(part, lo)
				for i, v := range part {
					if v != want[lo+i] {
						t.Fatalf("DequantizeRange from %d: value %d = %v, want %v", lo, lo+i, v, want[lo+i])
					}
				}
				// Through bitsandbytes' serialised form and back.
				tensors, err := w.Tensors("w")
				if err != nil {
					t.Fatal(err)
				}
				back, err := LoadBnb4bit(writeST(t, tensors), "w")
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if v := back.At(i/cols, i%cols); v != want[i] {
						t.Fatalf("after save and load: value %d = %v, want %v", i, v, want[i])
					}
				}
			})
		}
	}
}

// f64Tensor builds an F64 tensor from exact f64 values (NewTensor takes f32).
func f64Tensor(name string, shape []int, v []float64) safetensors.Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return safetensors.Tensor{Name: name, DType: safetensors.F64, Shape: shape, Data: b}
}

// A NaN or ±Inf in a weight is refused, from a checkpoint with a *NonFiniteError that
// names the tensor and the first bad element, from a slice without the name.
func TestQuantizeNonFiniteNamesTensor(t *testing.T) {
	const name = "model.layers.3.mlp.down_proj.weight"
	const rows, cols = 5, 70
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, bad := range []float32{nan, inf, -inf} {
		vals := make([]float32, rows*cols)
		for i := range vals {
			vals[i] = float32(i%13) * 0.01
		}
		vals[2*cols+37] = bad
		var tensors []safetensors.Tensor
		for _, dt := range []safetensors.DType{safetensors.BF16, safetensors.F16, safetensors.F32} {
			tn, err := safetensors.NewTensor(name+"."+string(dt), dt, []int{rows, cols}, vals)
			if err != nil {
				t.Fatal(err)
			}
			tensors = append(tensors, tn)
		}
		f := writeST(t, tensors)
		for _, tn := range tensors {
			for _, kind := range []Kind{KindNF4, KindInt8} {
				for _, viaLoad := range []bool{false, true} {
					var err error
					if viaLoad {
						_, err = Load(f, tn.Name, kind, NF4Options{DoubleQuant: true})
					} else {
						_, err = QuantizeTensor(f, tn.Name, kind, NF4Options{DoubleQuant: true})
					}
					checkNonFinite(t, err, tn.Name, kind, 2, 37, bad)
				}
			}
		}
	}
	// An F64 value beyond the f32 range reads as +Inf.
	v := make([]float64, rows*cols)
	v[4*cols+69] = 1e300
	f := writeST(t, []safetensors.Tensor{f64Tensor(name, []int{rows, cols}, v)})
	for _, kind := range []Kind{KindNF4, KindInt8} {
		_, err := QuantizeTensor(f, name, kind, NF4Options{})
		checkNonFinite(t, err, name, kind, 4, 69, inf)
	}
	// Several bad values in different quantisation chunks and rows: the first is named.
	const bigR, bigC = 200, 200 // 40000 values: three NF4 chunks
	big := make([]float32, bigR*bigC)
	big[39000], big[20001], big[30000] = nan, inf, -inf
	bt, _ := safetensors.NewTensor("big", safetensors.F32, []int{bigR, bigC}, big)
	f = writeST(t, []safetensors.Tensor{bt})
	for _, kind := range []Kind{KindNF4, KindInt8} {
		_, err := QuantizeTensor(f, "big", kind, NF4Options{})
		checkNonFinite(t, err, "big", kind, 100, 1, inf)
	}
	// Slices: the same error without a tensor name.
	vals := make([]float32, rows*cols)
	vals[3*cols+1] = nan
	_, err := QuantizeNF4(vals, rows, cols, NF4Options{})
	checkNonFinite(t, err, "", KindNF4, 3, 1, nan)
	_, err = QuantizeInt8(vals, rows, cols)
	checkNonFinite(t, err, "", KindInt8, 3, 1, nan)
	b16 := make([]uint16, rows*cols)
	b16[3*cols+1] = safetensors.F32ToBF16(-inf)
	_, err = QuantizeNF4BF16(b16, rows, cols, NF4Options{DoubleQuant: true})
	checkNonFinite(t, err, "", KindNF4, 3, 1, -inf)
}

func checkNonFinite(t *testing.T, err error, tensor string, kind Kind, row, col int, value float32) {
	t.Helper()
	var nf *NonFiniteError
	if !errors.As(err, &nf) {
		t.Fatalf("%s as %s: error %v, want a *NonFiniteError", tensor, kind, err)
	}
	sameValue := nf.Value == value || (value != value && nf.Value != nf.Value)
	if nf.Tensor != tensor || nf.Kind != kind || nf.Row != row || nf.Col != col || !sameValue {
		t.Fatalf("%s as %s: %+v, want value %v at [%d, %d]", tensor, kind, *nf, value, row, col)
	}
	msg := err.Error()
	for _, want := range []string{tensor, string(kind), fmt.Sprintf("[%d, %d]", row, col), fmt.Sprint(value)} {
		if !strings.Contains(msg, want) {
			t.Fatalf("message %q does not contain %q", msg, want)
		}
	}
}
