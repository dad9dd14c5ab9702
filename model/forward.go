package model

import (
	"context"
	"fmt"
	"math"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/kernels"
	"github.com/bidora/bidora/nn"
)

// layerActs are the activations one layer's backward needs.
type layerActs struct {
	xn1, rstd1 []float32 // input RMSNorm output [N, D], reciprocal RMS [N]
	q, k, v    []float32 // after RoPE (q, k) [N, Hq·hd], [N, Hkv·hd]
	att, lse   []float32 // attention output [N, Hq·hd], log-sum-exp [B, Hq, T]
	h          []float32 // residual after attention [N, D]
	xn2, rstd2 []float32
	g, u, a    []float32 // gate, up, silu(g)⊙u [N, I]
	cache      [numProj]*nn.LinearCache
}

// keepActsBudget is the default bound (Options.KeptActivationsBudget overrides it) on
// the activation memory a checkpointed training step spends on keeping whole layers'
// activations through the backward instead of recomputing them: the layers just below
// the last keep theirs while they fit. At Qwen2.5-0.5B's shape a
// layer's activations take about 40 MB at 512 tokens (13 of the 23 recomputations are
// skipped, ~12 % of the step's FLOPs) and 158 MB at 2048 tokens (3 are skipped, and
// the step's peak RSS stays near 2.2 GB). The last layer's activations are always
// still there.
var keepActsBudget = KeptActivationsBudget // a variable so that tests can exercise every split

// KeptActivationsBudget is the default of the budget above: the training-memory
// estimate (internal/memplan) counts it.
const KeptActivationsBudget = 512 << 20

// bytes is the memory the activation buffers of one layer take.
func (a *layerActs) bytes() int {
	n := len(a.xn1) + len(a.rstd1) + len(a.q) + len(a.k) + len(a.v) + len(a.att) + len(a.lse) +
		len(a.h) + len(a.xn2) + len(a.rstd2) + len(a.g) + len(a.u) + len(a.a)
	for _, c := range a.cache {
		if c != nil {
			n += len(c.XD) + len(c.H) + len(c.U)
		}
	}
	return 4 * n
}

// keptLayers is how many layers below the last keep their activations through a
// checkpointed backward, within keepActsBudget.
func (m *Model) keptLayers(per int) int {
	L := len(m.Layers)
	if m.opts.NoCheckpointing || L < 2 || per <= 0 {
		return 0
	}
	budget := keepActsBudget
	switch b := m.opts.KeptActivationsBudget; {
	case b < 0:
		return 0
	case b > 0:
		budget = int(min(b, math.MaxInt))
	}
	return min(L-1, budget/per)
}

// actsBytes is what layerActs.bytes reports for the buffers newActs(n) makes.
func (m *Model) actsBytes(n int) int {
	c := m.Config
	D, I, qd, kvd := c.HiddenSize, c.IntermediateSize, c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim
	f := n*(3*D+2+2*qd+2*kvd+3*I) + n*c.NumAttentionHeads
	for p := 0; p < numProj; p++ {
		need := m.adapterNeeds(p)
		f += n * (need.r + need.out + need.in)
	}
	return 4 * f
}

// adapterNeed is what the adapters of some projections require of the buffers they
// share across layers: the largest rank, the largest output width among the DoRA ones
// (0 when none) and the largest input width among those with dropout (0 when none).
type adapterNeed struct{ r, out, in int }

// adapterNeeds scans projection p over all layers (every projection when p < 0);
// adapters may differ between layers, so shared buffers are sized for the largest.
func (m *Model) adapterNeeds(p int) adapterNeed {
	var need adapterNeed
	for _, ly := range m.Layers {
		for q, lin := range ly.Proj {
			a := lin.Adapter
			if a == nil || (p >= 0 && q != p) {
				continue
			}
			need.r = max(need.r, a.R)
			if a.DoRA {
				need.out = max(need.out, lin.W.Rows)
			}
			if a.Dropout > 0 {
				need.in = max(need.in, lin.W.Cols)
			}
		}
	}
	return need
}

// RecomputedLayers is how many layers' forward a checkpointed training step on B rows
// of T tokens runs twice (the rest keep their activations within the step's activation
// budget); 0 without checkpointing. FLOP counts of a step should add this many layer
// forwards.
func (m *Model) RecomputedLayers(B, T int) int {
	L := len(m.Layers)
	if m.opts.NoCheckpointing || L < 2 {
		return 0
	}
	return L - 1 - m.keptLayers(m.actsBytes(B*T))
}

