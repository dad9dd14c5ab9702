// Package sample picks the next token from a language model's logits the way
// HuggingFace transformers' generate does, and turns generated tokens into text as
// they come.
//
// Sampling (Sampler) applies, in transformers' order, the repetition penalty (to every
// token seen in the context, prompt included), then — when sampling rather than greedy
// — temperature, top-k and top-p (nucleus) filtering, and draws from the softmax of
// what is left with a seeded generator, so a seed reproduces a run. Temperature 0 is
// greedy decoding (argmax, lowest id on ties, as torch.argmax), and so is any
// temperature below MinTemperature, where dividing the logits would overflow float32
// or leave all the probability on the top token anyway.
//
// GenerationConfig reads a model's generation_config.json (end-of-sequence ids and
// default sampling parameters); Stream decodes tokens incrementally, holding back
// incomplete UTF-8 characters and the possible start of a stop string, and reports
// when a stop string appears.
package sample

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// MinTemperature is the smallest temperature that samples: below it (1e-300, say) the
// logits divided by the temperature overflow float32 to ±Inf and the softmax turns
// into NaN, and well before that the distribution has collapsed onto the argmax
// (a logit gap of 0.001 becomes e^100). Such temperatures decode greedily.
const MinTemperature = 1e-5

// Config holds the sampling parameters. The zero value is greedy decoding without a
// repetition penalty.
type Config struct {
	// Temperature divides the logits before sampling; 0 (or anything below
	// MinTemperature) means greedy decoding.
	Temperature float64
	// TopK keeps the k highest logits (ties with the k-th kept too); 0 keeps all.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability reaches p
	// (transformers' rule: drop a token when the total probability of the tokens
	// ranked below it and itself is ≤ 1−p; the most likely token always stays).
	// 0 and 1 keep all.
	TopP float64
	// RepetitionPenalty divides positive logits and multiplies negative ones of every
	// token present in the context (CTRL / transformers); 0 and 1 mean none.
	RepetitionPenalty float64
	// Seed seeds the generator that draws tokens.
	Seed uint64
}

// Validate checks the ranges of the parameters and names the one that is wrong.
func (c *Config) Validate() error {
	switch {
	case !(c.Temperature >= 0) || math.IsInf(c.Temperature, 0):
		return fmt.Errorf("temperature must be a finite number ≥ 0, got %v", c.Temperature)
	case c.TopK < 0:
		return fmt.Errorf("top-k must be ≥ 0 (0 = no limit), got %d", c.TopK)
	case !(c.TopP >= 0 && c.TopP <= 1):
		return fmt.Errorf("top-p must be in [0, 1] (0 or 1 = no limit), got %v", c.TopP)
	case !(c.RepetitionPenalty >= 0) || math.IsInf(c.RepetitionPenalty, 0):
		return fmt.Errorf("repetition penalty must be a finite number > 0 (1 = none), got %v", c.RepetitionPenalty)
	}
	return nil
}

// Greedy reports whether c picks the argmax: temperature 0 or below MinTemperature.
func (c *Config) Greedy() bool { return c.Temperature < MinTemperature }

// Sampler picks tokens according to a Config. It is not safe for concurrent use.
type Sampler struct {
	cfg     Config
	rng     *rand.Rand
	scratch []float32
	probs   []float64
	idx     []int
}

// New returns a sampler for cfg.
func New(cfg Config) (*Sampler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sampler{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))}, nil
}

// Config returns the sampler's parameters.
func (s *Sampler) Config() Config { return s.cfg }

// Sample returns the next token given the logits [vocab] and the context so far
// (prompt and generated ids, for the repetition penalty). It modifies logits in place.
func (s *Sampler) Sample(logits []float32, context []int) int {
	c := &s.cfg
	if c.RepetitionPenalty != 0 && c.RepetitionPenalty != 1 {
		RepetitionPenalty(logits, context, float32(c.RepetitionPenalty))
	}
	if c.Greedy() {
		return Argmax(logits)
	}
	if c.Temperature != 1 {
		if overflows(logits, c.Temperature) {
			return Argmax(logits) // logits/T would be ±Inf: the limit is greedy
		}
		t := float32(c.Temperature)
		for i := range logits {
			logits[i] /= t
		}
	}
	if c.TopK > 0 {
		s.scratch = TopK(logits, c.TopK, s.scratch)
	}
	probs := s.softmax(logits)
	if c.TopP > 0 && c.TopP < 1 {
		s.idx = TopP(probs, c.TopP, s.idx)
	}
	return draw(probs, s.rng.Float64())
}

// overflows reports whether dividing some finite logit by t leaves float32's range.
func overflows(logits []float32, t float64) bool {
	var mx float64
	for _, v := range logits {
		if a := math.Abs(float64(v)); a > mx && !math.IsInf(a, 0) {
			mx = a
		}
	}
	return mx/t > math.MaxFloat32
}

