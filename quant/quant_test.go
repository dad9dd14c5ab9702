package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/safetensors"
)

func randNormal(r *rand.Rand, n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * std)
	}
	return v
}

// forEachImpl runs f with every decoder set of this CPU.
func forEachImpl(t *testing.T, f func(t *testing.T)) {
	prev := Impl()
	defer func() { _ = SetImpl(prev) }()
	for _, name := range Impls() {
		if err := SetImpl(name); err != nil {
			t.Fatal(err)
		}
		t.Run(name, f)
	}
}

func TestDecodersBitExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	src := make([]byte, 300)
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	i8 := make([]int8, 300)
	for i := range i8 {
		i8[i] = int8(r.Uint32())
	}
	i8[0], i8[1] = -128, 127
	scale := float32(0.0123)
	forEachImpl(t, func(t *testing.T) {
		for _, n := range []int{0, 1, 7, 8, 9, 16, 17, 31, 32, 33, 64, 127, 150} {
			for _, off := range []int{0, 1, 5} {
				got := make([]float32, 2*n+1)
				want := make([]float32, 2*n+1)
				decodeNF4Pairs(got, src[off:off+n], &NF4Code, scale)
				decodeNF4PairsGo(want, src[off:off+n], &NF4Code, scale)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("nf4 n=%d off=%d: value %d = %v, want %v", n, off, i, got[i], want[i])
					}
				}
				got, want = got[:n+1], want[:n+1]
				got[n], want[n] = 7, 7 // past the end: must stay untouched
				decodeInt8(got[:n], i8[off:off+n], scale)
				decodeInt8Go(want[:n], i8[off:off+n], scale)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("int8 n=%d off=%d: value %d = %v, want %v", n, off, i, got[i], want[i])
					}
				}
			}
		}
	})
}

// Dequantised values are code·absmax of the right block, whatever range is asked for.
func TestNF4DequantizeRange(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rows, cols := 7, 65
	w, err := QuantizeNF4(randNormal(r, rows*cols, 1), rows, cols, NF4Options{DoubleQuant: true})
	if err != nil {
		t.Fatal(err)
	}
	n := rows * cols
	want := make([]float32, n)
	for i := range want {
		b := w.Data[i/2] >> 4
		if i%2 == 1 {
			b = w.Data[i/2] & 15
		}
		want[i] = NF4Code[b] * w.BlockAbsmax(i/64)
	}
	for i := range n {
		if got := w.At(i/cols, i%cols); got != want[i] {
			t.Fatalf("At(%d, %d) = %v, want %v", i/cols, i%cols, got, want[i])
		}
	}
	forEachImpl(t, func(t *testing.T) {
		for _, rg := range [][2]int{{0, n}, {1, 64}, {63, 130}, {64, 64}, {n - 1, n}, {100, 100}, {5, 300}} {
			got := make([]float32, rg[1]-rg[0])
			w.DequantizeRange(got, rg[0])
			for i, v := range got {
				if v != want[rg[0]+i] {
					t.Fatalf("range %v: value %d = %v, want %v", rg, rg[0]+i, v, want[rg[0]+i])
				}
			}
		}
	})
}

func TestNF4RoundTripError(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	w := randNormal(r, 256*256, 0.02)
	q, err := QuantizeNF4(w, 256, 256, NF4Options{DoubleQuant: true})
	if err != nil {
		t.Fatal(err)
	}
	d := make([]float32, len(w))
	q.Dequantize(d)
	if e := relFrobenius(d, w); e < 0.05 || e > 0.15 {
		t.Fatalf("relative Frobenius error of NF4 on normal(0, 0.02) = %.4f, want about 0.10", e)
	}
	i8, err := QuantizeInt8(w, 256, 256)
	if err != nil {
		t.Fatal(err)
	}
	i8.Dequantize(d)
	if e := relFrobenius(d, w); e < 0.002 || e > 0.02 {
		t.Fatalf("relative Frobenius error of INT8 = %.4f, want about 0.008", e)
	}
}

func relFrobenius(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / den)
}

