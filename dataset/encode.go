package dataset

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Tokenizer is what encoding needs from a tokenizer (tokenizer.Tokenizer satisfies it).
type Tokenizer interface {
	// Encode is HF's encode(text, add_special_tokens=False): special tokens written in
	// the text are matched, nothing is added.
	Encode(text string) []int
}

// ChatRenderer renders a conversation with the tokenizer's chat template.
type ChatRenderer interface {
	Render(messages []Message, addGenerationPrompt bool) (string, error)
}

// Template names how rows become text.
type Template string

const (
	TemplateAuto   Template = "auto"   // chat when the tokenizer has a chat template, else alpaca
	TemplateChat   Template = "chat"   // the tokenizer's own Jinja chat template
	TemplateAlpaca Template = "alpaca" // ### Instruction / ### Input / ### Response
	TemplatePlain  Template = "plain"  // prompt, a blank line, completion
)

// Templates lists the accepted template names.
var Templates = []Template{TemplateAuto, TemplateChat, TemplateAlpaca, TemplatePlain}

// EncodeOptions configures an Encoder.
type EncodeOptions struct {
	Template Template
	// Chat renders chat templates; nil when the tokenizer has none.
	Chat ChatRenderer
	// TrainOnPrompt also trains on prompt tokens (system/user turns, instructions).
	TrainOnPrompt bool
	// MaxSeqLen truncates longer examples (0 = no limit).
	MaxSeqLen int
	// BOS is prepended to non-chat examples (the ids the tokenizer's post-processor puts
	// first, e.g. <s> for Llama; empty for Qwen). Chat templates write their own.
	BOS []int
	// EOS is appended after every response (and after text rows).
	EOS int
	// EndOfTurn are the ids that already close a response (EOS, <|im_end|>, <|eot_id|>…):
	// a chat response that contains one gets no extra EOS.
	EndOfTurn []int
	// VocabSize, when > 0, is the model's vocabulary size (config.json vocab_size): an
	// example holding an id ≥ VocabSize (a pre-tokenised row made for another model, a
	// tokenizer larger than the model) is an error naming the id, not a failed step.
	VocabSize int
}

// Example is one encoded training sequence.
type Example struct {
	InputIDs []int32
	Labels   []int32 // aligned with InputIDs; IgnoreIndex where no loss
	Source   string
}

// Trainable counts the labels that contribute loss (position 0 never does: the model
// at position t predicts labels[t+1]).
func (e *Example) Trainable() int {
	n := 0
	for _, l := range e.Labels[min(1, len(e.Labels)):] {
		if l != IgnoreIndex {
			n++
		}
	}
	return n
}

// ErrNoTrainable is returned (wrapped) for an example in which no token carries loss.
var ErrNoTrainable = errors.New("no trainable tokens")

// Encoder turns rows into Examples.
type Encoder struct {
	tok  Tokenizer
	opts EncodeOptions
}

// NewEncoder checks the options and resolves TemplateAuto.
func NewEncoder(tok Tokenizer, opts EncodeOptions) (*Encoder, error) {
	switch opts.Template {
	case TemplateAuto, "":
		if opts.Chat != nil {
			opts.Template = TemplateChat
		} else {
			opts.Template = TemplateAlpaca
		}
	case TemplateChat:
		if opts.Chat == nil {
			return nil, &TemplateError{Template: string(opts.Template), Msg: "the tokenizer has no chat_template in tokenizer_config.json; use alpaca or plain"}
		}
	case TemplateAlpaca, TemplatePlain:
	default:
		return nil, &TemplateError{Template: string(opts.Template), Msg: "want one of auto, chat, alpaca, plain"}
	}
	if opts.MaxSeqLen < 0 {
		return nil, fmt.Errorf("max sequence length %d: want ≥ 0", opts.MaxSeqLen)
	}
	if !slices.Contains(opts.EndOfTurn, opts.EOS) {
		opts.EndOfTurn = append(slices.Clone(opts.EndOfTurn), opts.EOS)
	}
	return &Encoder{tok: tok, opts: opts}, nil
}

// Template reports the template in use (auto resolved).
func (e *Encoder) Template() Template { return e.opts.Template }

// segment is a run of text (or ids) that is either trained on or masked.
type segment struct {
	text  string
	ids   []int
	train bool
	// closeTurn appends EOS after the segment's ids unless they hold an end-of-turn id.
	closeTurn bool
}

