package model

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/nn"
	"github.com/bidora/bidora/quant"
	"github.com/bidora/bidora/safetensors"
)

// Load builds the model of a HuggingFace directory (config.json and model.safetensors
// or a sharded index). Frozen weights are held as Options.BaseDType says, by default
// as stored (f32 stays f32, bf16 stays bf16, f16 becomes bf16), and are views of the
// memory-mapped files when their dtype matches the held one; call Close to release
// the mapping. With
// Options.Quant the projections are quantised tensor by tensor while loading; a
// checkpoint saved by bitsandbytes in 4-bit form is loaded as stored (PreQuantized).
func Load(dir string, opts Options) (*Model, error) {
	cfg, err := modelcfg.Load(dir)
	if err != nil {
		return nil, err
	}
	m, err := newModel(cfg, opts)
	if err != nil {
		return nil, err
	}
	src, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading model weights: %w", err)
	}
	m.closer = src
	if err := m.loadWeights(src); err != nil {
		src.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	m.applyCompute()
	return m, nil
}

// quantKind validates Options.Quant ("" means none).
func (o Options) quantKind() (quant.Kind, error) {
	if o.Quant == "" {
		return quant.KindNone, nil
	}
	k, err := quant.ParseKind(string(o.Quant))
	if err != nil {
		return "", fmt.Errorf("model options: %w", err)
	}
	return k, nil
}

func (o Options) nf4Options() quant.NF4Options {
	return quant.NF4Options{DoubleQuant: !o.NoDoubleQuant}
}

// loadWeights reads every tensor the model needs from src. Projections are quantised
// one at a time as they are read (Options.Quant), or loaded as stored when src holds
// them in bitsandbytes 4-bit form; where that reads (or converts) the whole tensor,
// the mapped pages of its full-precision bytes are handed back to the OS at once
// (releasePages), so that the bf16 model and the quantised one are never resident
// together.
func (m *Model) loadWeights(src safetensors.Source) error {
	c := m.Config
	kind, err := m.opts.quantKind()
	if err != nil {
		return err
	}
	base, err := m.opts.baseDType(src)
	if err != nil {
		return err
	}
	// Before reading gigabytes: every tensor of the checkpoint must be one this
	// config uses, so that a config.json that disagrees with the weights (fewer
	// layers, no biases, …) is an error rather than a silently different model.
	if err := checkUnused(src, c); err != nil {
		return err
	}
	// release drops the mapped pages of a tensor whose bytes have been consumed; only
	// for the memory-mapped files of package safetensors (never for memory of ours).
	release := func(name string) {
		switch src.(type) {
		case *safetensors.Model, *safetensors.File:
			if raw, err := src.Bytes(name); err == nil {
				releasePages(raw)
			}
		}
	}
	info := func(name string, shape ...int) (safetensors.TensorInfo, error) {
		info, ok := src.Info(name)
		if !ok {
			return info, fmt.Errorf("tensor %s is missing", name)
		}
		if !slices.Equal(info.Shape, shape) {
			return info, errShape(name, info.Shape, shape)
		}
		return info, nil
	}
	matrix := func(name string, rows, cols int) (*nn.Weight, error) {
		info, err := info(name, rows, cols)
		if err != nil {
			return nil, err
		}
		if base == BaseF32 {
			v, err := src.Float32(name)
			if err != nil {
				return nil, err
			}
			if info.DType != safetensors.F32 {
				release(name) // converted into a copy
			}
			return nn.NewWeightF32(rows, cols, v)
		}
		v, err := src.BF16(name)
		if err != nil {
			return nil, err
		}
		if info.DType != safetensors.BF16 {
			release(name)
		}
		return nn.NewWeightBF16(rows, cols, v)
	}
	projection := func(name string, rows, cols int) (*nn.Weight, error) {
		if quant.IsBnb4bit(src, name) {
			q, err := quant.LoadBnb4bit(src, name)
			if err != nil {
				return nil, err
			}
			if r, c := q.Shape(); r != rows || c != cols {
				return nil, errShape(name+" (bitsandbytes quant_state shape)", []int{r, c}, []int{rows, cols})
			}
			m.bnb = true
			return nn.NewWeightQuant(q), nil
		}
		if kind == quant.KindNone {
			return matrix(name, rows, cols)
		}
		if _, err := info(name, rows, cols); err != nil {
			return nil, err
		}
		q, err := quant.QuantizeTensor(src, name, kind, m.opts.nf4Options())
		if err != nil {
			return nil, err
		}
		release(name)
		return nn.NewWeightQuant(q), nil
	}
	vector := func(name string, n int) ([]float32, error) {
		if _, err := info(name, n); err != nil {
			return nil, err
		}
		v, err := src.Float32(name)
		if err != nil {
			return nil, err
		}
		return slices.Clone(v), nil // small; keep independent of the mapping
	}
	if m.Embed, err = matrix("model.embed_tokens.weight", c.VocabSize, c.HiddenSize); err != nil {
		return err
	}
	m.LMHead = m.Embed
	if !c.TieWordEmbeddings {
		if m.LMHead, err = matrix("lm_head.weight", c.VocabSize, c.HiddenSize); err != nil {
			if _, ok := src.Info("lm_head.weight"); !ok {
				return fmt.Errorf("%w (config.json has tie_word_embeddings false, so the checkpoint needs its own LM head)", err)
			}
			return err
		}
	} else if _, ok := src.Info("lm_head.weight"); ok {
		if err := checkTiedHead(src); err != nil {
			return err
		}
		release("lm_head.weight")
	}
	if m.Norm, err = vector("model.norm.weight", c.HiddenSize); err != nil {
		return err
	}
	for l := 0; l < c.NumHiddenLayers; l++ {
		ly := &Layer{}
		pre := fmt.Sprintf("model.layers.%d.", l)
		if ly.InputNorm, err = vector(pre+"input_layernorm.weight", c.HiddenSize); err != nil {
			return err
		}
		if ly.PostNorm, err = vector(pre+"post_attention_layernorm.weight", c.HiddenSize); err != nil {
			return err
		}
		for p, name := range modelcfg.Projections {
			out, in, _ := c.ProjShape(name)
			w, err := projection(moduleName(l, name)+".weight", out, in)
			if err != nil {
				return err
			}
			lin := &nn.Linear{W: w}
			if hasBias(c, p) {
				if lin.Bias, err = vector(moduleName(l, name)+".bias", out); err != nil {
					return err
				}
			}
			ly.Proj[p] = lin
		}
		m.Layers = append(m.Layers, ly)
	}
	return nil
}