func TestQuantizeRejectsNonFinite(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		w := make([]float32, 130)
		w[100] = bad
		if _, err := QuantizeNF4(w, 2, 65, NF4Options{}); err == nil {
			t.Errorf("NF4 accepted %v", bad)
		}
		if _, err := QuantizeInt8(w, 2, 65); err == nil {
			t.Errorf("INT8 accepted %v", bad)
		}
	}
	if _, err := QuantizeNF4(make([]float32, 5), 2, 3, NF4Options{}); err == nil {
		t.Error("NF4 accepted a short slice")
	}
}

func TestInt8RoundHalfEven(t *testing.T) {
	// scale = 127/127 = 1: 0.5 → 0, 1.5 → 2, 2.5 → 2, −0.5 → −0, −2.5 → −2.
	w := []float32{127, 0.5, 1.5, 2.5, -0.5, -2.5, -127, 0}
	q, err := QuantizeInt8(w, 1, len(w))
	if err != nil {
		t.Fatal(err)
	}
	want := []int8{127, 0, 2, 2, 0, -2, -127, 0}
	for i := range want {
		if q.Data[i] != want[i] {
			t.Fatalf("q = %v, want %v", q.Data, want)
		}
	}
	d := make([]float32, len(w))
	q.Dequantize(d)
	for i := range w {
		if want := float32(want[i]) * q.Scale[0]; d[i] != want || q.At(0, i) != want {
			t.Fatalf("dequantised %d = %v / %v, want %v", i, d[i], q.At(0, i), want)
		}
	}
	z, _ := QuantizeInt8(make([]float32, 4), 2, 2)
	if z.Scale[0] != 0 || z.Data[0] != 0 {
		t.Fatalf("zero rows: %+v", z)
	}
}

// quantized returns an NF4 (double-quantised) and an INT8 version of a random matrix.
func quantized(t testing.TB, r *rand.Rand, n, k int) []Matrix {
	w := randNormal(r, n*k, 0.5)
	a, err := QuantizeNF4(w, n, k, NF4Options{DoubleQuant: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := QuantizeInt8(w, n, k)
	if err != nil {
		t.Fatal(err)
	}
	return []Matrix{a, b}
}

var awkward = []int{1, 3, 17, 63, 65, 127, 257}

// The fused GEMMs equal dequantise-then-GEMM on awkward shapes (blocks of 64 run across
// rows when k is not a multiple of 64), with and without accumulation, with the
// default tiles and with tiny ones (many tiles per call), on every decoder set and
// with 1 and 2 threads.
func TestFusedGEMMMatchesDequantized(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	prevPanel, prevThreads := panelFloats, kernels.Threads()
	defer func() { panelFloats = prevPanel; kernels.SetThreads(prevThreads) }()
	type tc struct{ m, n, k int }
	var cases []tc
	for i, n := range awkward {
		for j, k := range awkward {
			cases = append(cases, tc{awkward[(i+j)%len(awkward)], n, k})
		}
	}
	mats := map[tc][]Matrix{}
	for _, c := range cases {
		mats[c] = quantized(t, r, c.n, c.k)
	}
	forEachImpl(t, func(t *testing.T) {
		for _, setup := range []struct {
			panel, threads int
		}{{1 << 16, 1}, {300, 2}} {
			panelFloats = setup.panel
			kernels.SetThreads(setup.threads)
			for _, c := range cases {
				for _, w := range mats[c] {
					checkGEMM(t, r, w, c.m, fmt.Sprintf("%s m=%d n=%d k=%d panel=%d threads=%d", w.Kind(), c.m, c.n, c.k, setup.panel, setup.threads))
				}
			}
		}
	})
}

func checkGEMM(t *testing.T, r *rand.Rand, w Matrix, m int, name string) {
	t.Helper()
	n, k := w.Shape()
	dense := make([]float32, n*k)
	w.Dequantize(dense)
	x := randNormal(r, m*k, 1)
	dy := randNormal(r, m*n, 1)
	for _, acc := range []bool{false, true} {
		y0 := randNormal(r, m*n, 1)
		got, want := append([]float32(nil), y0...), append([]float32(nil), y0...)
		w.MulNT(got, x, m, acc)
		kernels.MatMulNT(want, x, dense, m, n, k, acc)
		compare(t, name+fmt.Sprintf(" MulNT acc=%v", acc), got, want, k)

		dx0 := randNormal(r, m*k, 1)
		got, want = append([]float32(nil), dx0...), append([]float32(nil), dx0...)
		w.MulNN(got, dy, m, acc)
		kernels.MatMulNN(want, dy, dense, m, n, k, acc)
		compare(t, name+fmt.Sprintf(" MulNN acc=%v", acc), got, want, n)
	}
}

func compare(t *testing.T, name string, got, want []float32, depth int) {
	t.Helper()
	tol := 1e-5 * float64(depth+1)
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s: element %d = %v, dequantise-then-GEMM %v", name, i, got[i], want[i])
		}
	}
}

