package merge

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
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
	// BlockValues is about how many values are converted at a time (0:
	// about a million; see gguf.ModelOptions).
	BlockValues int
}

// GGUFResult describes a written GGUF model.
type GGUFResult struct {
	*gguf.ModelResult
	Method string `json:"method,omitempty"` // "lora" or "dora" when an adapter was folded in
	Merged int    `json:"merged"`           // weights changed by the adapter
}

// ExportGGUF writes the model in baseDir, with the adapter in adapterDir
// folded in when adapterDir is not empty, as one llama.cpp GGUF file at
// path (see gguf.WriteModel), streaming: the base is memory-mapped and
// converted a block of rows at a time (or copied raw when already in the
// output type), an adapted weight is merged whole in float32 when reached,
// and mapped pages are released as their rows are written.
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
	from := &ggufSource{ctx: ctx, dir: baseDir, base: base, ad: ad, res: res}
	mr, err := gguf.WriteModel(path, cfg, vocab, src, from, gguf.ModelOptions{Type: opts.Type, Mix: opts.Mix, Name: opts.Name, Progress: opts.Progress, BlockValues: opts.BlockValues})
	if err != nil {
		return nil, err
	}
	res.ModelResult = mr
	if ad != nil && res.Merged != len(ad.Modules) {
		return nil, fmt.Errorf("internal error: merged %d of %d adapted weights", res.Merged, len(ad.Modules))
	}
	return res, nil
}

// ggufSource is ExportGGUF's gguf.ModelSource: rows of the memory-mapped
// base converted a block at a time (or handed over raw when already in the
// output type), and an adapted weight merged whole in float32 when first
// asked for and kept until its last rows are written.
type ggufSource struct {
	ctx    context.Context
	dir    string
	base   *safetensors.Model
	ad     *Adapter
	res    *GGUFResult
	merged map[string][]float32
	buf    []float32
}

// rowBytes is the mapped bytes of rows [r0, r1) of name and its dtype.
func (s *ggufSource) rowBytes(name string, r0, r1 int) ([]byte, safetensors.DType, error) {
	info, _ := s.base.Info(name)
	raw, err := s.base.Bytes(name)
	if err != nil {
		return nil, "", fmt.Errorf("base model %s: %s: %w", s.dir, name, err)
	}
	cols := 1
	if len(info.Shape) > 1 {
		for _, d := range info.Shape[1:] {
			cols *= d
		}
	} else if len(info.Shape) == 1 {
		cols = info.Shape[0] // a vector is one row
	}
	es := info.DType.Size()
	return raw[r0*cols*es : r1*cols*es], info.DType, nil
}

func (s *ggufSource) module(name string) *Module {
	if s.ad == nil {
		return nil
	}
	return s.ad.Module(name)
}

func (s *ggufSource) Rows(name string, r0, r1 int) ([]float32, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	if m := s.module(name); m != nil {
		w, ok := s.merged[name]
		if !ok {
			vals, err := s.base.Float32(name)
			if err != nil {
				return nil, fmt.Errorf("base model %s: %s: %w", s.dir, name, err)
			}
			w = vals
			if info, _ := s.base.Info(name); info.DType == safetensors.F32 {
				w = slices.Clone(vals) // a view of the read-only file
			}
			if err := m.Apply(w); err != nil {
				return nil, err
			}
			if s.merged == nil {
				s.merged = map[string][]float32{}
			}
			s.merged[name] = w
			s.res.Merged++
		}
		return w[r0*m.In : r1*m.In], nil
	}
	raw, dt, err := s.rowBytes(name, r0, r1)
	if err != nil {
		return nil, err
	}
	n := len(raw) / dt.Size()
	if cap(s.buf) < n {
		s.buf = make([]float32, n)
	}
	out := s.buf[:n]
	le := binary.LittleEndian
	switch dt {
	case safetensors.F32:
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case safetensors.BF16:
		for i := range out {
			out[i] = safetensors.BF16ToF32(le.Uint16(raw[2*i:]))
		}
	case safetensors.F16:
		for i := range out {
			out[i] = safetensors.F16ToF32(le.Uint16(raw[2*i:]))
		}
	case safetensors.F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
		}
	default:
		return nil, fmt.Errorf("base model %s: %s has dtype %s; want a float tensor", s.dir, name, dt)
	}
	return out, nil
}

// sameType pairs the safetensors dtypes that are byte for byte a ggml type.
var sameType = map[safetensors.DType]gguf.TensorType{safetensors.F32: gguf.F32, safetensors.F16: gguf.F16, safetensors.BF16: gguf.BF16}

func (s *ggufSource) RawRows(name string, t gguf.TensorType, r0, r1 int) ([]byte, bool) {
	if s.module(name) != nil {
		return nil, false
	}
	info, _ := s.base.Info(name)
	if tt, ok := sameType[info.DType]; !ok || tt != t {
		return nil, false
	}
	raw, _, err := s.rowBytes(name, r0, r1)
	return raw, err == nil
}

func (s *ggufSource) Done(name string, r0, r1 int) {
	if m := s.module(name); m != nil {
		if r1 == m.Out {
			delete(s.merged, name)
		}
	}
	if raw, _, err := s.rowBytes(name, r0, r1); err == nil {
		release(raw)
	}
}