// UnusedTensorsError is a checkpoint holding tensors that the model's
// config.json does not use: the config disagrees with the weights (fewer layers
// than stored, biases the architecture does not have, another architecture).
type UnusedTensorsError struct {
	Names []string // all of them, in the checkpoint's order
	// Layers is the number of layers the weights hold (highest model.layers.N + 1)
	// when that exceeds the config's num_hidden_layers, else 0.
	Layers       int
	ConfigLayers int
}

func (e *UnusedTensorsError) Error() string {
	const show = 5
	list := strings.Join(e.Names[:min(show, len(e.Names))], ", ")
	if len(e.Names) > show {
		list += fmt.Sprintf(", … (%d more)", len(e.Names)-show)
	}
	noun := "tensors"
	if len(e.Names) == 1 {
		noun = "tensor"
	}
	msg := fmt.Sprintf("the checkpoint has %d %s that config.json does not use: %s", len(e.Names), noun, list)
	if e.Layers > 0 {
		msg += fmt.Sprintf("; the weights hold %d layers but config.json has num_hidden_layers %d", e.Layers, e.ConfigLayers)
	}
	return msg + "; config.json does not match the weights"
}

// harmlessExtra reports tensors that checkpoints carry without them being
// weights: the rotary caches older Llama exports saved (recomputed from the config).
func harmlessExtra(name string) bool {
	for _, suffix := range []string{".rotary_emb.inv_freq", ".rotary_emb.cos_cached", ".rotary_emb.sin_cached"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// checkUnused returns an *UnusedTensorsError when src holds tensors the config
// does not use. lm_head.weight with tied embeddings counts as used (checkTiedHead
// compares it with the embedding), and so do the quant-state tensors a
// bitsandbytes 4-bit checkpoint stores beside a projection (<proj>.weight.absmax,
// .quant_map, .quant_state.bitsandbytes__nf4, …).
func checkUnused(src safetensors.Source, c *modelcfg.Config) error {
	used := map[string]bool{"model.embed_tokens.weight": true, "model.norm.weight": true, "lm_head.weight": true}
	projWeights := map[string]bool{}
	for l := 0; l < c.NumHiddenLayers; l++ {
		pre := fmt.Sprintf("model.layers.%d.", l)
		used[pre+"input_layernorm.weight"] = true
		used[pre+"post_attention_layernorm.weight"] = true
		for p, name := range modelcfg.Projections {
			used[moduleName(l, name)+".weight"] = true
			projWeights[moduleName(l, name)+".weight"] = true
			if hasBias(c, p) {
				used[moduleName(l, name)+".bias"] = true
			}
		}
	}
	e := &UnusedTensorsError{ConfigLayers: c.NumHiddenLayers}
	for _, name := range src.Names() {
		if used[name] || harmlessExtra(name) {
			continue
		}
		if i := strings.Index(name, ".weight."); i >= 0 && projWeights[name[:i+len(".weight")]] {
			continue // bitsandbytes quant state of a projection
		}
		e.Names = append(e.Names, name)
		if rest, ok := strings.CutPrefix(name, "model.layers."); ok {
			if n, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '.'), 0)]); err == nil && n >= c.NumHiddenLayers && n < math.MaxInt32 {
				e.Layers = max(e.Layers, n+1)
			}
		}
	}
	if len(e.Names) == 0 {
		return nil
	}
	return e
}

