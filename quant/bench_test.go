package quant

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/bidora/bidora/kernels"
)

// Benchmarks report GFLOP/s (2·m·n·k per GEMM) or MB/s. Run e.g.
//
//	go test ./quant -run '^$' -bench 'GEMM' -count 5
//
// (see docs/benchmarks/quant.md for the numbers).

func withThreads(b *testing.B, threads int, f func(b *testing.B)) {
	prev := kernels.Threads()
	kernels.SetThreads(threads)
	defer kernels.SetThreads(prev)
	b.Run(fmt.Sprintf("t%d", threads), f)
}

// loop runs f b.N times on a locked OS thread and reports GFLOP/s (wall clock) and,
// with one kernel thread, GFLOP per CPU-second of that thread as "cpuGFLOP/s".
func loop(b *testing.B, flops float64, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := threadCPUSeconds()
	for b.Loop() {
		f()
	}
	cpu := threadCPUSeconds() - t0
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if kernels.Threads() == 1 && cpu > 0 {
		b.ReportMetric(flops*float64(b.N)/cpu/1e9, "cpuGFLOP/s")
	}
}

// BenchmarkGEMM: the gate/up projection of qwen2.5-0.5b at seq 512, Y[512×4864] =
// X[512×896]·Wᵀ (and its dX = dY·W), W in NF4 (double-quantised), INT8 and bf16.
func BenchmarkGEMM(b *testing.B) {
	const m, n, k = 512, 4864, 896
	r := rand.New(rand.NewPCG(1, 1))
	wf := randNormal(r, n*k, 0.02)
	x, dy := randNormal(r, m*k, 1), randNormal(r, m*n, 1)
	y, dx := make([]float32, m*n), make([]float32, m*k)
	nf4, _ := QuantizeNF4(wf, n, k, NF4Options{DoubleQuant: true})
	i8, _ := QuantizeInt8(wf, n, k)
	bf := make([]uint16, n*k)
	for i, v := range wf {
		bf[i] = kernels.F32ToBF16(v)
	}
	flops := 2.0 * m * n * k
	for _, th := range []int{1, 2} {
		withThreads(b, th, func(b *testing.B) {
			run := func(name string, f func()) {
				b.Run(name, func(b *testing.B) { loop(b, flops, f) })
			}
			run("NT/bf16", func() { kernels.MatMulNTBF16(y, x, bf, m, n, k, false) })
			run("NT/nf4", func() { nf4.MulNT(y, x, m, false) })
			run("NT/int8", func() { i8.MulNT(y, x, m, false) })
			run("NN/bf16", func() { kernels.MatMulNNBF16(dx, dy, bf, m, n, k, false) })
			run("NN/nf4", func() { nf4.MulNN(dx, dy, m, false) })
			run("NN/int8", func() { i8.MulNN(dx, dy, m, false) })
			// bf16 compute (--compute bf16): the bf16 base and the quantised tiles.
			run("NT/bf16c/bf16", func() { kernels.MatMulNTBF16Compute(y, x, bf, m, n, k, false) })
			run("NT/bf16c/nf4", func() { nf4.MulNTBF16(y, x, m, false) })
			run("NT/bf16c/int8", func() { i8.MulNTBF16(y, x, m, false) })
			run("NN/bf16c/bf16", func() { kernels.MatMulNNBF16Compute(dx, dy, bf, m, n, k, false) })
			run("NN/bf16c/nf4", func() { nf4.MulNNBF16(dx, dy, m, false) })
			run("NN/bf16c/int8", func() { i8.MulNNBF16(dx, dy, m, false) })
		})
	}
}

// BenchmarkGEMV: one token (m = 1), where dequantisation dominates.
func BenchmarkGEMV(b *testing.B) {
	const m, n, k = 1, 4864, 896
	r := rand.New(rand.NewPCG(2, 2))
	wf := randNormal(r, n*k, 0.02)
	x, y := randNormal(r, m*k, 1), make([]float32, m*n)
	nf4, _ := QuantizeNF4(wf, n, k, NF4Options{DoubleQuant: true})
	i8, _ := QuantizeInt8(wf, n, k)
	bf := make([]uint16, n*k)
	for i, v := range wf {
		bf[i] = kernels.F32ToBF16(v)
	}
	withThreads(b, 1, func(b *testing.B) {
		for name, f := range map[string]func(){
			"bf16": func() { kernels.MatMulNTBF16(y, x, bf, m, n, k, false) },
			"nf4":  func() { nf4.MulNT(y, x, m, false) },
			"int8": func() { i8.MulNT(y, x, m, false) },
		} {
			b.Run(name, func(b *testing.B) { loop(b, 2.0*m*n*k, f) })
		}
	})
}