// actsFor returns the activation buffers layer l uses: its own without checkpointing
// or when it is one of the kept layers below the last, else the shared ones (whose
// contents the backward recomputes, except for the last layer).
func (m *Model) actsFor(l int, ws *workspace) *layerActs {
	if m.opts.NoCheckpointing {
		return ws.acts[l]
	}
	L, k := len(m.Layers), len(ws.acts)-1
	if l < L-1 && l >= L-1-k {
		return ws.acts[l-(L-1-k)+1]
	}
	return ws.acts[0]
}

// workspace holds every buffer of a forward/backward for up to n tokens.
type workspace struct {
	n, B, T   int
	ids       []int32
	targets   []int32
	pos       []int32
	lengths   []int
	segments  []int32
	tokens    int
	inputs    [][]float32 // layer inputs [L+1][N·D] (training) or 2 ping-pong buffers
	acts      []*layerActs
	xf, rstdf []float32 // final norm
	ce        *nn.CrossEntropy

	// backward
	dres, dxn, dxf    []float32
	datt, dq, dk, dv  []float32
	da, dg, du, delta []float32
	lin               nn.LinearScratch
}

// newActs allocates one layer's activations for up to n = B·T tokens (any B×T split).
func (m *Model) newActs(n int) *layerActs {
	c := m.Config
	D, I, qd, kvd := c.HiddenSize, c.IntermediateSize, c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim
	a := &layerActs{
		xn1: make([]float32, n*D), rstd1: make([]float32, n),
		q: make([]float32, n*qd), k: make([]float32, n*kvd), v: make([]float32, n*kvd),
		att: make([]float32, n*qd), lse: make([]float32, c.NumAttentionHeads*n), // [B, Hq, T] for any B·T ≤ n
		h: make([]float32, n*D), xn2: make([]float32, n*D), rstd2: make([]float32, n),
		g: make([]float32, n*I), u: make([]float32, n*I), a: make([]float32, n*I),
	}
	// Caches are per projection, sized for what any layer's adapter there needs.
	for p := 0; p < numProj; p++ {
		need := m.adapterNeeds(p)
		lc := &nn.LinearCache{H: make([]float32, n*need.r)}
		if need.out > 0 {
			lc.U = make([]float32, n*need.out)
		}
		if need.in > 0 {
			lc.XD = make([]float32, n*need.in)
		}
		a.cache[p] = lc
	}
	return a
}

// prepare validates the batch and sizes the workspace for it.
func (m *Model) prepare(b *dataset.Batch) error {
	c := m.Config
	if err := b.Validate(c.VocabSize); err != nil {
		return err
	}
	n := b.B * b.T
	ws := m.ws
	if ws == nil || ws.n < n {
		ws = m.newWorkspace(n, b.B, b.T)
		m.ws = ws
	}
	ws.B, ws.T = b.B, b.T
	ws.ids = b.InputIDs
	ws.targets = ws.targets[:n]
	ws.tokens = b.Targets(ws.targets)
	ws.pos = ws.pos[:n]
	b.Positions(ws.pos)
	maxPos := int32(0)
	for _, p := range ws.pos {
		maxPos = max(maxPos, p)
	}
	m.rope.Ensure(int(maxPos) + 1)
	ws.lengths = b.Lengths
	ws.segments = b.Segments
	return nil
}

func (m *Model) newWorkspace(n, B, T int) *workspace {
	c := m.Config
	D := c.HiddenSize
	m.ws = nil // let the old one be collected before allocating the new one
	ws := &workspace{n: n, B: B, T: T,
		targets: make([]int32, n), pos: make([]int32, n),
		xf: make([]float32, n*D), rstdf: make([]float32, n),
		ce: nn.NewCrossEntropy(m.LMHead, m.opts.MaxLogitBytes),
	}
	nActs := 1
	if m.opts.NoCheckpointing {
		nActs = len(m.Layers)
	}
	for range nActs {
		ws.acts = append(ws.acts, m.newActs(n))
	}
	return ws
}