// checkTiedHead checks a lm_head.weight stored beside tied embeddings. As in
// transformers, tie_word_embeddings makes the LM head the embedding and the
// stored copy is not read as a separate weight; it must therefore be that copy
// (same shape and values), else config.json and the weights disagree.
func checkTiedHead(src safetensors.Source) error {
	const head, embed = "lm_head.weight", "model.embed_tokens.weight"
	hi, _ := src.Info(head)
	ei, _ := src.Info(embed)
	differ := func(why string) error {
		return fmt.Errorf("config.json has tie_word_embeddings true but the checkpoint's %s %s %s: config.json does not match the weights (set tie_word_embeddings to false if the model has its own LM head)", head, why, embed)
	}
	if !slices.Equal(hi.Shape, ei.Shape) {
		return differ(fmt.Sprintf("has shape %v, unlike the %v of", hi.Shape, ei.Shape))
	}
	if hi.DType == ei.DType {
		a, err := src.Bytes(head)
		if err != nil {
			return err
		}
		b, err := src.Bytes(embed)
		if err != nil {
			return err
		}
		if !bytes.Equal(a, b) {
			return differ("differs from")
		}
		return nil
	}
	a, err := src.Float32(head)
	if err != nil {
		return err
	}
	b, err := src.Float32(embed)
	if err != nil {
		return err
	}
	if !slices.Equal(a, b) {
		return differ("differs from")
	}
	return nil
}

func hasBias(c *modelcfg.Config, p int) bool {
	switch p {
	case projQ, projK, projV:
		return c.QKVBias()
	case projO:
		return c.OBias()
	default:
		return c.MLPBiases()
	}
}