// Encode turns a row into an example. truncated reports that MaxSeqLen cut it.
// An example left with no trainable token is an error.
func (e *Encoder) Encode(r Row) (ex Example, truncated bool, err error) {
	segs, err := e.segments(r)
	if err != nil {
		return ex, false, err
	}
	ex.Source = r.Source
	if r.Kind == KindTokens {
		if err := e.checkRowIDs(r); err != nil {
			return ex, false, err
		}
		ex.InputIDs = toInt32(r.InputIDs)
		if r.Labels != nil {
			ex.Labels = toInt32(r.Labels)
		} else {
			ex.Labels = slices.Clone(ex.InputIDs)
		}
	} else {
		m := e.opts.MaxSeqLen
		for _, s := range segs {
			if m > 0 && len(ex.InputIDs) > m {
				break // the rest is cut anyway
			}
			ids := s.ids
			if s.text != "" {
				if m > 0 {
					// One token past the limit is enough to know the example is cut.
					ids = e.encodePrefix(s.text, m-len(ex.InputIDs)+1)
				} else {
					ids = e.tok.Encode(s.text)
				}
			}
			if s.closeTurn && !slices.ContainsFunc(ids, func(id int) bool { return slices.Contains(e.opts.EndOfTurn, id) }) {
				ids = append(slices.Clip(ids), e.opts.EOS)
			}
			if v := e.opts.VocabSize; v > 0 {
				for _, id := range ids {
					if id < 0 || id >= v {
						return ex, false, fmt.Errorf("token id %d is outside the vocabulary [0, %d) of the model (config.json vocab_size): the tokenizer does not match the model", id, v)
					}
				}
			}
			for _, id := range ids {
				ex.InputIDs = append(ex.InputIDs, int32(id))
				if s.train || e.opts.TrainOnPrompt {
					ex.Labels = append(ex.Labels, int32(id))
				} else {
					ex.Labels = append(ex.Labels, IgnoreIndex)
				}
			}
		}
	}
	if m := e.opts.MaxSeqLen; m > 0 && len(ex.InputIDs) > m {
		ex.InputIDs, ex.Labels = ex.InputIDs[:m], ex.Labels[:m]
		truncated = true
	}
	if ex.Trainable() == 0 {
		if truncated {
			return ex, truncated, fmt.Errorf("%w left after truncation to %d tokens", ErrNoTrainable, e.opts.MaxSeqLen)
		}
		return ex, truncated, ErrNoTrainable
	}
	return ex, truncated, nil
}

// checkRowIDs checks a pre-tokenised row's ids and labels against VocabSize.
func (e *Encoder) checkRowIDs(r Row) error {
	v := e.opts.VocabSize
	if v <= 0 {
		return nil
	}
	for i, id := range r.InputIDs {
		if id >= v {
			return fmt.Errorf(`"input_ids"[%d] = %d is outside the vocabulary [0, %d) of the model`, i, id, v)
		}
	}
	for i, l := range r.Labels {
		if l >= v {
			return fmt.Errorf(`"labels"[%d] = %d is outside the vocabulary [0, %d) of the model`, i, l, v)
		}
	}
	return nil
}

// encodePrefix returns the ids of text, or, when text is long, at least the first need
// of them, encoding only a prefix of the text: a row of megabytes costs about what
// MaxSeqLen can use, not its whole tokenisation. The prefix ends at a line break (else
// a rune boundary) and is taken long enough that its last tokens, which the cut may
// change, lie well past the ones kept.
func (e *Encoder) encodePrefix(text string, need int) []int {
	const margin = 64 // tokens past need before the cut
	cut := (need + margin) * 8
	for cut < len(text)/2 {
		c := cut
		for c > 0 && !utf8.RuneStart(text[c]) {
			c--
		}
		if nl := strings.LastIndexByte(text[max(0, c-1024):c], '\n'); nl >= 0 {
			c = max(0, c-1024) + nl + 1
		}
		ids := e.tok.Encode(text[:c])
		if len(ids) >= need+margin {
			return ids[:need]
		}
		cut *= 4
	}
	return e.tok.Encode(text)
}

func (e *Encoder) segments(r Row) ([]segment, error) {
	eos := segment{ids: []int{e.opts.EOS}, train: true}
	bos := segment{ids: e.opts.BOS}
	switch r.Kind {
	case KindTokens:
		return nil, nil
	case KindText:
		if r.Header != "" {
			return []segment{bos, {text: r.Header, train: true}, {text: r.Text, train: true}, eos}, nil
		}
		return []segment{bos, {text: r.Text, train: true}, eos}, nil
	}
	prompt, response := r.Prompt, r.Completion
	if r.Kind == KindInstruction {
		prompt, response = r.Instruction, r.Output
	}
	if e.opts.Template == TemplateChat {
		msgs := r.Messages
		if r.Kind != KindChat {
			user := prompt
			if r.Kind == KindInstruction && r.Input != "" {
				user = prompt + "\n\n" + r.Input
			}
			msgs = []Message{{Role: "user", Content: user}, {Role: "assistant", Content: response}}
		}
		return e.chatSegments(msgs)
	}
	if r.Kind == KindChat {
		return e.flattenChat(r.Messages), nil
	}
	var p string
	switch e.opts.Template {
	case TemplateAlpaca:
		p = "### Instruction:\n" + prompt + "\n\n"
		if r.Kind == KindInstruction && r.Input != "" {
			p += "### Input:\n" + r.Input + "\n\n"
		}
		p += "### Response:\n"
	default: // plain
		p = prompt
		if r.Kind == KindInstruction && r.Input != "" {
			p += "\n\n" + r.Input
		}
		p += "\n\n"
	}
	return []segment{bos, {text: p}, {text: response, train: true}, eos}, nil
}