// writeST writes tensors to a temporary safetensors file and opens it.
func writeST(t *testing.T, tensors []safetensors.Tensor) *safetensors.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := safetensors.WriteFile(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Streaming from any float dtype gives exactly what quantising the f32 values gives.
func TestQuantizeTensorDTypes(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	rows, cols := 33, 257 // 8481 values: one quantisation chunk
	vals := randNormal(r, rows*cols, 0.02)
	big := randNormal(r, 300*301, 0.02) // 90300 values: six quantisation chunks
	var tensors []safetensors.Tensor
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16, safetensors.F64} {
		tn, err := safetensors.NewTensor("w."+string(dt), dt, []int{rows, cols}, vals)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, tn)
	}
	bt, _ := safetensors.NewTensor("big", safetensors.BF16, []int{3, 100, 301}, big)
	tensors = append(tensors, bt)
	f := writeST(t, tensors)
	for _, tn := range tensors {
		want, _ := f.Float32(tn.Name) // the values as stored, widened
		r, c := rows, cols
		if tn.Name == "big" {
			r, c = 300, 301
		}
		wn, _ := QuantizeNF4(want, r, c, NF4Options{DoubleQuant: true})
		wi, _ := QuantizeInt8(want, r, c)
		gn, err := QuantizeTensor(f, tn.Name, KindNF4, NF4Options{DoubleQuant: true})
		if err != nil {
			t.Fatal(err)
		}
		gi, err := QuantizeTensor(f, tn.Name, KindInt8, NF4Options{})
		if err != nil {
			t.Fatal(err)
		}
		if string(gn.(*NF4).Data) != string(wn.Data) || string(gn.(*NF4).Nested.Q) != string(wn.Nested.Q) {
			t.Errorf("%s: streamed NF4 differs", tn.Name)
		}
		if fmt.Sprint(gi.(*Int8).Data) != fmt.Sprint(wi.Data) || fmt.Sprint(gi.(*Int8).Scale) != fmt.Sprint(wi.Scale) {
			t.Errorf("%s: streamed INT8 differs", tn.Name)
		}
	}
	if _, err := QuantizeTensor(f, "nope", KindNF4, NF4Options{}); err == nil {
		t.Error("missing tensor accepted")
	}
	if _, err := QuantizeTensor(f, "big", KindNone, NF4Options{}); err == nil {
		t.Error("kind none accepted")
	}
}

// Quantising while loading never allocates a full f32 copy of the weight.
func TestQuantizeTensorStreams(t *testing.T) {
	const rows, cols = 1024, 1024
	r := rand.New(rand.NewPCG(13, 14))
	tn, _ := safetensors.NewTensor("w", safetensors.BF16, []int{rows, cols}, randNormal(r, rows*cols, 0.02))
	f := writeST(t, []safetensors.Tensor{tn})
	for _, kind := range []Kind{KindNF4, KindInt8} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, err := QuantizeTensor(f, "w", kind, NF4Options{DoubleQuant: true})
		if err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		extra := int64(alloc) - m.Bytes()
		// An f32 copy would be 4 MiB; the scratch is one chunk (64 KiB) or row per worker
		// plus the absmax before double quantisation.
		if extra > 1<<20 {
			t.Errorf("%s: allocated %d bytes beyond the %d-byte result (an f32 copy is %d)", kind, extra, m.Bytes(), rows*cols*4)
		}
	}
}

