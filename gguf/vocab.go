package gguf

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Tokenizer metadata keys, as llama.cpp's vocabulary loader reads them.
const (
	KeyTokenizerModel = "tokenizer.ggml.model"
	KeyTokenizerPre   = "tokenizer.ggml.pre"
	KeyTokens         = "tokenizer.ggml.tokens"
	KeyTokenTypes     = "tokenizer.ggml.token_type"
	KeyScores         = "tokenizer.ggml.scores"
	KeyMerges         = "tokenizer.ggml.merges"
	KeyBOS            = "tokenizer.ggml.bos_token_id"
	KeyEOS            = "tokenizer.ggml.eos_token_id"
	KeyUNK            = "tokenizer.ggml.unknown_token_id"
	KeyPAD            = "tokenizer.ggml.padding_token_id"
	KeyAddBOS         = "tokenizer.ggml.add_bos_token"
	KeyAddEOS         = "tokenizer.ggml.add_eos_token"
	KeyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"
	KeyChatTemplate   = "tokenizer.chat_template"
)

// Token types of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	TokenNormal      int32 = 1
	TokenUnknown     int32 = 2
	TokenControl     int32 = 3
	TokenUserDefined int32 = 4
	TokenUnused      int32 = 5
	TokenByte        int32 = 6
)

// Pre-tokenizer names llama.cpp knows, for the split patterns bidora
// recognises in tokenizer.json.
const (
	PreLlama3 = "llama-bpe"
	PreQwen2  = "qwen2"
	PreGPT2   = "gpt-2"
	PreSPM    = "default"
)

// The split patterns of the byte-level BPE tokenizers that have a llama.cpp
// pre-tokenizer: Llama 3 groups up to three digits, Qwen2 splits every digit.
const (
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patternQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// Vocab is a tokenizer in the form llama.cpp's GGUF loader reads.
type Vocab struct {
	// Model is "gpt2" (byte-level BPE) or "llama" (SentencePiece-style BPE
	// with ▁ for spaces and byte fallback).
	Model string
	// Pre names the pre-tokenizer (llama-bpe, qwen2, gpt-2; default for llama).
	Pre    string
	Tokens []string
	Types  []int32
	// Scores (llama only) rank merges: llama.cpp merges the adjacent pair
	// whose concatenation has the highest score, so a token scores minus the
	// rank of the first merge that forms it.
	Scores []float32
	// Merges (gpt2 only) are "left right" in rank order.
	Merges []string
	// Special token ids, -1 when absent.
	BOS, EOS, UNK, PAD int
	AddBOS, AddEOS     bool
	// AddSpacePrefix (llama only): a ▁ is put before the text.
	AddSpacePrefix bool
	ChatTemplate   string
}

type tokenizerFile struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type         string          `json:"type"`
		Vocab        map[string]int  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
		UnkToken     *string         `json:"unk_token"`
	} `json:"model"`
}

// component is a normalizer, pre-tokenizer or post-processor of tokenizer.json.
type component struct {
	Type           string          `json:"type"`
	Pattern        map[string]any  `json:"pattern"`
	Content        string          `json:"content"`
	Prepend        string          `json:"prepend"`
	UseRegex       *bool           `json:"use_regex"`
	AddPrefixSpace *bool           `json:"add_prefix_space"`
	PrependScheme  string          `json:"prepend_scheme"`
	Split          *bool           `json:"split"`
	Normalizers    []component     `json:"normalizers"`
	Pretokenizers  []component     `json:"pretokenizers"`
	Processors     []component     `json:"processors"`
	Single         json.RawMessage `json:"single"`
}

// flatten lists a component and, for a Sequence, its members in order.
func (c *component) flatten() []component {
	if c == nil {
		return nil
	}
	if c.Type != "Sequence" {
		return []component{*c}
	}
	var out []component
	for _, l := range [][]component{c.Normalizers, c.Pretokenizers, c.Processors} {
		for i := range l {
			out = append(out, l[i].flatten()...)
		}
	}
	return out
}

func parseComponent(raw json.RawMessage) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// ReadVocab converts the tokenizer of the model directory dir
// (tokenizer.json, tokenizer_config.json and chat_template.jinja when
// present) for a model with vocabSize embedding rows, as llama.cpp's
// converter does: ids without a token become "[PAD{id}]" of type unused.
// bosID and eosIDs are config.json's, used when tokenizer_config.json names
// no BOS or EOS token.
func ReadVocab(dir string, vocabSize int, bosID *int, eosIDs []int) (*Vocab, error) {
	path := filepath.Join(dir, "tokenizer.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: reading the tokenizer: %w", err)
	}
	var tf tokenizerFile
	if err := json.Unmarshal(data, &tf); err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	v, err := convertVocab(&tf, vocabSize)
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	if err := v.readConfig(dir, &tf, bosID, eosIDs); err != nil {
		return nil, err
	}
	return v, nil
}

