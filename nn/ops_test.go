package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bidora/bidora/modelcfg"
)

func TestRoPE(t *testing.T) {
	const hd, heads, n = 10, 3, 5
	r, err := NewRoPE(hd, 10000, nil)
	if err != nil {
		t.Fatal(err)
	}
	pos := []int32{0, 1, 7, 2, 30}
	r.Ensure(31)
	rng := rand.New(rand.NewPCG(4, 4))
	x := randF32(rng, n*heads*hd, 1)
	rr := f64s(randF32(rng, n*heads*hd, 1))
	x64 := f64s(x)
	ref := func(x []float64) []float64 {
		y := make([]float64, len(x))
		for t := 0; t < n; t++ {
			for h := 0; h < heads; h++ {
				o := (t*heads + h) * hd
				for i := 0; i < hd/2; i++ {
					a := float64(pos[t]) * math.Pow(10000, -float64(2*i)/hd)
					x1, x2 := x[o+i], x[o+i+hd/2]
					y[o+i] = x1*math.Cos(a) - x2*math.Sin(a)
					y[o+i+hd/2] = x2*math.Cos(a) + x1*math.Sin(a)
				}
			}
		}
		return y
	}
	y := append([]float32(nil), x...)
	r.Forward(y, pos, n, heads)
	assertClose(t, "rope forward", y, ref(x64), 1e-6)
	dy := make([]float32, len(rr))
	for i, v := range rr {
		dy[i] = float32(v)
	}
	r.Backward(dy, pos, n, heads)
	assertClose(t, "rope backward", dy, numGrad(x64, func() float64 { return dot64(ref(x64), rr) }), 1e-5)
}

func TestRoPEScaling(t *testing.T) {
	base, _ := NewRoPE(128, 500000, nil)
	sc := &modelcfg.RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}
	l3, err := NewRoPE(128, 500000, sc)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range base.InvFreq {
		wave := 2 * math.Pi / f
		g := l3.InvFreq[i]
		switch {
		case wave < 8192/4.0:
			if g != f {
				t.Errorf("high-frequency %d changed: %g → %g", i, f, g)
			}
		case wave > 8192:
			if math.Abs(g-f/32) > 1e-15 {
				t.Errorf("low-frequency %d: %g, want %g", i, g, f/32)
			}
		default:
			if !(g >= f/32 && g <= f) {
				t.Errorf("medium frequency %d: %g not between %g and %g", i, g, f/32, f)
			}
		}
	}
	lin, _ := NewRoPE(8, 10000, &modelcfg.RopeScaling{Type: "linear", Factor: 4})
	if lin.InvFreq[1] != math.Pow(10000, -0.25)/4 {
		t.Errorf("linear scaling inv_freq[1] = %g", lin.InvFreq[1])
	}
	if _, err := NewRoPE(8, 10000, &modelcfg.RopeScaling{Type: "yarn"}); err == nil {
		t.Error("yarn scaling accepted")
	}
}

// attnRef is causal masked GQA attention in f64 with a full score matrix.
func attnRef(q, k, v []float64, sh *AttnShape) []float64 {
	B, T, Hq, Hkv, D := sh.B, sh.T, sh.Hq, sh.Hkv, sh.D
	out := make([]float64, B*T*Hq*D)
	for b := 0; b < B; b++ {
		for h := 0; h < Hq; h++ {
			kh := h / (Hq / Hkv)
			for i := 0; i < T; i++ {
				qi := q[(b*T+i)*Hq*D+h*D:][:D]
				var sc []float64
				var js []int
				mx := math.Inf(-1)
				for j := 0; j <= i && j < sh.length(b); j++ {
					if !sh.visible(b, i, j) {
						continue
					}
					s := dot64(qi, k[(b*T+j)*Hkv*D+kh*D:][:D]) / math.Sqrt(float64(D))
					sc, js = append(sc, s), append(js, j)
					mx = math.Max(mx, s)
				}
				var z float64
				for _, s := range sc {
					z += math.Exp(s - mx)
				}
				for n, j := range js {
					p := math.Exp(sc[n]-mx) / z
					for d := 0; d < D; d++ {
						out[(b*T+i)*Hq*D+h*D+d] += p * v[(b*T+j)*Hkv*D+kh*D+d]
					}
				}
			}
		}
	}
	return out
}