// ensureTraining allocates the layer inputs and backward buffers on first use.
func (m *Model) ensureTraining(ws *workspace) {
	c := m.Config
	n := ws.n
	D, I, qd, kvd := c.HiddenSize, c.IntermediateSize, c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim
	for len(ws.inputs) < len(m.Layers)+1 {
		ws.inputs = append(ws.inputs, make([]float32, n*D))
	}
	if !m.opts.NoCheckpointing {
		for len(ws.acts) < 1+m.keptLayers(ws.acts[0].bytes()) {
			ws.acts = append(ws.acts, m.newActs(n))
		}
	}
	if ws.dres != nil {
		return
	}
	ws.dres, ws.dxn, ws.dxf = make([]float32, n*D), make([]float32, n*D), make([]float32, n*D)
	ws.datt, ws.dq = make([]float32, n*qd), make([]float32, n*qd)
	ws.dk, ws.dv = make([]float32, n*kvd), make([]float32, n*kvd)
	ws.da, ws.dg, ws.du = make([]float32, n*I), make([]float32, n*I), make([]float32, n*I)
	ws.delta = make([]float32, len(ws.acts[0].lse))
	need := m.adapterNeeds(-1)
	ws.lin = nn.LinearScratch{DH: make([]float32, n*need.r), DYG: make([]float32, n*need.out), TMP: make([]float32, n*need.in)}
}

// attnShape is the attention shape of layer l (its sliding window, if any).
func (ws *workspace) attnShape(m *Model, l int) *nn.AttnShape {
	c := m.Config
	return &nn.AttnShape{B: ws.B, T: ws.T, Hq: c.NumAttentionHeads, Hkv: c.NumKeyValueHeads, D: c.HeadDim,
		Lengths: ws.lengths, Segments: ws.segments, Window: c.Window(l)}
}

func (m *Model) dropKey(layer, proj int) uint64 {
	return nn.DropKey(m.opts.Seed, m.steps, layer, proj)
}

// layerForward runs decoder block l on x [N, D] into out, saving activations in a.
func (m *Model) layerForward(l int, x, out []float32, a *layerActs, ws *workspace, train bool) {
	c := m.Config
	ly := m.Layers[l]
	n, D, eps := ws.B*ws.T, c.HiddenSize, c.RMSNormEps
	lin := func(p int, y, in []float32) {
		ly.Proj[p].Forward(y, in, n, a.cache[p], train, m.dropKey(l, p))
	}
	nn.RMSNormForward(a.xn1, a.rstd1, x, ly.InputNorm, n, D, eps)
	lin(projQ, a.q, a.xn1)
	lin(projK, a.k, a.xn1)
	lin(projV, a.v, a.xn1)
	m.rope.Forward(a.q, ws.pos, n, c.NumAttentionHeads)
	m.rope.Forward(a.k, ws.pos, n, c.NumKeyValueHeads)
	nn.AttentionForward(a.att, a.lse, a.q, a.k, a.v, ws.attnShape(m, l))
	lin(projO, a.h, a.att)
	addInPlace(a.h[:n*D], x)
	nn.RMSNormForward(a.xn2, a.rstd2, a.h, ly.PostNorm, n, D, eps)
	lin(projGate, a.g, a.xn2)
	lin(projUp, a.u, a.xn2)
	nn.SwiGLUForward(a.a[:n*c.IntermediateSize], a.g, a.u)
	lin(projDown, out, a.a)
	addInPlace(out[:n*D], a.h)
}

// layerBackward turns ws.dres from the gradient at block l's output into the gradient
// at its input (when needDx), accumulating adapter gradients on the way.
func (m *Model) layerBackward(l int, x []float32, a *layerActs, ws *workspace, needDx bool) {
	c := m.Config
	ly := m.Layers[l]
	n, D := ws.B*ws.T, c.HiddenSize
	sc := &ws.lin
	back := func(p int, dx, dy, in []float32, acc bool) {
		ly.Proj[p].Backward(dx, dy, in, n, a.cache[p], sc, true, m.dropKey(l, p), acc)
	}
	// MLP: out = h + down(silu(gate(xn2)) ⊙ up(xn2)).
	back(projDown, ws.da, ws.dres, a.a, false)
	nn.SwiGLUBackward(ws.dg, ws.du, ws.da[:n*c.IntermediateSize], a.g, a.u)
	back(projGate, ws.dxn, ws.dg, a.xn2, false)
	back(projUp, ws.dxn, ws.du, a.xn2, true)
	nn.RMSNormBackward(ws.dres, ws.dxn, a.h, ly.PostNorm, a.rstd2, n, D, true)
	// Attention: h = x + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1))).
	back(projO, ws.datt, ws.dres, a.att, false)
	nn.AttentionBackward(ws.dq, ws.dk, ws.dv, ws.datt, a.att, a.lse, a.q, a.k, a.v, ws.delta, ws.attnShape(m, l))
	m.rope.Backward(ws.dq, ws.pos, n, c.NumAttentionHeads)
	m.rope.Backward(ws.dk, ws.pos, n, c.NumKeyValueHeads)
	if !needDx {
		back(projQ, nil, ws.dq, a.xn1, false)
		back(projK, nil, ws.dk, a.xn1, false)
		back(projV, nil, ws.dv, a.xn1, false)
		return
	}
	back(projQ, ws.dxn, ws.dq, a.xn1, false)
	back(projK, ws.dxn, ws.dk, a.xn1, true)
	back(projV, ws.dxn, ws.dv, a.xn1, true)
	nn.RMSNormBackward(ws.dres, ws.dxn, x, ly.InputNorm, a.rstd1, n, D, true)
}

