package model

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bidora/bidora/nn"
	"github.com/bidora/bidora/sample"
)

// Extend runs ids through the model at the positions after those already in the cache
// (in chunks), appends their keys and values to the cache and returns the logits of
// the last token, [vocab]. The slice belongs to the cache and is overwritten by the
// next call. Adapters run in evaluation mode (no dropout). The logits equal those of
// Logits on the whole sequence up to rounding (the same kernels in the same order,
// except that attention reads the cache).
func (m *Model) Extend(ctx context.Context, kc *KVCache, ids []int) ([]float32, error) {
	if kc.m != m {
		return nil, errors.New("kv cache belongs to another model")
	}
	if len(ids) == 0 {
		return nil, errors.New("extend: no tokens")
	}
	c := m.Config
	for i, id := range ids {
		if id < 0 || id >= c.VocabSize {
			return nil, fmt.Errorf("token %d at index %d is outside the vocabulary [0, %d)", id, i, c.VocabSize)
		}
	}
	need := kc.n + len(ids)
	if need > kc.maxCap {
		return nil, fmt.Errorf("sequence of %d tokens exceeds the model's context of %d (max_position_embeddings)", need, kc.maxCap)
	}
	if need > kc.sh.Cap {
		kc.alloc(min(kc.maxCap, max(need, 2*kc.sh.Cap)))
	}
	kc.prepareAdapters()
	for off := 0; off < len(ids); off += kc.chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(kc.chunk, len(ids)-off)
		m.extendChunk(kc, ids[off:off+n])
	}
	D := c.HiddenSize
	nn.RMSNormForward(kc.xn[:D], kc.rstd[:1], kc.last, m.Norm, 1, D, c.RMSNormEps)
	m.LMHead.MulNT(kc.logits, kc.xn[:D], 1, false)
	return kc.logits, nil
}

// extendChunk runs n ≤ chunk tokens through every layer, filling the cache, and leaves
// the last token's hidden state (before the final norm) in kc.last.
func (m *Model) extendChunk(kc *KVCache, ids []int) {
	c := m.Config
	n, D, eps := len(ids), c.HiddenSize, c.RMSNormEps
	start := kc.n
	tok := kc.tok[:n]
	for i, id := range ids {
		tok[i] = int32(id)
	}
	x := kc.x[:n*D]
	nn.EmbeddingForward(x, tok, m.Embed)
	pos := kc.pos[:n]
	for i := range pos {
		pos[i] = int32(start + i)
	}
	for l, ly := range m.Layers {
		lin := func(p int, y, in []float32) { ly.Proj[p].Forward(y, in, n, kc.lin[p], false, 0) }
		nn.RMSNormForward(kc.xn, kc.rstd, x, ly.InputNorm, n, D, eps)
		lin(projQ, kc.q, kc.xn)
		lin(projK, kc.kk, kc.xn)
		lin(projV, kc.vv, kc.xn)
		m.rope.Forward(kc.q, pos, n, c.NumAttentionHeads)
		m.rope.Forward(kc.kk, pos, n, c.NumKeyValueHeads)
		sh := kc.sh
		sh.Window = c.Window(l)
		nn.StoreKV(kc.k[l], kc.v[l], kc.kk, kc.vv, start, n, &sh)
		nn.AttentionDecode(kc.att, kc.q, kc.k[l], kc.v[l], start, n, &sh)
		lin(projO, kc.h, kc.att)
		addInPlace(kc.h[:n*D], x)
		nn.RMSNormForward(kc.xn, kc.rstd, kc.h, ly.PostNorm, n, D, eps)
		lin(projGate, kc.g, kc.xn)
		lin(projUp, kc.u, kc.xn)
		nn.SwiGLUForward(kc.a[:n*c.IntermediateSize], kc.g, kc.u)
		lin(projDown, x, kc.a)
		addInPlace(x, kc.h[:n*D])
	}
	copy(kc.last, x[(n-1)*D:n*D])
	kc.n += n
	kc.ids = append(kc.ids, ids...)
}

// Stop reasons of a generation.
const (
	StopEOS         = "eos"         // an end-of-sequence token was sampled
	StopString      = "stop"        // the caller's OnToken asked to stop (a stop string)
	StopLength      = "length"      // MaxNewTokens reached, or the model's context is full
	StopInterrupted = "interrupted" // the context was cancelled
)