func TestAttention(t *testing.T) {
	cases := []struct {
		name string
		sh   AttnShape
	}{
		{"single", AttnShape{B: 1, T: 1, Hq: 1, Hkv: 1, D: 2}},
		{"gqa-padded", AttnShape{B: 2, T: 13, Hq: 4, Hkv: 2, D: 6, Lengths: []int{13, 9}}},
		{"mha-odd", AttnShape{B: 1, T: 7, Hq: 3, Hkv: 3, D: 4}},
		{"segments", AttnShape{B: 2, T: 11, Hq: 2, Hkv: 1, D: 4, Lengths: []int{11, 8},
			Segments: []int32{0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2}}},
		{"multi-block", AttnShape{B: 1, T: 150, Hq: 2, Hkv: 1, D: 3, Lengths: []int{141}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sh := c.sh
			rng := rand.New(rand.NewPCG(5, uint64(sh.T)))
			nq, nk := sh.B*sh.T*sh.Hq*sh.D, sh.B*sh.T*sh.Hkv*sh.D
			q, k, v := randF32(rng, nq, 1), randF32(rng, nk, 1), randF32(rng, nk, 1)
			r := f64s(randF32(rng, nq, 1))
			// Padded queries carry no gradient in the model; zero them here too.
			for b := 0; b < sh.B; b++ {
				for i := sh.length(b); i < sh.T; i++ {
					for d := 0; d < sh.Hq*sh.D; d++ {
						r[(b*sh.T+i)*sh.Hq*sh.D+d] = 0
					}
				}
			}
			out, lse := make([]float32, nq), make([]float32, sh.B*sh.Hq*sh.T)
			AttentionForward(out, lse, q, k, v, &sh)
			q64, k64, v64 := f64s(q), f64s(k), f64s(v)
			assertClose(t, "attention forward", out, attnRef(q64, k64, v64, &sh), 1e-5)
			dout := make([]float32, nq)
			for i, x := range r {
				dout[i] = float32(x)
			}
			dq, dk, dv := make([]float32, nq), make([]float32, nk), make([]float32, nk)
			AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v, make([]float32, len(lse)), &sh)
			loss := func() float64 { return dot64(attnRef(q64, k64, v64, &sh), r) }
			if sh.T > 20 { // finite differences on a few entries only
				for _, x := range []struct {
					name string
					g    []float32
					p    []float64
				}{{"dq", dq, q64}, {"dk", dk, k64}, {"dv", dv, v64}} {
					for _, i := range []int{0, 7, len(x.p) / 2, len(x.p) - 5} {
						sub := numGrad(x.p[i:i+1], loss)
						assertClose(t, x.name+" sample", x.g[i:i+1], sub, 1e-4)
					}
				}
				return
			}
			assertClose(t, "dq", dq, numGrad(q64, loss), 1e-5)
			assertClose(t, "dk", dk, numGrad(k64, loss), 1e-5)
			assertClose(t, "dv", dv, numGrad(v64, loss), 1e-5)
		})
	}
}

func TestCrossEntropy(t *testing.T) {
	const V, d, n = 37, 5, 11
	rng := rand.New(rand.NewPCG(6, 6))
	w := randF32(rng, V*d, 1)
	h := randF32(rng, n*d, 1)
	targets := []int32{3, -100, 0, 36, 5, 5, -1, 12, 1, 2, -100}
	w64, h64 := f64s(w), f64s(h)
	ref := func() float64 {
		var s float64
		for t := 0; t < n; t++ {
			if targets[t] < 0 {
				continue
			}
			l := make([]float64, V)
			mx := math.Inf(-1)
			for j := range l {
				l[j] = dot64(h64[t*d:(t+1)*d], w64[j*d:(j+1)*d])
				mx = math.Max(mx, l[j])
			}
			var z float64
			for _, v := range l {
				z += math.Exp(v - mx)
			}
			s += mx + math.Log(z) - l[targets[t]]
		}
		return s
	}
	for _, chunkBytes := range []int{1, 4 * 4 * V, 1 << 20} {
		ce := NewCrossEntropy(&Weight{Rows: V, Cols: d, F32: w}, chunkBytes)
		dh := make([]float32, n*d)
		loss, cnt := ce.LossAndGrad(h, targets, n, dh, 1)
		if cnt != 8 {
			t.Fatalf("count %d, want 8", cnt)
		}
		if want := ref(); math.Abs(loss-want) > 1e-5*math.Abs(want) {
			t.Errorf("chunk %d: loss %.9g, want %.9g", ce.ChunkRows, loss, want)
		}
		assertClose(t, "dh", dh, numGrad(h64, ref), 1e-5)
		loss2, _ := ce.LossAndGrad(h, targets, n, nil, 1)
		if loss2 != loss {
			t.Errorf("loss without grad %g != %g", loss2, loss)
		}
	}
}