func convertVocab(tf *tokenizerFile, vocabSize int) (*Vocab, error) {
	if tf.Model.Type != "BPE" {
		return nil, fmt.Errorf("model type %q is not supported; want BPE (byte-level or with byte fallback)", tf.Model.Type)
	}
	v := &Vocab{BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	norm, err := parseComponent(tf.Normalizer)
	if err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	pre, err := parseComponent(tf.PreTokenizer)
	if err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	pres := pre.flatten()
	byteLevel := slices.ContainsFunc(pres, func(c component) bool { return c.Type == "ByteLevel" })
	switch {
	case byteLevel:
		v.Model = "gpt2"
		if v.Pre, err = bytePre(pres); err != nil {
			return nil, err
		}
	case tf.Model.ByteFallback:
		v.Model, v.Pre = "llama", PreSPM
		if v.AddSpacePrefix, err = spacePrefix(norm.flatten(), pres); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("the BPE model is neither byte-level nor SentencePiece-style (byte_fallback with ▁ for spaces); llama.cpp has no tokenizer for it")
	}

	maxID := -1
	for _, id := range tf.Model.Vocab {
		maxID = max(maxID, id)
	}
	for _, a := range tf.AddedTokens {
		maxID = max(maxID, a.ID)
	}
	if maxID >= vocabSize {
		return nil, fmt.Errorf("token id %d is past the model's vocab_size %d", maxID, vocabSize)
	}
	v.Tokens = make([]string, vocabSize)
	v.Types = make([]int32, vocabSize)
	have := make([]bool, vocabSize)
	for tok, id := range tf.Model.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("token %q has a negative id %d", tok, id)
		}
		if have[id] {
			return nil, fmt.Errorf("id %d is given to %q and %q", id, v.Tokens[id], tok)
		}
		have[id] = true
		v.Tokens[id], v.Types[id] = tok, TokenNormal
		if v.Model == "llama" && isByteToken(tok) {
			v.Types[id] = TokenByte
		}
	}
	for _, a := range tf.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("added token %q has a negative id %d", a.Content, a.ID)
		}
		if have[a.ID] && v.Tokens[a.ID] != a.Content {
			return nil, fmt.Errorf("added token %q has id %d, which the vocabulary gives to %q", a.Content, a.ID, v.Tokens[a.ID])
		}
		have[a.ID] = true
		v.Tokens[a.ID] = a.Content
		v.Types[a.ID] = TokenUserDefined
		if a.Special || looksSpecial(a.Content) {
			v.Types[a.ID] = TokenControl
		}
	}
	for id := range v.Tokens {
		if !have[id] {
			v.Tokens[id], v.Types[id] = fmt.Sprintf("[PAD%d]", id), TokenUnused
		}
	}
	if u := tf.Model.UnkToken; u != nil {
		if id, ok := tf.Model.Vocab[*u]; ok {
			v.UNK = id
			v.Types[id] = TokenUnknown
		}
	}

	merges, err := parseMerges(tf.Model.Merges)
	if err != nil {
		return nil, fmt.Errorf("model.merges: %w", err)
	}
	if v.Model == "gpt2" {
		v.Merges = make([]string, len(merges))
		for i, m := range merges {
			if strings.Contains(m[0], " ") || strings.Contains(m[1], " ") {
				return nil, fmt.Errorf("merge %d (%q, %q) has a space, which GGUF's \"left right\" merges cannot hold", i, m[0], m[1])
			}
			v.Merges[i] = m[0] + " " + m[1]
		}
		return v, nil
	}
	// Scores: a token formed by merge r scores −r (the first such merge);
	// tokens no merge forms score below every merge.
	v.Scores = make([]float32, vocabSize)
	formed := make([]bool, vocabSize)
	for r, m := range merges {
		id, ok := tf.Model.Vocab[m[0]+m[1]]
		if !ok || formed[id] {
			continue
		}
		formed[id] = true
		v.Scores[id] = -float32(r)
	}
	for id := range v.Scores {
		if !formed[id] {
			v.Scores[id] = -float32(len(merges) + 1)
		}
	}
	return v, nil
}