// New builds a model of the given shape with random frozen weights (normal-like,
// std 0.02, RMSNorm weights 1, zero biases), for benchmarks and tests; nothing is
// read from disk. With Options.Quant each projection is drawn in bf16 into one
// reused buffer and quantised before the next is drawn, so the full-precision model
// never exists (a 7B model's 15 GB of bf16 projections are never resident).
func New(cfg *modelcfg.Config, opts Options) (*Model, error) {
	m, err := newModel(cfg, opts)
	if err != nil {
		return nil, err
	}
	kind, err := opts.quantKind()
	if err != nil {
		return nil, err
	}
	base, err := opts.baseDType(nil)
	if err != nil {
		return nil, err
	}
	seed := opts.Seed
	matrix := func(rows, cols int) *nn.Weight {
		seed++
		if base == BaseF32 {
			v := make([]float32, rows*cols)
			fillRandom(v, nil, seed)
			return &nn.Weight{Rows: rows, Cols: cols, F32: v}
		}
		v := make([]uint16, rows*cols)
		fillRandom(nil, v, seed)
		return &nn.Weight{Rows: rows, Cols: cols, BF16: v}
	}
	var bf16Buf []uint16
	var f32Buf []float32
	projection := func(rows, cols int) (*nn.Weight, error) {
		if kind == quant.KindNone {
			return matrix(rows, cols), nil
		}
		seed++
		n := rows * cols
		if cap(bf16Buf) < n {
			bf16Buf = make([]uint16, n)
		}
		b := bf16Buf[:n]
		fillRandom(nil, b, seed) // the values the bf16 model holds
		var q quant.Matrix
		var err error
		if kind == quant.KindNF4 {
			q, err = quant.QuantizeNF4BF16(b, rows, cols, opts.nf4Options())
		} else {
			if cap(f32Buf) < n {
				f32Buf = make([]float32, n)
			}
			f := f32Buf[:n]
			kernels.Parallel(n, 1<<16, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					f[i] = kernels.BF16ToF32(b[i])
				}
			})
			q, err = quant.QuantizeInt8(f, rows, cols)
		}
		if err != nil {
			return nil, err
		}
		return nn.NewWeightQuant(q), nil
	}
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	m.Embed = matrix(cfg.VocabSize, cfg.HiddenSize)
	m.LMHead = m.Embed
	if !cfg.TieWordEmbeddings {
		m.LMHead = matrix(cfg.VocabSize, cfg.HiddenSize)
	}
	m.Norm = ones(cfg.HiddenSize)
	for range cfg.NumHiddenLayers {
		ly := &Layer{InputNorm: ones(cfg.HiddenSize), PostNorm: ones(cfg.HiddenSize)}
		for p, name := range modelcfg.Projections {
			out, in, _ := cfg.ProjShape(name)
			w, err := projection(out, in)
			if err != nil {
				return nil, fmt.Errorf("random %s weight: %w", name, err)
			}
			ly.Proj[p] = &nn.Linear{W: w}
			if hasBias(cfg, p) {
				ly.Proj[p].Bias = make([]float32, out)
			}
		}
		m.Layers = append(m.Layers, ly)
	}
	m.applyCompute()
	return m, nil
}

// Quantization is how the frozen projections are held: quant.KindNF4,
// quant.KindInt8 or quant.KindNone (bf16/f32). A bitsandbytes 4-bit checkpoint
// gives KindNF4 whatever Options.Quant asked for.
func (m *Model) Quantization() quant.Kind {
	for _, ly := range m.Layers {
		for _, p := range ly.Proj {
			if p.W.Q != nil {
				return p.W.Q.Kind()
			}
		}
	}
	return quant.KindNone
}

// PreQuantized reports whether the projections were loaded as stored from a
// checkpoint saved by bitsandbytes in 4-bit form (a `*-bnb-4bit` model), without
// re-quantising.
func (m *Model) PreQuantized() bool { return m.bnb }

// WeightBytes is the memory of the frozen weights: the projections in their held
// form, plus embeddings and LM head (counted once when tied), norms and biases.
func (m *Model) WeightBytes() int64 {
	n := m.Embed.Bytes() + int64(len(m.Norm))*4
	if m.LMHead != m.Embed {
		n += m.LMHead.Bytes()
	}
	for _, ly := range m.Layers {
		n += int64(len(ly.InputNorm)+len(ly.PostNorm)) * 4
		for _, p := range ly.Proj {
			n += p.W.Bytes() + int64(len(p.Bias))*4
		}
	}
	return n
}

// fillRandom fills f32 or bf16 values with a sum of uniforms scaled to std 0.02,
// from a counter-based hash so that it runs in parallel and is reproducible.
func fillRandom(f []float32, b []uint16, seed uint64) {
	n := max(len(f), len(b))
	const std = 0.02
	scale := std / math.Sqrt(2.0/12) / (1 << 31)
	kernels.Parallel(n, 1<<16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			h := splitmix(seed*0x9e3779b97f4a7c15 + uint64(i))
			// sum of two uniforms in [0, 2^32): triangular, mean 2^32
			v := float32((float64(h>>32) + float64(h&0xffffffff) - (1 << 32)) * scale / 2)
			if f != nil {
				f[i] = v
			} else {
				b[i] = kernels.F32ToBF16(v)
			}
		}
	})
}

func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