// flattenChat renders a chat row without a chat template: alpaca/plain text per turn,
// training on assistant turns.
func (e *Encoder) flattenChat(msgs []Message) []segment {
	segs := []segment{{ids: e.opts.BOS}}
	for _, m := range msgs {
		if m.Role == "assistant" {
			if e.opts.Template == TemplateAlpaca {
				segs = append(segs, segment{text: "### Response:\n"})
			}
			segs = append(segs, segment{text: m.Content, train: true}, segment{ids: []int{e.opts.EOS}, train: true}, segment{text: "\n\n"})
			continue
		}
		text := m.Content + "\n\n"
		if e.opts.Template == TemplateAlpaca {
			text = "### Instruction:\n" + text
			if m.Role == "system" {
				text = m.Content + "\n\n"
			}
		}
		segs = append(segs, segment{text: text})
	}
	// The last turn's trailing blank line teaches nothing: drop it.
	if n := len(segs); n > 0 && segs[n-1].text == "\n\n" {
		segs = segs[:n-1]
	}
	return segs
}

// chatSegments renders the conversation with the chat template and marks assistant
// turns. It renders each prefix of the conversation: the text an assistant turn adds is
// render(msgs[:i+1]) minus render(msgs[:i], add_generation_prompt) — the header the
// template writes for the turn stays masked, the content and end-of-turn marker train.
// Templates that re-render earlier turns differently (Qwen3 drops old <think> blocks)
// fall back to locating each assistant content in the full rendering.
func (e *Encoder) chatSegments(msgs []Message) ([]segment, error) {
	segs, err := e.chatSegmentsByPrefix(msgs)
	if err == nil {
		return segs, nil
	}
	segs, err2 := e.chatSegmentsBySearch(msgs)
	if err2 != nil {
		return nil, fmt.Errorf("chat template: %v; %v", err, err2)
	}
	return segs, nil
}

func (e *Encoder) chatSegmentsByPrefix(msgs []Message) ([]segment, error) {
	full, err := e.opts.Chat.Render(msgs, false)
	if err != nil {
		return nil, err
	}
	var segs []segment
	done := 0 // bytes of full already assigned
	for i, m := range msgs {
		if m.Role != "assistant" {
			continue
		}
		before, err := e.opts.Chat.Render(msgs[:i], true)
		if err != nil {
			return nil, err
		}
		upto, err := e.opts.Chat.Render(msgs[:i+1], false)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(upto, before) || !strings.HasPrefix(full, upto) || len(before) < done {
			return nil, fmt.Errorf("turn %d does not render as a prefix of the conversation", i)
		}
		segs = append(segs, segment{text: full[done:len(before)]})
		segs = append(segs, e.response(full[len(before):len(upto)])...)
		done = len(upto)
	}
	if done < len(full) {
		segs = append(segs, segment{text: full[done:]})
	}
	return segs, nil
}

func (e *Encoder) chatSegmentsBySearch(msgs []Message) ([]segment, error) {
	full, err := e.opts.Chat.Render(msgs, false)
	if err != nil {
		return nil, err
	}
	var segs []segment
	done := 0
	for i, m := range msgs {
		if m.Role != "assistant" {
			continue
		}
		content := strings.TrimSpace(m.Content)
		at := strings.Index(full[done:], content)
		if at < 0 {
			return nil, fmt.Errorf("assistant turn %d's content is not in the rendered conversation", i)
		}
		start := done + at
		end := start + len(content)
		// Extend over the end-of-turn marker the template writes right after the content.
		next := len(full)
		if j := e.nextTurnStart(msgs, i, full, end); j >= 0 {
			next = j
		}
		segs = append(segs, segment{text: full[done:start]})
		segs = append(segs, e.response(full[start:next])...)
		done = next
	}
	if done < len(full) {
		segs = append(segs, segment{text: full[done:]})
	}
	return segs, nil
}

// nextTurnStart finds where the message after msgs[i] starts in full (its content's
// position minus its header), approximated as the end of the line after the
// end-of-turn marker; -1 when i is the last message.
func (e *Encoder) nextTurnStart(msgs []Message, i int, full string, from int) int {
	if i+1 >= len(msgs) {
		return -1
	}
	c := strings.TrimSpace(msgs[i+1].Content)
	if c == "" {
		return -1
	}
	at := strings.Index(full[from:], c)
	if at < 0 {
		return -1
	}
	// Keep the end-of-turn marker and newline with the response; the next header starts
	// at the last line break before the next content that follows a non-empty marker.
	seg := full[from : from+at]
	if nl := strings.IndexByte(seg, '\n'); nl >= 0 {
		return from + nl + 1
	}
	return from
}

// response is an assistant span, trained on, that gets an EOS when the template wrote
// no end-of-turn token into it (decided when it is tokenised).
func (e *Encoder) response(text string) []segment {
	return []segment{{text: text, train: true, closeTurn: true}}
}

func toInt32(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// TemplateError is an EncodeOptions.Template that cannot be used.
type TemplateError struct {
	Template string
	Msg      string
}

func (e *TemplateError) Error() string { return fmt.Sprintf("template %q: %s", e.Template, e.Msg) }