// A checkpoint in bitsandbytes' format (written from our own quantisation) loads back
// without re-quantising, and Load prefers it over quantising.
func TestBnbRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, dq := range []bool{false, true} {
		w, err := QuantizeNF4(randNormal(r, 65*127, 0.02), 65, 127, NF4Options{DoubleQuant: dq})
		if err != nil {
			t.Fatal(err)
		}
		ts, err := w.Tensors("model.layers.0.mlp.down_proj.weight")
		if err != nil {
			t.Fatal(err)
		}
		f := writeST(t, ts)
		m, err := Load(f, "model.layers.0.mlp.down_proj.weight", KindNF4, NF4Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := m.(*NF4)
		a, b := make([]float32, 65*127), make([]float32, 65*127)
		w.Dequantize(a)
		got.Dequantize(b)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("dq=%v: value %d = %v after the round trip, want %v", dq, i, b[i], a[i])
			}
		}
		if got.Bytes() != w.Bytes() || got.DType != "float32" {
			t.Errorf("dq=%v: loaded %d bytes dtype %q, want %d float32", dq, got.Bytes(), got.DType, w.Bytes())
		}
		if _, err := Load(f, "model.layers.0.mlp.down_proj.weight", KindInt8, NF4Options{}); err == nil {
			t.Error("loading a bnb NF4 weight as int8 succeeded")
		}
	}
}

func TestLoadBnb4bitErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	w, _ := QuantizeNF4(randNormal(r, 200, 1), 10, 20, NF4Options{DoubleQuant: true})
	good, _ := w.Tensors("w")
	state := func(js string) safetensors.Tensor {
		return safetensors.Tensor{Name: "w.quant_state.bitsandbytes__nf4", DType: safetensors.U8, Shape: []int{len(js)}, Data: []byte(js)}
	}
	replace := func(tn safetensors.Tensor) []safetensors.Tensor {
		var out []safetensors.Tensor
		for _, g := range good {
			if g.Name != tn.Name {
				out = append(out, g)
			}
		}
		if tn.Data != nil {
			out = append(out, tn)
		}
		return out
	}
	drop := func(name string) []safetensors.Tensor { return replace(safetensors.Tensor{Name: name}) }
	cases := map[string][]safetensors.Tensor{
		"bad json":        replace(state(`{"quant_type": `)),
		"fp4 type":        replace(state(`{"quant_type": "fp4", "blocksize": 64, "dtype": "float32", "shape": [10, 20]}`)),
		"wrong shape":     replace(state(`{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [10, 21], "nested_blocksize": 256, "nested_offset": 0.1}`)),
		"odd blocksize":   replace(state(`{"quant_type": "nf4", "blocksize": 63, "dtype": "float32", "shape": [10, 20]}`)),
		"no quant_map":    drop("w.quant_map"),
		"no nested":       drop("w.nested_absmax"),
		"no nested map":   drop("w.nested_quant_map"),
		"plain absmax U8": replace(state(`{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [10, 20]}`)),
	}
	for name, ts := range cases {
		t.Run(name, func(t *testing.T) {
			f := writeST(t, ts)
			if _, err := LoadBnb4bit(f, "w"); err == nil {
				t.Fatal("loaded")
			} else {
				t.Log(err)
			}
		})
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"nf4": KindNF4, "NF4": KindNF4, "int8": KindInt8, " none ": KindNone} {
		if k, err := ParseKind(in); err != nil || k != want {
			t.Errorf("ParseKind(%q) = %q, %v", in, k, err)
		}
	}
	for _, in := range []string{"auto", "fp4", ""} {
		if _, err := ParseKind(in); err == nil {
			t.Errorf("ParseKind(%q) accepted", in)
		}
	}
}

func TestPyFloat(t *testing.T) {
	for v, want := range map[float64]string{0: "0.0", 1: "1.0", 0.25: "0.25", 1e-5: "1e-05", 0.0001: "0.0001", 1.5e-7: "1.5e-07", 123.5: "123.5", 1e16: "1e+16"} {
		if got := pyFloat(v); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", v, got, want)
		}
	}
}
