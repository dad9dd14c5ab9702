package model

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/nn"
	"github.com/bidora/bidora/optim"
	"github.com/bidora/bidora/quant"
	"github.com/bidora/bidora/safetensors"
)

// quantTestDir writes a small random bf16 model whose projections have shapes that
// are not multiples of NF4's block of 64 (blocks run across rows).
func quantTestDir(t *testing.T, arch string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := tinymodel.Write(dir, tinymodel.Options{Arch: arch, HiddenSize: 48, IntermediateSize: 100, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, DType: safetensors.BF16, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadModel(t *testing.T, dir string, opts Options) *Model {
	t.Helper()
	m, err := Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func quantBatch(vocab int) *dataset.Batch {
	return randomBatch(2, 24, vocab, []int{24, 17})
}

// Loading with nf4 / int8 quantises the seven projections (and nothing else), and the
// loss stays close to the bf16 model's.
func TestLoadQuantizedLossCloseToBF16(t *testing.T) {
	ctx := context.Background()
	dir := quantTestDir(t, "qwen2")
	base := loadModel(t, dir, Options{})
	b := quantBatch(base.Config.VocabSize)
	ref, err := asResult(base.Loss(ctx, b))
	if err != nil {
		t.Fatal(err)
	}
	refLogits, err := base.Logits(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind    quant.Kind
		noDQ    bool
		maxLoss float64 // |Δ mean loss| bound
		relLog  float64 // relative RMS change of the logits, bounds
		minLog  float64
	}{
		{quant.KindNF4, false, 0.02, 0.2, 0.01},
		{quant.KindNF4, true, 0.02, 0.2, 0.01},
		{quant.KindInt8, false, 0.002, 0.02, 0.0005},
	} {
		t.Run(fmt.Sprintf("%s/doublequant=%v", tc.kind, !tc.noDQ), func(t *testing.T) {
			m := loadModel(t, dir, Options{Quant: tc.kind, NoDoubleQuant: tc.noDQ})
			if m.Quantization() != tc.kind || m.PreQuantized() {
				t.Fatalf("Quantization() = %q, PreQuantized() = %v", m.Quantization(), m.PreQuantized())
			}
			if m.Embed.Format() != "bf16" {
				t.Errorf("embeddings held as %s, want bf16", m.Embed.Format())
			}
			for _, ly := range m.Layers {
				for p, lin := range ly.Proj {
					if lin.W.Format() != string(tc.kind) {
						t.Fatalf("%s held as %s", modelcfg.Projections[p], lin.W.Format())
					}
					nf4, ok := lin.W.Q.(*quant.NF4)
					if ok && (nf4.Nested != nil) == tc.noDQ {
						t.Fatalf("%s: double quantisation %v, want %v", modelcfg.Projections[p], nf4.Nested != nil, !tc.noDQ)
					}
				}
			}
			res, err := asResult(m.Loss(ctx, b))
			if err != nil {
				t.Fatal(err)
			}
			logits, err := m.Logits(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			var num, den float64
			for i := range logits {
				d := float64(logits[i] - refLogits[i])
				num += d * d
				den += float64(refLogits[i]) * float64(refLogits[i])
			}
			rel := math.Sqrt(num / den)
			dl := res.Mean() - ref.Mean()
			t.Logf("%s: loss %.6f vs bf16 %.6f (Δ %+.2e), logits relative RMS change %.4f", tc.kind, res.Mean(), ref.Mean(), dl, rel)
			if math.Abs(dl) > tc.maxLoss || rel > tc.relLog || rel < tc.minLog {
				t.Errorf("Δloss %.3g (bound %g), logit change %.4f (want in [%g, %g])", dl, tc.maxLoss, rel, tc.minLog, tc.relLog)
			}
		})
	}
}

// dequantizedTwin returns an f32 model of dir whose projections hold the dequantised
// values of q's quantised projections.
func dequantizedTwin(t *testing.T, dir string, q *Model) *Model {
	t.Helper()
	d := loadModel(t, dir, Options{F32Weights: true, Seed: q.opts.Seed})
	for l, ly := range q.Layers {
		for p, lin := range ly.Proj {
			w := lin.W
			v := make([]float32, w.Rows*w.Cols)
			w.Q.Dequantize(v)
			d.Layers[l].Proj[p].W = &nn.Weight{Rows: w.Rows, Cols: w.Cols, F32: v}
		}
	}
	return d
}

func perturbAdapters(m *Model) {
	for i, p := range m.Params() {
		for j := range p.Data {
			p.Data[j] += float32(math.Sin(float64(i*131+j))) * 0.05
		}
	}
}

// The fused quantised GEMMs inside a whole forward and backward (LoRA and QDoRA, with
// dropout) give the loss and adapter gradients of the same model with the weights
// dequantised to f32 up front.
func TestQuantizedModelMatchesDequantizedF32(t *testing.T) {
	ctx := context.Background()
	for _, arch := range []string{"llama", "qwen2"} {
		dir := quantTestDir(t, arch)
		for _, kind := range []quant.Kind{quant.KindNF4, quant.KindInt8} {
			for _, dora := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/dora=%v", arch, kind, dora), func(t *testing.T) {
					ac := AdapterConfig{Targets: []string{"all-linear"}, Rank: 4, Alpha: 8, Dropout: 0.1, DoRA: dora}
					q := loadModel(t, dir, Options{Quant: kind, Seed: 5})
					d := dequantizedTwin(t, dir, q)
					for _, m := range []*Model{q, d} {
						if err := m.AddAdapters(ac); err != nil {
							t.Fatal(err)
						}
						perturbAdapters(m)
					}
					b := quantBatch(q.Config.VocabSize)
					rq, err := asResult(q.LossAndGrad(ctx, b))
					if err != nil {
						t.Fatal(err)
					}
					rd, err := asResult(d.LossAndGrad(ctx, b))
					if err != nil {
						t.Fatal(err)
					}
					if rq.Tokens != rd.Tokens || math.Abs(rq.Mean()-rd.Mean()) > 1e-5*math.Abs(rd.Mean()) {
						t.Errorf("loss %.8f (%d tokens), dequantised f32 %.8f (%d)", rq.Mean(), rq.Tokens, rd.Mean(), rd.Tokens)
					}
					gd := gradsOf(d)
					for i, g := range gradsOf(q) {
						var num, den float64
						for j := range g {
							e := float64(g[j] - gd[i][j])
							num += e * e
							den += float64(gd[i][j]) * float64(gd[i][j])
						}
						if den == 0 || math.Sqrt(num/den) > 1e-4 {
							t.Errorf("%s: gradient relative error %.3g (norm² %.3g)", q.Params()[i].Name, math.Sqrt(num/den), den)
						}
					}
				})
			}
		}
	}
}

// writeBnb4bit rewrites the model of src into dst with every projection stored as
// bitsandbytes saves a Linear4bit (codes, absmax, maps, quant_state), and returns the
// quantised projections by name.
func writeBnb4bit(t *testing.T, src, dst string, opt quant.NF4Options) map[string]*quant.NF4 {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := safetensors.OpenDir(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := modelcfg.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	proj := map[string]bool{}
	for l := range cfg.NumHiddenLayers {
		for _, p := range modelcfg.Projections {
			proj[moduleName(l, p)+".weight"] = true
		}
	}
	qs := map[string]*quant.NF4{}
	var tensors []safetensors.Tensor
	for _, name := range st.Names() {
		if proj[name] {
			m, err := quant.QuantizeTensor(st, name, quant.KindNF4, opt)
			if err != nil {
				t.Fatal(err)
			}
			qs[name] = m.(*quant.NF4)
			ts, err := qs[name].Tensors(name)
			if err != nil {
				t.Fatal(err)
			}
			tensors = append(tensors, ts...)
			continue
		}
		info, _ := st.Info(name)
		raw, err := st.Bytes(name)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, safetensors.Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: append([]byte(nil), raw...)})
	}
	if err := safetensors.WriteFile(filepath.Join(dst, safetensors.SingleFileName), tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return qs
}

// A checkpoint saved in bitsandbytes' 4-bit layout loads as stored, whatever Quant
// asks for, and computes exactly what quantising the bf16 checkpoint computes.
func TestLoadBnb4bitCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := quantTestDir(t, "qwen2")
	for _, dq := range []bool{true, false} {
		t.Run(fmt.Sprintf("doublequant=%v", dq), func(t *testing.T) {
			bnbDir := filepath.Join(t.TempDir(), "bnb")
			written := writeBnb4bit(t, dir, bnbDir, quant.NF4Options{DoubleQuant: dq})
			want := loadModel(t, dir, Options{Quant: quant.KindNF4, NoDoubleQuant: !dq})
			b := quantBatch(want.Config.VocabSize)
			wantLogits, err := want.Logits(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			// Quant none and int8 are overridden: the stored NF4 codes are used (for int8
			// this would otherwise mean re-quantising a lossy NF4 weight).
			for _, k := range []quant.Kind{"", quant.KindNF4, quant.KindInt8} {
				m := loadModel(t, bnbDir, Options{Quant: k, NoDoubleQuant: true})
				if !m.PreQuantized() || m.Quantization() != quant.KindNF4 {
					t.Fatalf("Quant %q: PreQuantized %v, Quantization %q", k, m.PreQuantized(), m.Quantization())
				}
				for l, ly := range m.Layers {
					for p, lin := range ly.Proj {
						name := moduleName(l, modelcfg.Projections[p]) + ".weight"
						got := lin.W.Q.(*quant.NF4)
						if (got.Nested != nil) != dq || string(got.Data) != string(written[name].Data) {
							t.Fatalf("%s: codes or scales differ from the stored ones", name)
						}
					}
				}
				logits, err := m.Logits(ctx, b)
				if err != nil {
					t.Fatal(err)
				}
				for i := range logits {
					if logits[i] != wantLogits[i] {
						t.Fatalf("Quant %q: logit %d = %g, quantising the bf16 model gives %g", k, i, logits[i], wantLogits[i])
					}
				}
			}
		})
	}
}

// QDoRA (DoRA on NF4 weights) trains: the loss on a fixed batch falls under AdamW.
func TestQDoRATrains(t *testing.T) {
	ctx := context.Background()
	m := loadModel(t, quantTestDir(t, "llama"), Options{Quant: quant.KindNF4, Seed: 2})
	if err := m.AddAdapters(AdapterConfig{Targets: []string{"all-linear"}, Rank: 4, Alpha: 8, DoRA: true}); err != nil {
		t.Fatal(err)
	}
	var params []optim.Param
	for _, p := range m.Params() {
		params = append(params, optim.Param{Name: p.Name, Data: p.Data, Grad: p.Grad})
	}
	opt := optim.NewAdamW(0)
	b := quantBatch(m.Config.VocabSize)
	var first, last float64
	for step := range 15 {
		m.ZeroGrad()
		res, err := asResult(m.LossAndGrad(ctx, b))
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = res.Mean()
		}
		last = res.Mean()
		opt.Step(params, 1e-2)
	}
	t.Logf("QDoRA loss %.4f -> %.4f", first, last)
	if !(last < first-0.5) {
		t.Errorf("loss %.4f -> %.4f: did not fall", first, last)
	}
}

// Random-weight models quantise too (bench); their quantised projections take the
// bytes memplan plans for, and quantisation from the same bf16 values as the bf16
// model gives a loss close to it.
func TestNewQuantized(t *testing.T) {
	ctx := context.Background()
	cfg := &modelcfg.Config{ModelType: "qwen2", HiddenSize: 64, IntermediateSize: 160, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 16, VocabSize: 97, RMSNormEps: 1e-6,
		RopeTheta: 10000, HiddenAct: "silu", MaxPositionEmbeddings: 64}
	base, err := New(cfg, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := quantBatch(cfg.VocabSize)
	ref, err := asResult(base.Loss(ctx, b))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []quant.Kind{quant.KindNF4, quant.KindInt8} {
		m, err := New(cfg, Options{Seed: 1, Quant: kind})
		if err != nil {
			t.Fatal(err)
		}
		if m.Quantization() != kind {
			t.Fatalf("%s: Quantization() = %q", kind, m.Quantization())
		}
		var got, want int64
		for _, ly := range m.Layers {
			for p, lin := range ly.Proj {
				got += lin.W.Bytes()
				out, in, _ := cfg.ProjShape(modelcfg.Projections[p])
				want += memplan.WeightBytes(out, in, memplan.Quant(kind))
			}
		}
		// quant also holds the code tables (64 B, and 1 KiB for the nested map).
		if got < want || got > want+int64(len(m.Layers)*7*1100) {
			t.Errorf("%s: projections take %d bytes, memplan plans %d", kind, got, want)
		}
		if m.WeightBytes() >= base.WeightBytes() {
			t.Errorf("%s: weights %d bytes, bf16 %d", kind, m.WeightBytes(), base.WeightBytes())
		}
		res, err := asResult(m.Loss(ctx, b))
		if err != nil {
			t.Fatal(err)
		}
		if d := res.Mean() - ref.Mean(); d == 0 || math.Abs(d) > 0.01 {
			t.Errorf("%s: loss %.6f vs bf16 %.6f", kind, res.Mean(), ref.Mean())
		}
	}
}

func TestBadQuantOption(t *testing.T) {
	if _, err := New(tinyConfig("llama"), Options{Quant: "nf5"}); err == nil {
		t.Error("New accepted Quant nf5")
	}
	if _, err := Load(quantTestDir(t, "llama"), Options{Quant: "fp8"}); err == nil {
		t.Error("Load accepted Quant fp8")
	}
}
