package merge

import (
	"context"
	"fmt"
	"slices"

	"github.com/bidora/bidora/gguf"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/safetensors"
)

// GGUFOptions controls ExportGGUF.
type GGUFOptions struct {
	// Type of the matrices: gguf.F32, F16, BF16 or Q8_0.
	Type gguf.TensorType
	// Mix, when not empty, picks each matrix's type by a llama.cpp recipe
	// (gguf.MixQ4_K_M) instead of Type.
	Mix gguf.Mix
	// Name is written as general.name when not empty.
	Name string
	// Progress, if not nil, is called after each tensor is written.
	Progress func(done, total int)
}

// GGUFResult describes a written GGUF model.
type GGUFResult struct {
	*gguf.ModelResult
	Method string `json:"method,omitempty"` // "lora" or "dora" when an adapter was folded in
	Merged int    `json:"merged"`           // weights changed by the adapter
}

// ExportGGUF writes the model in baseDir, with the adapter in adapterDir
// folded in when adapterDir is not empty, as one llama.cpp GGUF file at
// path (see gguf.WriteModel), streaming as Merge does: the base is
// memory-mapped and read one tensor at a time, the adapter folded into that
// tensor in float32, and its mapped pages released once written.
func ExportGGUF(ctx context.Context, baseDir, adapterDir, path string, opts GGUFOptions) (*GGUFResult, error) {
	cfg, err := modelcfg.Load(baseDir)
	if err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	var ad *Adapter
	if adapterDir != "" {
		if ad, err = LoadAdapter(adapterDir, cfg); err != nil {
			return nil, err
		}
	}
	vocab, err := gguf.ReadVocab(baseDir, cfg.VocabSize, cfg.BOSTokenID, cfg.EOSTokenIDs)
	if err != nil {
		return nil, fmt.Errorf("base model %s: %w", baseDir, err)
	}
	base, err := safetensors.OpenDir(baseDir)
	if err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	defer base.Close()
	names := orderNames(base.Names())
	src := make([]gguf.SourceTensor, 0, len(names))
	for _, n := range names {
		info, _ := base.Info(n)
		if !info.DType.IsFloat() {
			return nil, fmt.Errorf("base model %s: %s has dtype %s; want a float tensor", baseDir, n, info.DType)
		}
		src = append(src, gguf.SourceTensor{Name: n, Shape: info.Shape})
	}
	res := &GGUFResult{}
	if ad != nil {
		res.Method = "lora"
		if ad.DoRA() {
			res.Method = "dora"
		}
		for _, m := range ad.Modules {
			info, ok := base.Info(m.Weight)
			switch {
			case !ok:
				return nil, fmt.Errorf("base model %s has no tensor %s for the adapter's %s", baseDir, m.Weight, m.Proj)
			case len(info.Shape) != 2 || info.Shape[0] != m.Out || info.Shape[1] != m.In:
				return nil, fmt.Errorf("base model %s: %s has shape %v, the adapter expects [%d %d]", baseDir, m.Weight, info.Shape, m.Out, m.In)
			}
		}
	}
	read := func(name string) ([]float32, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		vals, err := base.Float32(name)
		if err != nil {
			return nil, fmt.Errorf("base model %s: %s: %w", baseDir, name, err)
		}
		var m *Module
		if ad != nil {
			m = ad.Module(name)
		}
		if m == nil {
			return vals, nil
		}
		if info, _ := base.Info(name); info.DType == safetensors.F32 {
			vals = slices.Clone(vals) // a view of the read-only file
		}
		if err := m.Apply(vals); err != nil {
			return nil, err
		}
		res.Merged++
		return vals, nil
	}
	done := func(name string) {
		if raw, err := base.Bytes(name); err == nil {
			release(raw)
		}
	}
	mr, err := gguf.WriteModel(path, cfg, vocab, src, read, done, gguf.ModelOptions{Type: opts.Type, Mix: opts.Mix, Name: opts.Name, Progress: opts.Progress})
	if err != nil {
		return nil, err
	}
	res.ModelResult = mr
	if ad != nil && res.Merged != len(ad.Modules) {
		return nil, fmt.Errorf("internal error: merged %d of %d adapted weights", res.Merged, len(ad.Modules))
	}
	return res, nil
}
