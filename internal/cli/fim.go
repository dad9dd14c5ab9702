package cli

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode/utf8"

	"github.com/bidora/bidora/config"
	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/fim"
	"github.com/bidora/bidora/modelcfg"
)

// fimSetup turns a share (--fim-rate) of a pipeline's text rows into fill-in-the-middle
// examples. Which rows, and where they are cut, follow from --seed and the row's index
// alone, so a resumed run (which re-reads the same data) builds the same examples.
type fimSetup struct {
	b         *fim.Builder
	rate      float64
	mode      fim.Mode
	loss      fim.Loss
	seed      uint64
	maxSeqLen int
	vocabSize int
}

// fimStream separates the FIM draws from the other seeded draws of a run.
const fimStream = 0xF1F1F1F1

// enableFIM sets up --fim-rate/--fim-mode/--fim-loss for the text rows this pipeline
// encodes (a rate of 0 leaves it off). A tokenizer without FIM tokens is a usage error
// naming --fim-rate.
func (p *textPipeline) enableFIM(cfg *config.Train, mc *modelcfg.Config) error {
	if cfg.FIMRate <= 0 {
		return nil
	}
	b, err := newFIMBuilder(p, "--fim-rate")
	if err != nil {
		return err
	}
	f := &fimSetup{b: b, rate: cfg.FIMRate, mode: fim.Mode(cfg.FIMMode), loss: fim.Loss(cfg.FIMLoss),
		seed: uint64(cfg.Seed), maxSeqLen: cfg.MaxSeqLen}
	if mc != nil {
		f.vocabSize = mc.VocabSize
	}
	if _, err := b.Prompt("", "", "", f.mode); err != nil {
		return usageErrorf("--fim-mode: %v", err)
	}
	p.fim = f
	return nil
}

// newFIMBuilder detects the pipeline tokenizer's FIM tokens; flag names the option that
// asked for FIM in the error of a tokenizer without them.
func newFIMBuilder(p *textPipeline, flag string) (*fim.Builder, error) {
	v, err := fim.Detect(p.tok)
	var ne *fim.NoTokensError
	if errors.As(err, &ne) {
		return nil, noFIMTokens(flag, err)
	}
	if err != nil {
		return nil, err
	}
	return fim.NewBuilder(p.tok, v, p.special.BOS), nil
}

// encodeRow encodes row i of a data set: as a FIM example when FIM is on and picks
// it, else through the encoder.
func (p *textPipeline) encodeRow(r dataset.Row, i int) (ex dataset.Example, truncated, isFIM bool, err error) {
	if p.fim != nil {
		if ex, ok, truncated, err := p.fim.example(r, i); ok {
			return ex, truncated, true, err
		}
	}
	ex, truncated, err = p.enc.Encode(r)
	return ex, truncated, false, err
}

// noFIMTokens is the usage error for flag with a tokenizer without FIM tokens.
func noFIMTokens(flag string, err error) error {
	return usageErrorf("%s: %v; use a code model that has them, or leave %s out", flag, err, flag)
}

// describe is the data report's note on the FIM settings.
func (f *fimSetup) describe() string {
	return fmt.Sprintf("%s tokens, %s, loss on %s", f.b.Vocab().Family, f.mode, f.loss)
}

// example builds row i as a FIM example when the seeded draw picks it; ok is false
// for a row left as it is (not a text row, or not drawn).
func (f *fimSetup) example(r dataset.Row, i int) (ex dataset.Example, ok, truncated bool, err error) {
	if r.Kind != dataset.KindText {
		return ex, false, false, nil
	}
	rng := rand.New(rand.NewPCG(f.seed^fimStream, uint64(i)))
	if rng.Float64() >= f.rate {
		return ex, false, false, nil
	}
	text := r.Text
	// A text far longer than --max-seq-len would be truncated to its first tokens:
	// cut it first (at a line break) to about what fits, so that the split falls in
	// the part that is kept. Code runs at about 3–4 bytes per token.
	if m := f.maxSeqLen; m > 0 && len(text) > 4*m {
		text, truncated = cutText(text, 4*m), true
	}
	prefix, middle, suffix := fim.Split(text, rng)
	ex, err = f.b.Example(fim.Parts{Header: r.Header, Prefix: prefix, Middle: middle, Suffix: suffix}, f.mode, f.loss)
	if err != nil {
		return ex, true, truncated, err
	}
	ex.Source = r.Source
	if v := f.vocabSize; v > 0 {
		for _, id := range ex.InputIDs {
			if id < 0 || int(id) >= v {
				return ex, true, truncated, fmt.Errorf("token id %d is outside the vocabulary [0, %d) of the model (config.json vocab_size): the tokenizer does not match the model", id, v)
			}
		}
	}
	if m := f.maxSeqLen; m > 0 && len(ex.InputIDs) > m {
		ex.InputIDs, ex.Labels, truncated = ex.InputIDs[:m], ex.Labels[:m], true
	}
	if ex.Trainable() == 0 {
		return ex, true, truncated, fmt.Errorf("fill-in-the-middle: %w left after truncation to %d tokens", dataset.ErrNoTrainable, f.maxSeqLen)
	}
	return ex, true, truncated, nil
}

// cutText returns the start of s, at most n bytes, ending after a line break when one
// lies in its second half, else at a rune boundary.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	if nl := strings.LastIndexByte(s[:n], '\n'); nl >= n/2 {
		return s[:nl+1]
	}
	return s[:n]
}