// BenchmarkDequantize: decoding a whole 4864×896 matrix to f32 with each decoder set
// (MB/s of f32 output).
func BenchmarkDequantize(b *testing.B) {
	const n, k = 4864, 896
	r := rand.New(rand.NewPCG(3, 3))
	wf := randNormal(r, n*k, 0.02)
	nf4, _ := QuantizeNF4(wf, n, k, NF4Options{DoubleQuant: true})
	i8, _ := QuantizeInt8(wf, n, k)
	out := make([]float32, n*k)
	prev := Impl()
	defer func() { _ = SetImpl(prev) }()
	withThreads(b, 1, func(b *testing.B) {
		for _, impl := range Impls() {
			_ = SetImpl(impl)
			for _, w := range []Matrix{nf4, i8} {
				b.Run(impl+"/"+string(w.Kind()), func(b *testing.B) {
					b.SetBytes(4 * n * k)
					for b.Loop() {
						w.Dequantize(out)
					}
				})
			}
		}
	})
}

// BenchmarkQuantize: quantising a bf16 4864×896 weight (MB/s of bf16 input).
func BenchmarkQuantize(b *testing.B) {
	const n, k = 4864, 896
	r := rand.New(rand.NewPCG(4, 4))
	wf := randNormal(r, n*k, 0.02)
	bf := make([]uint16, n*k)
	for i, v := range wf {
		bf[i] = kernels.F32ToBF16(v)
	}
	for _, th := range []int{1, 2} {
		withThreads(b, th, func(b *testing.B) {
			b.Run("nf4-dq", func(b *testing.B) {
				b.SetBytes(2 * n * k)
				for b.Loop() {
					if _, err := QuantizeNF4BF16(bf, n, k, NF4Options{DoubleQuant: true}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("int8", func(b *testing.B) {
				b.SetBytes(2 * n * k)
				for b.Loop() {
					if _, err := quantizeInt8(n, k, func(dst []float32, start int) {
						for i, h := range bf[start : start+len(dst)] {
							dst[i] = kernels.BF16ToF32(h)
						}
					}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkDecodeGemv times one decode-step product (m = 1) on the qwen2.5-0.5b
// projection shapes with the weights out of cache, as in a decode step: successive
// calls walk through copies of the matrix totalling at least 64 Mi weights. Side by
// side: NF4 (double-quantised) and INT8 through MulNT (the fused GEMV), NF4 through
// the tiled dequantise-then-GEMM it replaced ("nf4-tiled"), and bf16 through
// kernels.GemvBF16. Run e.g.
//
//	go test ./quant -run '^$' -bench 'DecodeGemv' -count 5
func BenchmarkDecodeGemv(b *testing.B) {
	shapes := []struct {
		name string
		n, k int
	}{{"qo", 896, 896}, {"gateup", 4864, 896}, {"down", 896, 4864}}
	r := rand.New(rand.NewPCG(5, 5))
	for _, s := range shapes {
		n, k := s.n, s.k
		copies := max(1, (64<<20)/(n*k))
		wf := randNormal(r, n*k, 0.02)
		nf4, _ := QuantizeNF4(wf, n, k, NF4Options{DoubleQuant: true})
		i8, _ := QuantizeInt8(wf, n, k)
		bfs := make([]uint16, copies*n*k)
		nf4s, i8s := make([]*NF4, copies), make([]*Int8, copies)
		for c := range copies {
			for i, v := range wf {
				bfs[c*n*k+i] = kernels.F32ToBF16(v)
			}
			q := *nf4
			q.Data = append([]byte(nil), nf4.Data...)
			nq := *nf4.Nested
			nq.Q = append([]byte(nil), nf4.Nested.Q...)
			q.Nested = &nq
			nf4s[c] = &q
			i := *i8
			i.Data = append([]int8(nil), i8.Data...)
			i8s[c] = &i
		}
		x, y := randNormal(r, k, 1), make([]float32, n)
		call := 0
		next := func() int { call++; return call % copies }
		b.Run(fmt.Sprintf("%s/%dx%d", s.name, n, k), func(b *testing.B) {
			for _, th := range []int{1, 2} {
				withThreads(b, th, func(b *testing.B) {
					run := func(name string, f func()) {
						b.Run(name, func(b *testing.B) { loop(b, 2.0*float64(n)*float64(k), f) })
					}
					run("bf16", func() { c := next(); kernels.GemvBF16(y, x, bfs[c*n*k:(c+1)*n*k], 1, n, k, false) })
					run("nf4", func() { nf4s[next()].MulNT(y, x, 1, false) })
					run("int8", func() { i8s[next()].MulNT(y, x, 1, false) })
					run("nf4-tiled", func() { mulNT(nf4s[next()], y, x, 1, false) })
				})
			}
		})
	}
}
