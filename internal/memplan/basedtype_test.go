package memplan_test

import (
	"strings"
	"testing"

	"github.com/bidora/bidora/internal/catalog"
	"github.com/bidora/bidora/internal/memplan"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/model"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/safetensors"
)

// An f32 base costs 4 bytes a weight: the estimate grows by exactly 2 bytes per
// frozen weight held in the base dtype (every projection with quantization none,
// the embeddings and an untied LM head), and nothing else changes.
func TestBaseDTypeWeightBytes(t *testing.T) {
	for _, preset := range []string{"qwen2.5-0.5b", "llama-3.2-1b", "qwen2.5-coder-7b"} {
		e, ok := catalog.Find(preset)
		if !ok {
			t.Fatalf("%s not in catalog", preset)
		}
		cfg := &e.Config
		L, V, h := int64(cfg.NumHiddenLayers), int64(cfg.VocabSize), int64(cfg.HiddenSize)
		var proj int64
		for _, p := range modelcfg.Projections {
			out, in, _ := cfg.ProjShape(p)
			proj += int64(out) * int64(in) * L
		}
		embed := V * h
		if !cfg.TieWordEmbeddings {
			embed *= 2
		}
		for _, q := range []memplan.Quant{memplan.QuantNone, memplan.QuantInt8, memplan.QuantNF4} {
			s := memplan.Settings{Quant: q, Method: "lora", Rank: 8, Optimizer: "adamw", BatchSize: 1, SeqLen: 512, GradCheckpointing: true}
			bf16 := memplan.Compute(cfg, s)
			s.BaseDType = memplan.BaseBF16
			if explicit := memplan.Compute(cfg, s); explicit != bf16 {
				t.Errorf("%s %s: BaseDType bf16 %+v differs from the default %+v", preset, q, explicit, bf16)
			}
			s.BaseDType = memplan.BaseF32
			f32 := memplan.Compute(cfg, s)
			wantWeights := int64(0)
			if q == memplan.QuantNone {
				wantWeights = 2 * proj
			}
			if d := f32.Weights - bf16.Weights; d != wantWeights {
				t.Errorf("%s %s: f32 projections cost %d more bytes, want %d", preset, q, d, wantWeights)
			}
			if d := f32.Embeddings - bf16.Embeddings; d != 2*embed {
				t.Errorf("%s %s: f32 embeddings cost %d more bytes, want %d", preset, q, d, 2*embed)
			}
			if d := f32.Total - bf16.Total; d != wantWeights+2*embed {
				t.Errorf("%s %s: f32 total is %d bytes over bf16, want %d (the weight bytes only)", preset, q, d, wantWeights+2*embed)
			}
		}
	}
}

// The plan's frozen-weight terms agree with what model.Load holds for a checkpoint
// as stored, in bf16 and in f32 (up to the norms and biases, which the model holds
// in f32 and the plan counts at 2 bytes: a few KiB here).
func TestBaseDTypeMatchesModel(t *testing.T) {
	for _, dt := range []safetensors.DType{safetensors.BF16, safetensors.F32} {
		dir := t.TempDir()
		if err := tinymodel.Write(dir, tinymodel.Options{DType: dt, HiddenSize: 128, NumLayers: 3}); err != nil {
			t.Fatal(err)
		}
		cfg, err := modelcfg.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(dir, model.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := m.WeightBytes()
		base := string(m.BaseDType())
		m.Close()
		e := memplan.Compute(cfg, memplan.Settings{Quant: memplan.QuantNone, BaseDType: base, Rank: 8, BatchSize: 1, SeqLen: 16})
		plan := e.Weights + e.Embeddings
		norms := int64(2*cfg.NumHiddenLayers+1) * int64(cfg.HiddenSize) * 2
		if got != plan+norms {
			t.Errorf("%s checkpoint held as %s: model holds %d bytes, the plan counts %d (+%d for f32 norms)", dt, base, got, plan, norms)
		}
	}
}

// Auto-adjust names the base dtype it plans for.
func TestBaseDTypeReason(t *testing.T) {
	e, _ := catalog.Find("qwen2.5-0.5b")
	for base, want := range map[string]string{"": "none (bf16 weights)", memplan.BaseF32: "none (f32 weights)"} {
		p := memplan.AutoAdjust(&e.Config, memplan.Request{Settings: memplan.Settings{Quant: memplan.QuantAuto, BaseDType: base,
			Method: "lora", Rank: 8, BatchSize: 1, SeqLen: 512, GradCheckpointing: true}}, memplan.Machine{RAMBytes: 64 << 30})
		if !strings.Contains(strings.Join(p.Reasons, "\n"), want) {
			t.Errorf("base %q: reasons %q do not name %q", base, p.Reasons, want)
		}
	}
}
