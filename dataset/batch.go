package dataset

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Split moves a seeded random fraction of examples into a validation set. The order of
// both parts follows the input order. With frac > 0 and at least two examples, both
// parts get at least one example.
func Split[T any](items []T, frac float64, seed uint64) (train, val []T) {
	n := len(items)
	nVal := int(frac*float64(n) + 0.5)
	if frac > 0 && n >= 2 {
		nVal = max(1, min(nVal, n-1))
	}
	if nVal <= 0 {
		return items, nil
	}
	perm := rand.New(rand.NewPCG(seed, 0x5eed_da7a)).Perm(n)
	isVal := make([]bool, n)
	for _, i := range perm[:nVal] {
		isVal[i] = true
	}
	for i, it := range items {
		if isVal[i] {
			val = append(val, it)
		} else {
			train = append(train, it)
		}
	}
	return train, val
}

// Batch is B token rows trained (or evaluated) together, right-padded to T: the one
// input type of the model (package model) and the training loop (package train).
//
// Labels follow the HF causal-LM convention: they are aligned with InputIDs and the
// model at position t predicts Labels[t+1]; IgnoreIndex labels carry no loss. A label
// counts only if its position is inside the row (t+1 < Lengths[b]) and, for packed
// rows, in the same segment as position t.
type Batch struct {
	B, T     int
	InputIDs []int32 // [B·T]
	Labels   []int32 // [B·T]
	// Lengths[b] is the number of real tokens of row b; the rest is padding that no
	// real token attends to. nil means every row is T long.
	Lengths []int
	// Segments optionally splits packed rows into independent sequences ([B·T]): a
	// token attends only to earlier tokens with the same segment id, and positions
	// restart at 0 at each segment start. nil means one sequence per row.
	Segments []int32
}

// NewBatch right-pads examples into one batch (pad id 0, labels ignored), one row each.
func NewBatch(examples []Example) Batch {
	rows := make([]row, len(examples))
	for i, ex := range examples {
		rows[i] = row{ids: ex.InputIDs, labels: ex.Labels}
	}
	return padRows(rows)
}

// row is one batch row before padding; segments is nil unless packed.
type row struct{ ids, labels, segments []int32 }

// padRows lays rows out as a [B, T] batch, T the longest row. Padding after a packed
// row gets a segment id of its own so that it never joins the row's last sequence.
func padRows(rows []row) Batch {
	T := 0
	packed := false
	for _, r := range rows {
		T = max(T, len(r.ids))
		packed = packed || r.segments != nil
	}
	B := len(rows)
	b := Batch{B: B, T: T, InputIDs: make([]int32, B*T), Labels: make([]int32, B*T), Lengths: make([]int, B)}
	if packed {
		b.Segments = make([]int32, B*T)
	}
	for i, r := range rows {
		copy(b.InputIDs[i*T:], r.ids)
		copy(b.Labels[i*T:], r.labels)
		for t := len(r.labels); t < T; t++ {
			b.Labels[i*T+t] = IgnoreIndex
		}
		b.Lengths[i] = len(r.ids)
		if packed {
			copy(b.Segments[i*T:], r.segments)
			last := int32(-1)
			if n := len(r.segments); n > 0 {
				last = r.segments[n-1]
			}
			for t := len(r.segments); t < T; t++ {
				b.Segments[i*T+t] = last + 1
			}
		}
	}
	return b
}

// Validate checks the batch's shapes and, given the vocabulary size, its ids.
func (b *Batch) Validate(vocab int) error {
	n := b.B * b.T
	if b.B <= 0 || b.T <= 0 {
		return fmt.Errorf("batch: B and T must be positive, got B=%d T=%d", b.B, b.T)
	}
	if len(b.InputIDs) != n || len(b.Labels) != n {
		return fmt.Errorf("batch: input_ids has %d and labels %d values, want B·T = %d", len(b.InputIDs), len(b.Labels), n)
	}
	if b.Lengths != nil {
		if len(b.Lengths) != b.B {
			return fmt.Errorf("batch: %d lengths for %d rows", len(b.Lengths), b.B)
		}
		for i, l := range b.Lengths {
			if l < 0 || l > b.T {
				return fmt.Errorf("batch: row %d length %d outside [0, %d]", i, l, b.T)
			}
		}
	}
	if b.Segments != nil && len(b.Segments) != n {
		return fmt.Errorf("batch: %d segment ids, want B·T = %d", len(b.Segments), n)
	}
	for i, id := range b.InputIDs {
		if b.inRow(i) && (id < 0 || int(id) >= vocab) {
			return fmt.Errorf("batch: row %d position %d: token id %d outside the vocabulary [0, %d)", i/b.T, i%b.T, id, vocab)
		}
	}
	for i, l := range b.Labels {
		if b.inRow(i) && l != IgnoreIndex && (l < 0 || int(l) >= vocab) {
			return fmt.Errorf("batch: row %d position %d: label %d outside the vocabulary [0, %d) and not %d", i/b.T, i%b.T, l, vocab, IgnoreIndex)
		}
	}
	return nil
}