// addInPlace adds x to y element-wise (the residual connections), split over the
// kernel threads: a serial pass over [tokens, hidden] per layer would otherwise grow
// with the model and the sequence while everything around it scales with cores.
func addInPlace(y, x []float32) {
	x = x[:len(y)]
	kernels.Parallel(len(y), 1<<15, func(lo, hi int) {
		yy, xx := y[lo:hi], x[lo:hi]
		for i := range yy {
			yy[i] += xx[i]
		}
	})
}

// forward runs embedding and all blocks, leaving the final-normed hidden states in
// ws.xf. keepInputs stores every block input (training).
func (m *Model) forward(ctx context.Context, ws *workspace, train, keepInputs bool) error {
	c := m.Config
	n, D := ws.B*ws.T, c.HiddenSize
	if keepInputs {
		m.ensureTraining(ws)
	}
	for len(ws.inputs) < 2 {
		ws.inputs = append(ws.inputs, make([]float32, ws.n*D))
	}
	for _, ly := range m.Layers {
		for _, p := range ly.Proj {
			if a := p.Adapter; a != nil && a.DoRA {
				a.UpdateNorm(p.W)
			}
		}
	}
	nn.EmbeddingForward(ws.inputs[0][:n*D], ws.ids, m.Embed)
	cur := 0
	for l := range m.Layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		next := 1 - cur
		if keepInputs {
			cur, next = l, l+1
		}
		m.layerForward(l, ws.inputs[cur], ws.inputs[next], m.actsFor(l, ws), ws, train)
		cur = next
	}
	nn.RMSNormForward(ws.xf, ws.rstdf, ws.inputs[cur], m.Norm, n, D, c.RMSNormEps)
	return nil
}

func (m *Model) run(ctx context.Context, b *dataset.Batch, train bool) (lossSum float64, tokens int, err error) {
	if err := m.prepare(b); err != nil {
		return 0, 0, err
	}
	ws := m.ws
	c := m.Config
	n, D := ws.B*ws.T, c.HiddenSize
	if train {
		m.steps++
	}
	if err := m.forward(ctx, ws, train, train); err != nil {
		return 0, 0, err
	}
	var dxf []float32
	if train {
		dxf = ws.dxf
	}
	loss, count := ws.ce.LossAndGrad(ws.xf, ws.targets, n, dxf, 1)
	if !train {
		return loss, count, nil
	}
	L := len(m.Layers)
	nn.RMSNormBackward(ws.dres, dxf, ws.inputs[L], m.Norm, ws.rstdf, n, D, false)
	lowest := m.lowestAdapted()
	for l := L - 1; l >= lowest; l-- {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		a := m.actsFor(l, ws)
		if !m.opts.NoCheckpointing && a == ws.acts[0] && l != L-1 {
			// Recompute block l's activations; its output (block l+1's input) is no
			// longer needed, so the recomputation writes over it.
			m.layerForward(l, ws.inputs[l], ws.inputs[l+1], a, ws, true)
		}
		m.layerBackward(l, ws.inputs[l], a, ws, l > lowest)
	}
	return loss, count, nil
}

// lowestAdapted is the first layer with an adapter (the backward stops there).
func (m *Model) lowestAdapted() int {
	for l, ly := range m.Layers {
		for _, p := range ly.Proj {
			if p.Adapter != nil {
				return l
			}
		}
	}
	return len(m.Layers)
}

func errShape(name string, got, want []int) error {
	return fmt.Errorf("tensor %s has shape %v, want %v", name, got, want)
}