// bytePre names llama.cpp's pre-tokenizer for a byte-level tokenizer's
// pre_tokenizer steps.
func bytePre(pres []component) (string, error) {
	var pattern string
	for _, c := range pres {
		switch c.Type {
		case "Split":
			if pattern != "" {
				return "", errors.New("pre_tokenizer has more than one Split; llama.cpp has no pre-tokenizer for it")
			}
			re, _ := c.Pattern["Regex"].(string)
			if re == "" {
				return "", errors.New("pre_tokenizer Split has no Regex pattern")
			}
			pattern = re
		case "ByteLevel":
			if c.UseRegex == nil || *c.UseRegex {
				if pattern != "" {
					return "", errors.New("pre_tokenizer splits twice (a Split and a ByteLevel with use_regex)")
				}
				pattern = "gpt2"
			}
		default:
			return "", fmt.Errorf("pre_tokenizer step %q is not supported for GGUF export", c.Type)
		}
	}
	switch pattern {
	case patternLlama3:
		return PreLlama3, nil
	case patternQwen2:
		return PreQwen2, nil
	case "gpt2":
		return PreGPT2, nil
	}
	return "", fmt.Errorf("pre_tokenizer split pattern %q has no llama.cpp pre-tokenizer that bidora knows (Llama 3, Qwen2, GPT-2)", pattern)
}

// spacePrefix checks that a SentencePiece-style tokenizer maps spaces to ▁
// as llama.cpp's does, and reports whether a ▁ is put before the text.
func spacePrefix(norms, pres []component) (bool, error) {
	prefix, replace := false, false
	for _, c := range norms {
		switch {
		case c.Type == "Prepend" && c.Prepend == "▁":
			prefix = true
		case c.Type == "Replace" && c.Pattern["String"] == " " && c.Content == "▁":
			replace = true
		case c.Type == "NFKC" || c.Type == "NFC":
			// llama.cpp's SentencePiece tokenizer does not normalise;
			// the tokenizers of Llama 2 and Mistral carry none.
			return false, fmt.Errorf("normalizer %s is not supported for a SentencePiece-style GGUF vocabulary", c.Type)
		default:
			return false, fmt.Errorf("normalizer step %q is not supported for a SentencePiece-style GGUF vocabulary", c.Type)
		}
	}
	for _, c := range pres {
		if c.Type != "Metaspace" || (c.Split != nil && *c.Split) {
			return false, fmt.Errorf("pre_tokenizer step %q is not supported for a SentencePiece-style GGUF vocabulary", c.Type)
		}
		replace = true
		prefix = c.PrependScheme == "first" || c.PrependScheme == "always" ||
			(c.PrependScheme == "" && (c.AddPrefixSpace == nil || *c.AddPrefixSpace))
	}
	if !replace {
		return false, errors.New("a byte-fallback BPE tokenizer that does not map spaces to ▁ has no llama.cpp tokenizer")
	}
	return prefix, nil
}

// isByteToken reports whether tok is a byte-fallback token such as <0x0A>.
func isByteToken(tok string) bool {
	if len(tok) != 6 || !strings.HasPrefix(tok, "<0x") || tok[5] != '>' {
		return false
	}
	for _, c := range tok[3:5] {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// looksSpecial reports whether an added token not marked special is a
// control token by its look (<|…|>, as llama.cpp's converter treats them).
func looksSpecial(s string) bool {
	return len(s) > 4 && strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>")
}

// parseMerges reads model.merges written as "left right" strings or as
// [left, right] pairs.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, len(strs))
		for i, s := range strs {
			l, r, ok := strings.Cut(s, " ")
			if !ok || l == "" || r == "" {
				return nil, fmt.Errorf("merge %d %q is not \"left right\"", i, s)
			}
			out[i] = [2]string{l, r}
		}
		return out, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, errors.New("want a list of \"left right\" strings or [left, right] pairs")
	}
	return pairs, nil
}

