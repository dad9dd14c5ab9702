package tokenizer

import (
	"fmt"
	"slices"
)

// Special is how a model's text is framed by special tokens. It is the one rule that
// training (what a response ends with), evaluation and generation (where a reply
// stops) share, so that they agree on where a turn ends.
type Special struct {
	// BOS are the ids the post-processor puts before a text, as HF's
	// encode(text, add_special_tokens=True) does: [<s>] for Llama 2; none for Qwen, or
	// for a Llama 3 tokenizer.json whose post-processor adds nothing. Chat templates
	// write their own.
	BOS []int
	// EOS is the id that ends a training response or text row: tokenizer_config.json's
	// eos_token when the vocabulary has it, else config.json's first eos_token_id, else
	// generation_config.json's first eos_token_id.
	EOS int
	// EndOfTurn are the ids that end a turn, sorted and distinct: EOS, every
	// eos_token_id of config.json and generation_config.json, and the chat end-of-turn
	// markers (EndOfTurnMarkers) the tokenizer has as added tokens. A training response
	// that holds one gets no extra EOS; generation stops at any of them.
	EndOfTurn []int
}

// SpecialConfig holds what the files beside tokenizer.json say about special tokens.
type SpecialConfig struct {
	// EOSToken is tokenizer_config.json's eos_token ("" when unset).
	EOSToken string
	// EOSTokenIDs is config.json's eos_token_id (an int or a list in the file).
	EOSTokenIDs []int
	// GenerationEOSTokenIDs is generation_config.json's eos_token_id.
	GenerationEOSTokenIDs []int
}

// EndOfTurnMarkers are the tokens that chat templates write at the end of a turn
// (ChatML, Llama 3, Phi-3, Gemma, Llama 2 / Mistral, GPT-2 style end of text). Each
// counts as an end of turn when the tokenizer has it as an added token.
var EndOfTurnMarkers = []string{"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>",
	"<|endoftext|>", "<|end_of_text|>", "</s>", "<|EOT|>"}

// ResolveSpecial resolves the special tokens of this tokenizer with the model's
// settings. When no EOS can be found it returns an error along with the rest (EOS -1):
// training needs an EOS, generation can run without one.
func (t *Tokenizer) ResolveSpecial(cfg SpecialConfig) (Special, error) {
	s := Special{EOS: -1, BOS: t.prefixIDs()}
	if cfg.EOSToken != "" {
		if id, ok := t.TokenToID(cfg.EOSToken); ok {
			s.EOS = id
		}
	}
	for _, ids := range [][]int{cfg.EOSTokenIDs, cfg.GenerationEOSTokenIDs} {
		if s.EOS < 0 && len(ids) > 0 {
			s.EOS = ids[0]
		}
	}
	s.EndOfTurn = slices.Concat(cfg.EOSTokenIDs, cfg.GenerationEOSTokenIDs)
	if s.EOS >= 0 {
		s.EndOfTurn = append(s.EndOfTurn, s.EOS)
	}
	for _, m := range EndOfTurnMarkers {
		if id, ok := t.addedByStr[m]; ok {
			s.EndOfTurn = append(s.EndOfTurn, id)
		}
	}
	slices.Sort(s.EndOfTurn)
	s.EndOfTurn = slices.Compact(s.EndOfTurn)
	switch {
	case s.EOS >= 0:
		return s, nil
	case cfg.EOSToken != "":
		return s, fmt.Errorf("no EOS token: tokenizer_config.json eos_token %q is not in tokenizer.json, and config.json has no eos_token_id", cfg.EOSToken)
	}
	return s, fmt.Errorf("no EOS token: neither tokenizer_config.json eos_token nor config.json eos_token_id is set")
}

// prefixIDs are the ids the post-processor puts before a sequence.
func (t *Tokenizer) prefixIDs() []int {
	if t.post == nil {
		return nil
	}
	const mark = -1
	out := t.post.process([]int{mark})
	if i := slices.Index(out, mark); i > 0 {
		return slices.Clone(out[:i])
	}
	return nil
}
