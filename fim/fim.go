// Package fim builds fill-in-the-middle (FIM) training examples and infilling prompts
// with a code model's own FIM tokens (Bavarian et al. 2022, "Efficient Training of
// Language Models to Fill in the Middle").
//
// A document is cut at two character positions drawn uniformly (Split) into prefix,
// middle and suffix; the example shows the model the prefix and the suffix, each behind
// its sentinel token, and then has it write the middle, closed by an end-of-middle
// token. Two orders are built:
//
//	PSM  [BOS] header <PRE> prefix <SUF> suffix <MID> middle <END>
//	SPM  [BOS] header <PRE> <SUF> suffix <MID> prefix middle <END>
//
// SPM is the variant of the paper's appendix D (also what CodeLlama and StarCoder's
// training code use): the prefix sentinel still comes first, and the prefix follows the
// middle sentinel, so that prefix and middle form one contiguous text, as in ordinary
// left-to-right reading.
//
// Detect finds the sentinels of four vocabularies: Qwen2.5-Coder (<|fim_prefix|>,
// <|fim_suffix|>, <|fim_middle|>, ending with <|endoftext|>), CodeLlama (▁<PRE>, ▁<SUF>,
// ▁<MID>, ending with ▁<EOT>), DeepSeek-Coder (<｜fim▁begin｜>, <｜fim▁hole｜>,
// <｜fim▁end｜>, ending with <｜end▁of▁sentence｜>) and StarCoder (<fim_prefix>,
// <fim_suffix>, <fim_middle>, ending with <|endoftext|>). The header (a file's path
// line, e.g. Qwen's <|repo_name|>…<|file_sep|>path) comes before the sentinels and is
// never cut. CodeLlama is a SentencePiece vocabulary whose encoding puts a space marker
// before a text: as in its reference code, the prefix keeps that marker and the suffix
// and the middle are encoded without it.
package fim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bidora/bidora/dataset"
)

// Family names a FIM vocabulary.
type Family string

// The FIM vocabularies Detect knows.
const (
	Qwen      Family = "qwen2.5-coder"
	CodeLlama Family = "codellama"
	DeepSeek  Family = "deepseek-coder"
	StarCoder Family = "starcoder"
)

// Mode is the order of the parts in an example.
type Mode string

// The orders of an example.
const (
	PSM Mode = "psm" // prefix, suffix, middle
	SPM Mode = "spm" // suffix, prefix, middle (the appendix-D variant)
)

// Loss says which tokens of an example carry loss.
type Loss string

// Loss choices.
const (
	LossAll    Loss = "all"    // every token but BOS
	LossMiddle Loss = "middle" // the middle and the end-of-middle token
)

// Tokenizer is what this package needs of a tokenizer (tokenizer.Tokenizer has it).
type Tokenizer interface {
	// Encode encodes text without adding special tokens (special tokens written in the
	// text are matched).
	Encode(text string) []int
	// TokenToID looks a token up in the vocabulary or the added tokens.
	TokenToID(token string) (int, bool)
}

// Vocab holds the ids of one tokenizer's FIM tokens.
type Vocab struct {
	Family                 Family
	Prefix, Suffix, Middle int
	// End closes the middle: training puts it after the middle and trains on it;
	// generation stops at it.
	End int
	// Pad is the FIM pad token, -1 when the vocabulary has none (it is only reported).
	Pad int
}

// family is the token names of one FIM vocabulary.
type family struct {
	name                             Family
	prefix, suffix, middle, end, pad string
}

var families = []family{
	{Qwen, "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|endoftext|>", "<|fim_pad|>"},
	{CodeLlama, "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>", ""},
	{DeepSeek, "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<｜end▁of▁sentence｜>", ""},
	{StarCoder, "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|endoftext|>", "<fim_pad>"},
}

// NoTokensError is Detect's error for a tokenizer without a complete FIM vocabulary.
type NoTokensError struct {
	// Partial names a family some of whose tokens were found, with the missing ones.
	Partial string
}