// GenerateOptions controls Generate.
type GenerateOptions struct {
	// MaxNewTokens bounds the tokens generated (≤ 0: until EOS or the context is full).
	MaxNewTokens int
	// Sampler picks each token from the logits; nil means greedy (argmax).
	Sampler *sample.Sampler
	// EOS are the ids that end generation; the EOS token itself is not part of the
	// result.
	EOS []int
	// OnToken, when set, sees each generated token as it comes (not the EOS token);
	// returning stop true ends generation with StopString, an error aborts it.
	OnToken func(id int) (stop bool, err error)
}

// GenerateResult is what Generate produced, with timings.
type GenerateResult struct {
	Tokens       []int // generated ids, without the prompt and the EOS token
	PromptTokens int   // tokens prefilled (the part of the prompt not already cached)
	StopReason   string
	Prefill      time.Duration // prompt processing up to the first logits
	Decode       time.Duration // every later step (one token each)
}

// PrefillTokensPerSecond is the prompt throughput.
func (r *GenerateResult) PrefillTokensPerSecond() float64 {
	return rate(r.PromptTokens, r.Prefill)
}

// DecodeTokensPerSecond is the generation throughput of the steps after the prefill
// (each generated token but the last needed one forward step).
func (r *GenerateResult) DecodeTokensPerSecond() float64 {
	steps := len(r.Tokens)
	if r.StopReason != StopEOS {
		steps-- // the last token was not fed back
	}
	return rate(steps, r.Decode)
}

func rate(n int, d time.Duration) float64 {
	if n <= 0 || d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Generate continues prompt token by token with the KV cache kc. The cache may already
// hold a prefix of prompt (an earlier chat turn): that part is reused and only the rest
// is prefilled; anything cached beyond the common prefix is dropped. At the end the
// cache holds the prompt and the generated tokens that were fed back. Cancelling ctx
// stops generation with StopInterrupted and no error.
func (m *Model) Generate(ctx context.Context, kc *KVCache, prompt []int, opts GenerateOptions) (*GenerateResult, error) {
	if len(prompt) == 0 {
		return nil, errors.New("generate: empty prompt")
	}
	keep := kc.CommonPrefix(prompt)
	if keep == len(prompt) {
		keep-- // the last prompt token must run to give the next token's logits
	}
	if err := kc.Truncate(keep); err != nil {
		return nil, err
	}
	res := &GenerateResult{PromptTokens: len(prompt) - keep}
	if kc.n+res.PromptTokens > kc.maxCap {
		return nil, fmt.Errorf("prompt of %d tokens does not fit the model's context of %d", len(prompt), kc.maxCap)
	}
	history := slices.Clone(prompt)
	t0 := time.Now()
	logits, err := m.Extend(ctx, kc, prompt[keep:])
	res.Prefill = time.Since(t0)
	if err != nil {
		if ctx.Err() != nil {
			res.StopReason = StopInterrupted
			return res, nil
		}
		return nil, err
	}
	t1 := time.Now()
	defer func() { res.Decode = time.Since(t1) }()
	for {
		var id int
		if opts.Sampler != nil {
			id = opts.Sampler.Sample(logits, history)
		} else {
			id = sample.Argmax(logits)
		}
		if slices.Contains(opts.EOS, id) {
			res.StopReason = StopEOS
			return res, nil
		}
		res.Tokens = append(res.Tokens, id)
		history = append(history, id)
		if opts.OnToken != nil {
			stop, err := opts.OnToken(id)
			if err != nil {
				return res, err
			}
			if stop {
				res.StopReason = StopString
				return res, nil
			}
		}
		if (opts.MaxNewTokens > 0 && len(res.Tokens) >= opts.MaxNewTokens) || kc.n >= kc.maxCap {
			res.StopReason = StopLength
			return res, nil
		}
		if ctx.Err() != nil {
			res.StopReason = StopInterrupted
			return res, nil
		}
		if logits, err = m.Extend(ctx, kc, []int{id}); err != nil {
			if ctx.Err() != nil {
				res.StopReason = StopInterrupted
				return res, nil
			}
			return res, err
		}
	}
}