// readConfig fills the special tokens, the add-BOS/EOS flags and the chat
// template from tokenizer_config.json (and chat_template.jinja), falling
// back to the post-processor and config.json's ids.
func (v *Vocab) readConfig(dir string, tf *tokenizerFile, bosID *int, eosIDs []int) error {
	path := filepath.Join(dir, "tokenizer_config.json")
	var cfg map[string]json.RawMessage
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("gguf: %w", err)
	default:
		if err := json.Unmarshal(data, &cfg); err != nil {
			return fmt.Errorf("gguf: %s: %w", path, err)
		}
	}
	lookup := func(key string) int {
		raw, ok := cfg[key]
		if !ok {
			return -1
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var obj struct {
				Content string `json:"content"`
			}
			if json.Unmarshal(raw, &obj) != nil {
				return -1
			}
			s = obj.Content
		}
		if s == "" {
			return -1
		}
		return slices.Index(v.Tokens, s)
	}
	flag := func(key string) (bool, bool) {
		var b bool
		raw, ok := cfg[key]
		if !ok || json.Unmarshal(raw, &b) != nil {
			return false, false
		}
		return b, true
	}
	v.BOS, v.EOS, v.PAD = lookup("bos_token"), lookup("eos_token"), lookup("pad_token")
	if id := lookup("unk_token"); id >= 0 {
		v.UNK = id
	}
	if v.BOS < 0 && bosID != nil && *bosID >= 0 && *bosID < len(v.Tokens) {
		v.BOS = *bosID
	}
	if v.EOS < 0 && len(eosIDs) > 0 && eosIDs[0] >= 0 && eosIDs[0] < len(v.Tokens) {
		v.EOS = eosIDs[0]
	}
	prefix, err := postPrefix(tf)
	if err != nil {
		return fmt.Errorf("gguf: %s: post_processor: %w", filepath.Join(dir, "tokenizer.json"), err)
	}
	if b, ok := flag("add_bos_token"); ok {
		v.AddBOS = b
	} else {
		v.AddBOS = prefix >= 0
	}
	if v.AddBOS && prefix >= 0 {
		v.BOS = prefix
	}
	v.AddEOS, _ = flag("add_eos_token")

	if src, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		v.ChatTemplate = string(src)
	} else if raw, ok := cfg["chat_template"]; ok {
		if json.Unmarshal(raw, &v.ChatTemplate) != nil {
			var list []struct{ Name, Template string }
			if err := json.Unmarshal(raw, &list); err != nil {
				return fmt.Errorf("gguf: %s: chat_template: want a string or a list of {name, template}", path)
			}
			for _, nt := range list {
				if nt.Name == "default" {
					v.ChatTemplate = nt.Template
				}
			}
		}
	}
	return nil
}

// postPrefix is the id of the special token the post-processor puts before
// a single text (a TemplateProcessing that starts with one), or -1.
func postPrefix(tf *tokenizerFile) (int, error) {
	post, err := parseComponent(tf.PostProcessor)
	if err != nil {
		return -1, err
	}
	for _, c := range post.flatten() {
		if c.Type != "TemplateProcessing" {
			continue
		}
		var single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			}
		}
		if err := json.Unmarshal(c.Single, &single); err != nil {
			return -1, err
		}
		if len(single) == 0 || single[0].SpecialToken == nil {
			return -1, nil
		}
		tok := single[0].SpecialToken.ID
		for _, a := range tf.AddedTokens {
			if a.Content == tok {
				return a.ID, nil
			}
		}
		if id, ok := tf.Model.Vocab[tok]; ok {
			return id, nil
		}
		return -1, fmt.Errorf("TemplateProcessing puts %q first, which is not a token", tok)
	}
	return -1, nil
}

// KVs is the vocabulary's metadata.
func (v *Vocab) KVs() []KV {
	kvs := []KV{
		{KeyTokenizerModel, v.Model},
		{KeyTokenizerPre, v.Pre},
		{KeyTokens, v.Tokens},
		{KeyTokenTypes, v.Types},
	}
	if v.Scores != nil {
		kvs = append(kvs, KV{KeyScores, v.Scores})
	}
	if v.Merges != nil {
		kvs = append(kvs, KV{KeyMerges, v.Merges})
	}
	for _, id := range []struct {
		key string
		id  int
	}{{KeyBOS, v.BOS}, {KeyEOS, v.EOS}, {KeyUNK, v.UNK}, {KeyPAD, v.PAD}} {
		if id.id >= 0 {
			kvs = append(kvs, KV{id.key, uint32(id.id)})
		}
	}
	kvs = append(kvs, KV{KeyAddBOS, v.AddBOS}, KV{KeyAddEOS, v.AddEOS})
	if v.Model == "llama" {
		kvs = append(kvs, KV{KeyAddSpacePrefix, v.AddSpacePrefix})
	}
	if v.ChatTemplate != "" {
		kvs = append(kvs, KV{KeyChatTemplate, v.ChatTemplate})
	}
	return kvs
}