func (e *NoTokensError) Error() string {
	msg := "the tokenizer has no fill-in-the-middle tokens (known: Qwen2.5-Coder <|fim_prefix|>…, CodeLlama ▁<PRE>…, DeepSeek-Coder <｜fim▁begin｜>…, StarCoder <fim_prefix>…)"
	if e.Partial != "" {
		msg += "; " + e.Partial
	}
	return msg
}

// Detect finds the FIM tokens of tok. A tokenizer with none of the known vocabularies
// gets a *NoTokensError.
func Detect(tok Tokenizer) (Vocab, error) {
	var partial string
	for _, f := range families {
		names := []string{f.prefix, f.suffix, f.middle, f.end}
		ids := make([]int, len(names))
		var missing []string
		for i, n := range names {
			id, ok := tok.TokenToID(n)
			if !ok {
				missing = append(missing, n)
			}
			ids[i] = id
		}
		if len(missing) == 0 {
			v := Vocab{Family: f.name, Prefix: ids[0], Suffix: ids[1], Middle: ids[2], End: ids[3], Pad: -1}
			if id, ok := tok.TokenToID(f.pad); ok && f.pad != "" {
				v.Pad = id
			}
			return v, nil
		}
		if _, ok := tok.TokenToID(f.prefix); ok && partial == "" {
			partial = fmt.Sprintf("it has %s %s but lacks %s", f.name, f.prefix, strings.Join(missing, ", "))
		}
	}
	return Vocab{}, &NoTokensError{Partial: partial}
}

// Parts is a document cut for FIM.
type Parts struct {
	Header                 string // goes first, never cut (may be empty)
	Prefix, Middle, Suffix string
}

// Split cuts text at two character positions drawn uniformly from [0, n] (n runes),
// the paper's character-level split. Cuts fall between runes, never inside one; the
// middle may be empty. Invalid UTF-8 bytes count as one character each.
func Split(text string, r *rand.Rand) (prefix, middle, suffix string) {
	n := utf8.RuneCountInString(text)
	i, j := r.IntN(n+1), r.IntN(n+1)
	if i > j {
		i, j = j, i
	}
	return SplitAt(text, i, j)
}

// SplitAt cuts text before its i-th and j-th runes (0 ≤ i ≤ j ≤ rune count; out of
// range values are clamped).
func SplitAt(text string, i, j int) (prefix, middle, suffix string) {
	i, j = max(0, i), max(0, j)
	if i > j {
		i, j = j, i
	}
	a, b := runeOffset(text, i), runeOffset(text, j)
	return text[:a], text[a:b], text[b:]
}

// runeOffset is the byte offset of the k-th rune of s (len(s) past the end).
func runeOffset(s string, k int) int {
	off := 0
	for ; k > 0 && off < len(s); k-- {
		_, size := utf8.DecodeRuneInString(s[off:])
		off += size
	}
	return off
}

// Builder turns parts into token sequences for one tokenizer.
type Builder struct {
	tok Tokenizer
	v   Vocab
	bos []int
	// nl is the encoding of a lone "\n", used to encode a text without SentencePiece's
	// leading space marker (CodeLlama).
	nl []int
}

// NewBuilder returns a builder for tok with its FIM vocabulary v. bos are the ids a
// sequence starts with (the tokenizer's BOS, e.g. <s> for CodeLlama; nil for Qwen).
func NewBuilder(tok Tokenizer, v Vocab, bos []int) *Builder {
	b := &Builder{tok: tok, v: v, bos: slices.Clone(bos)}
	if v.Family == CodeLlama {
		b.nl = tok.Encode("\n")
	}
	return b
}

// Vocab returns the builder's FIM tokens.
func (b *Builder) Vocab() Vocab { return b.v }

// encodeInner encodes a suffix or a middle: as is, except for CodeLlama, whose
// SentencePiece encoding would open it with a space marker that the text does not have.
// It encodes "\n"+s and drops the ids of "\n" (when they are a prefix of the result, as
// they are with a SentencePiece BPE; otherwise it falls back to s alone).
func (b *Builder) encodeInner(s string) []int {
	if s == "" {
		return nil
	}
	if b.nl == nil {
		return b.tok.Encode(s)
	}
	ids := b.tok.Encode("\n" + s)
	if len(ids) > len(b.nl) && slices.Equal(ids[:len(b.nl)], b.nl) {
		return ids[len(b.nl):]
	}
	return b.tok.Encode(s)
}