// softmax writes the probabilities of logits into s.probs (f64; masked −Inf logits get
// probability 0).
func (s *Sampler) softmax(logits []float32) []float64 {
	if cap(s.probs) < len(logits) {
		s.probs = make([]float64, len(logits))
	}
	p := s.probs[:len(logits)]
	mx := float32(math.Inf(-1))
	for _, v := range logits {
		mx = max(mx, v)
	}
	var z float64
	for i, v := range logits {
		e := math.Exp(float64(v - mx))
		p[i] = e
		z += e
	}
	for i := range p {
		p[i] /= z
	}
	return p
}

// draw picks index i with probability probs[i]/Σprobs for u uniform in [0, 1).
func draw(probs []float64, u float64) int {
	var z float64
	last := 0
	for i, p := range probs {
		z += p
		if p > 0 {
			last = i
		}
	}
	t := u * z
	var acc float64
	for i, p := range probs {
		acc += p
		if acc > t && p > 0 {
			return i
		}
	}
	return last
}

// Argmax returns the index of the largest logit, the lowest index on ties (as
// torch.argmax); NaN logits are never picked unless all are NaN (then 0).
func Argmax(logits []float32) int {
	best, at := float32(math.Inf(-1)), 0
	found := false
	for i, v := range logits {
		if v > best || (!found && v == best) {
			best, at, found = v, i, true
		}
	}
	return at
}

// RepetitionPenalty applies transformers' RepetitionPenaltyLogitsProcessor: for every
// distinct token of context, its logit is divided by penalty when positive and
// multiplied by it otherwise. Ids outside logits are ignored.
func RepetitionPenalty(logits []float32, context []int, penalty float32) {
	seen := make(map[int]struct{}, len(context))
	for _, id := range context {
		if id < 0 || id >= len(logits) {
			continue
		}
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		if v := logits[id]; v < 0 {
			logits[id] = v * penalty
		} else {
			logits[id] = v / penalty
		}
	}
}

// TopK sets every logit below the k-th largest to −Inf (transformers' TopKLogitsWarper:
// ties with the k-th value are kept). scratch is reused when large enough and returned.
func TopK(logits []float32, k int, scratch []float32) []float32 {
	if k <= 0 || k >= len(logits) {
		return scratch
	}
	scratch = append(scratch[:0], logits...)
	kth := nthLargest(scratch, k-1)
	inf := float32(math.Inf(-1))
	for i, v := range logits {
		if v < kth {
			logits[i] = inf
		}
	}
	return scratch
}

// nthLargest returns the n-th largest value of x (0-based), reordering x
// (quickselect with a median-of-three pivot).
func nthLargest(x []float32, n int) float32 {
	lo, hi := 0, len(x)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		a, b, c := x[lo], x[mid], x[hi]
		pivot := max(min(a, b), min(max(a, b), c))
		i, j := lo, hi
		for i <= j {
			for x[i] > pivot {
				i++
			}
			for x[j] < pivot {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case n <= j:
			hi = j
		case n >= i:
			lo = i
		default:
			return x[n]
		}
	}
	return x[n]
}

// nucleusFloor is the probability above which tokens are sorted first when looking for
// the top-p cut; the full vocabulary is sorted only when those tokens hold less than p.
const nucleusFloor = 1e-5

// TopP zeroes the probabilities [vocab] of the tokens transformers' TopPLogitsWarper
// removes: sorted by ascending probability, a token goes when the cumulative
// probability up to and including it is ≤ 1−p; the most likely token always stays.
// idx is scratch, reused when large enough and returned. The kept probabilities are
// not renormalised (draw does that).
func TopP(probs []float64, p float64, idx []int) []int {
	if p <= 0 || p >= 1 {
		return idx
	}
	var total float64
	for _, q := range probs {
		total += q
	}
	// Candidates: the tokens above the floor, if together they reach p (all others then
	// rank below them and are removed); else the whole vocabulary.
	idx = idx[:0]
	var mass float64
	for i, q := range probs {
		if q >= nucleusFloor*total {
			idx = append(idx, i)
			mass += q
		}
	}
	full := mass < p*total
	if full {
		idx = idx[:0]
		for i := range probs {
			idx = append(idx, i)
		}
	}
	// Ascending by probability; ties by descending id so that, as with a stable sort of
	// the ascending scores, the lower id ranks higher.
	slices.SortFunc(idx, func(a, b int) int {
		if c := cmp.Compare(probs[a], probs[b]); c != 0 {
			return c
		}
		return cmp.Compare(b, a)
	})
	cum := total - mass // everything below the candidates
	if full {
		cum = 0
	}
	limit := (1 - p) * total
	for n, i := range idx {
		cum += probs[i]
		if cum > limit || n == len(idx)-1 {
			break
		}
		probs[i] = 0
	}
	if !full {
		for i, q := range probs {
			if q < nucleusFloor*total {
				probs[i] = 0
			}
		}
	}
	return idx
}