// Length is the number of real tokens of row r.
func (b *Batch) Length(r int) int {
	if b.Lengths == nil {
		return b.T
	}
	return b.Lengths[r]
}

func (b *Batch) inRow(i int) bool { return i%b.T < b.Length(i/b.T) }

// Row returns row r's real tokens, labels and (packed) segment ids, without padding.
func (b *Batch) Row(r int) (ids, labels, segments []int32) {
	lo, hi := r*b.T, r*b.T+b.Length(r)
	if b.Segments != nil {
		segments = b.Segments[lo:hi]
	}
	return b.InputIDs[lo:hi], b.Labels[lo:hi], segments
}

// Targets writes into dst [B·T] the label each position predicts (IgnoreIndex where
// none) and returns how many positions have one.
func (b *Batch) Targets(dst []int32) int {
	n := 0
	for r := 0; r < b.B; r++ {
		l := b.Length(r)
		for t := 0; t < b.T; t++ {
			i := r*b.T + t
			dst[i] = IgnoreIndex
			if t+1 >= l || b.Labels[i+1] == IgnoreIndex {
				continue
			}
			if b.Segments != nil && b.Segments[i+1] != b.Segments[i] {
				continue
			}
			dst[i] = b.Labels[i+1]
			n++
		}
	}
	return n
}

// Positions writes the rotary position of every token into dst [B·T]: t within a
// row, or the offset from its segment's start for packed rows.
func (b *Batch) Positions(dst []int32) {
	for r := 0; r < b.B; r++ {
		start := 0
		for t := 0; t < b.T; t++ {
			i := r*b.T + t
			if b.Segments != nil && t > 0 && b.Segments[i] != b.Segments[i-1] {
				start = t
			}
			dst[i] = int32(t - start)
		}
	}
}

// Tokens counts the real tokens of the batch (without padding).
func (b *Batch) Tokens() int {
	if b.Lengths == nil {
		return b.B * b.T
	}
	n := 0
	for _, l := range b.Lengths {
		n += l
	}
	return n
}

// Trainable counts the positions whose prediction carries loss.
func (b *Batch) Trainable() int {
	n := 0
	for r := 0; r < b.B; r++ {
		_, labels, segs := b.Row(r)
		for t := 1; t < len(labels); t++ {
			if labels[t] != IgnoreIndex && (segs == nil || segs[t] == segs[t-1]) {
				n++
			}
		}
	}
	return n
}

// BatchOptions controls batching.
type BatchOptions struct {
	BatchSize int
	Seed      uint64
	// GroupByLength sorts examples by length inside windows of 64 batches to cut padding,
	// then shuffles the batch order.
	GroupByLength bool
	// Pack concatenates examples into sequences of at most MaxSeqLen tokens.
	Pack      bool
	MaxSeqLen int
}

// EpochBatches returns the batches of one epoch, deterministic in (Seed, epoch).
func EpochBatches(examples []Example, epoch int, opts BatchOptions) []Batch {
	rng := rand.New(rand.NewPCG(opts.Seed, uint64(epoch)+1))
	order := rng.Perm(len(examples))
	bs := max(1, opts.BatchSize)
	if opts.Pack {
		return packBatches(examples, order, bs, opts.MaxSeqLen)
	}
	if opts.GroupByLength {
		window := 64 * bs
		for lo := 0; lo < len(order); lo += window {
			w := order[lo:min(lo+window, len(order))]
			slices.SortStableFunc(w, func(a, b int) int { return len(examples[b].InputIDs) - len(examples[a].InputIDs) })
		}
	}
	var batches []Batch
	for lo := 0; lo < len(order); lo += bs {
		var rows []row
		for _, i := range order[lo:min(lo+bs, len(order))] {
			rows = append(rows, row{ids: examples[i].InputIDs, labels: examples[i].Labels})
		}
		batches = append(batches, padRows(rows))
	}
	if opts.GroupByLength {
		rng.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
	}
	return batches
}

// packBatches fills sequences greedily in the shuffled order.
func packBatches(examples []Example, order []int, bs, maxLen int) []Batch {
	var seqs []row
	var cur row
	seg := int32(0)
	flush := func() {
		if len(cur.ids) > 0 {
			seqs = append(seqs, cur)
		}
		cur, seg = row{}, 0
	}
	for _, i := range order {
		ex := examples[i]
		if maxLen > 0 && len(cur.ids)+len(ex.InputIDs) > maxLen {
			flush()
		}
		cur.ids = append(cur.ids, ex.InputIDs...)
		cur.labels = append(cur.labels, ex.Labels...)
		// The first token of a packed example is never a target of the previous one.
		if len(cur.labels) > len(ex.Labels) {
			cur.labels[len(cur.labels)-len(ex.Labels)] = IgnoreIndex
		}
		for range ex.InputIDs {
			cur.segments = append(cur.segments, seg)
		}
		seg++
	}
	flush()
	var batches []Batch
	for lo := 0; lo < len(seqs); lo += bs {
		batches = append(batches, padRows(seqs[lo:min(lo+bs, len(seqs))]))
	}
	return batches
}