func (b *Builder) encodeOuter(s string) []int {
	if s == "" {
		return nil
	}
	return b.tok.Encode(s)
}

// Example builds the training sequence of p in mode with labels for loss:
// dataset.IgnoreIndex marks tokens without loss (BOS always; with LossMiddle everything
// but the middle and the end-of-middle token).
func (b *Builder) Example(p Parts, mode Mode, loss Loss) (dataset.Example, error) {
	if err := checkMode(mode, loss); err != nil {
		return dataset.Example{}, err
	}
	var ex dataset.Example
	add := func(ids []int, train bool) {
		for _, id := range ids {
			ex.InputIDs = append(ex.InputIDs, int32(id))
			if train {
				ex.Labels = append(ex.Labels, int32(id))
			} else {
				ex.Labels = append(ex.Labels, dataset.IgnoreIndex)
			}
		}
	}
	ctx := loss == LossAll
	add(b.bos, false)
	add(b.encodeOuter(p.Header), ctx)
	b.context(add, p.Prefix, p.Suffix, mode, ctx)
	add(b.encodeInner(p.Middle), true)
	add([]int{b.v.End}, true)
	return ex, nil
}

// context adds the sentinels, prefix and suffix that come before the middle.
func (b *Builder) context(add func([]int, bool), prefix, suffix string, mode Mode, train bool) {
	v := b.v
	if mode == SPM {
		add([]int{v.Prefix, v.Suffix}, train)
		add(b.encodeInner(suffix), train)
		add([]int{v.Middle}, train)
		add(b.encodeOuter(prefix), train)
		return
	}
	add([]int{v.Prefix}, train)
	add(b.encodeOuter(prefix), train)
	add([]int{v.Suffix}, train)
	add(b.encodeInner(suffix), train)
	add([]int{v.Middle}, train)
}

// Prompt builds the infilling prompt for a model to write the middle between prefix
// and suffix: the example of Example up to where the middle starts. Generation should
// stop at Stops.
func (b *Builder) Prompt(header, prefix, suffix string, mode Mode) ([]int, error) {
	if err := checkMode(mode, LossAll); err != nil {
		return nil, err
	}
	var ids []int
	add := func(s []int, _ bool) { ids = append(ids, s...) }
	add(b.bos, false)
	add(b.encodeOuter(header), false)
	b.context(add, prefix, suffix, mode, false)
	return ids, nil
}

// Decoder turns ids back into text (tokenizer.Tokenizer is one).
type Decoder interface {
	Decode(ids []int, skipSpecial bool) string
}

// MiddleContext are ids to decode just before a generated middle, so that it decodes
// as the text it stands for: CodeLlama's decoder drops the first leading space of a
// text, so its middle is decoded after the encoding of "\n", whose text is then cut
// off (DecodeMiddle does this). Nil for the other families.
func (b *Builder) MiddleContext() []int { return slices.Clone(b.nl) }

// DecodeMiddle decodes the ids of a generated middle (special tokens skipped).
func (b *Builder) DecodeMiddle(dec Decoder, ids []int) string {
	if b.nl == nil {
		return dec.Decode(ids, true)
	}
	base := dec.Decode(b.nl, true)
	all := dec.Decode(append(slices.Clip(b.nl), ids...), true)
	if strings.HasPrefix(all, base) {
		return all[len(base):]
	}
	return dec.Decode(ids, true)
}

// Stops are the ids at which an infilling ends: the end-of-middle token.
func (b *Builder) Stops() []int { return []int{b.v.End} }

// ErrMode is returned (wrapped) for an unknown Mode or Loss.
var ErrMode = errors.New("unknown FIM mode or loss")

func checkMode(mode Mode, loss Loss) error {
	if mode != PSM && mode != SPM {
		return fmt.Errorf("%w: mode %q (want psm or spm)", ErrMode, mode)
	}
	if loss != LossAll && loss != LossMiddle {
		return fmt.Errorf("%w: loss %q (want all or middle)", ErrMode, loss)
	}
	return nil
}
