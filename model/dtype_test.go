package model

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/nn"
	"github.com/bidora/bidora/safetensors"
)

func TestParseBaseDType(t *testing.T) {
	for in, want := range map[string]BaseDType{"": BaseAuto, "auto": BaseAuto, "BF16": BaseBF16, "bfloat16": BaseBF16,
		"f32": BaseF32, " fp32 ": BaseF32, "float32": BaseF32} {
		if got, err := ParseBaseDType(in); err != nil || got != want {
			t.Errorf("ParseBaseDType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"f16", "fp16", "int8", "f64"} {
		if _, err := ParseBaseDType(in); err == nil {
			t.Errorf("ParseBaseDType(%q) accepted", in)
		}
	}
}

func TestBaseDTypeHeld(t *testing.T) {
	cases := []struct {
		d      BaseDType
		stored safetensors.DType
		want   BaseDType
	}{
		{BaseAuto, safetensors.F32, BaseF32}, {BaseAuto, safetensors.BF16, BaseBF16},
		{BaseAuto, safetensors.F16, BaseBF16}, {BaseAuto, safetensors.F64, BaseF32},
		{BaseAuto, "", BaseBF16}, {"", safetensors.F32, BaseF32},
		{BaseBF16, safetensors.F32, BaseBF16}, {BaseF32, safetensors.BF16, BaseF32}, {BaseF32, safetensors.F16, BaseF32},
	}
	for _, c := range cases {
		if got := c.d.Held(c.stored); got != c.want {
			t.Errorf("%q.Held(%s) = %s, want %s", c.d, c.stored, got, c.want)
		}
	}
}

// Load holds the frozen weights as stored by default (f32 stays f32, bf16 stays
// bf16, f16 becomes bf16), as BaseDType overrides, and with f32 as F32Weights asks;
// the quantised projections are unaffected, the embeddings follow.
func TestLoadBaseDType(t *testing.T) {
	cases := []struct {
		stored safetensors.DType
		opts   Options
		want   BaseDType
	}{
		{safetensors.F32, Options{}, BaseF32},
		{safetensors.F32, Options{BaseDType: BaseAuto}, BaseF32},
		{safetensors.F32, Options{BaseDType: BaseBF16}, BaseBF16},
		{safetensors.BF16, Options{}, BaseBF16},
		{safetensors.BF16, Options{BaseDType: BaseF32}, BaseF32},
		{safetensors.BF16, Options{F32Weights: true}, BaseF32},
		{safetensors.F16, Options{}, BaseBF16},
		{safetensors.F16, Options{BaseDType: BaseF32}, BaseF32},
		{safetensors.F32, Options{BaseDType: BaseF32, Quant: "int8"}, BaseF32},
	}
	dirs := map[safetensors.DType]string{}
	for _, c := range cases {
		dir, ok := dirs[c.stored]
		if !ok {
			dir = t.TempDir()
			if err := tinymodel.Write(dir, tinymodel.Options{DType: c.stored, Seed: 3}); err != nil {
				t.Fatal(err)
			}
			dirs[c.stored] = dir
			if got, err := CheckpointDType(dir); err != nil || got != c.stored {
				t.Fatalf("CheckpointDType = %s, %v; want %s", got, err, c.stored)
			}
		}
		m, err := Load(dir, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.BaseDType(); got != c.want {
			t.Errorf("%s checkpoint, %+v: held %s, want %s", c.stored, c.opts, got, c.want)
		}
		ws := []*nn.Weight{m.Embed, m.LMHead}
		for _, ly := range m.Layers {
			for _, p := range ly.Proj {
				ws = append(ws, p.W)
			}
		}
		for _, w := range ws {
			if w.Q != nil {
				continue
			}
			if (w.F32 != nil) != (c.want == BaseF32) || (w.BF16 != nil) != (c.want == BaseBF16) {
				t.Errorf("%s checkpoint, %+v: a weight is %s, want %s", c.stored, c.opts, w.Format(), c.want)
			}
		}
		if c.opts.Quant != "" && m.Quantization() != c.opts.Quant {
			t.Errorf("quantization %s, want %s", m.Quantization(), c.opts.Quant)
		}
		m.Close()
	}
	if _, err := Load(dirs[safetensors.F32], Options{F32Weights: true, BaseDType: BaseBF16}); err == nil {
		t.Error("F32Weights with BaseDType bf16 loaded")
	}
	if _, err := Load(dirs[safetensors.F32], Options{BaseDType: "f16"}); err == nil {
		t.Error("BaseDType f16 loaded")
	}
}

// New draws bf16 weights unless BaseDType is f32 (auto has nothing stored to follow).
func TestNewBaseDType(t *testing.T) {
	for d, want := range map[BaseDType]BaseDType{"": BaseBF16, BaseAuto: BaseBF16, BaseBF16: BaseBF16, BaseF32: BaseF32} {
		m, err := New(tinyConfig("llama"), Options{BaseDType: d, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.BaseDType(); got != want {
			t.Errorf("New with BaseDType %q: %s, want %s", d, got, want)
		}
	}
}

// The f32 goldens loaded with the default options (as stored) are exact to the
// float64 reference, as with F32Weights; held in bf16 they are not.
func TestGoldenAsStored(t *testing.T) {
	dir := filepath.Join("testdata", "golden", "llama_lora")
	ef, err := safetensors.Open(filepath.Join(dir, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	want := goldenF64{ef}.get(t, "base_loss")[0]
	batch := readGoldenBatch(t, filepath.Join(dir, "batch.json"))
	rel := func(opts Options) float64 {
		m, err := Load(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		res, err := asResult(m.Loss(context.Background(), batch))
		if err != nil {
			t.Fatal(err)
		}
		return math.Abs(res.Mean()-want) / want
	}
	if e := rel(Options{}); e > 1e-6 {
		t.Errorf("as stored: base loss relative error %.3g > 1e-6", e)
	}
	if e := rel(Options{BaseDType: BaseBF16}); e < 1e-6 {
		t.Errorf("held in bf16: base loss relative error %.3g, expected the rounding to show", e)
	}
}
