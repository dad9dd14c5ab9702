package tinymodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// tokenizer is the set of tokenizer files to write and what the model config
// needs from them.
type tokenizer struct {
	files    map[string][]byte
	size     int // highest token id + 1
	bos, eos int // -1 when absent
}

// Special tokens of the built-in tokenizer, in id order after the merges.
var builtinSpecials = []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}

// builtinMerges are the BPE merges of the built-in tokenizer, in rank order,
// written in GPT-2's byte-to-unicode alphabet (Ġ is a space, Ċ a newline).
var builtinMerges = [][2]string{
	{"Ġ", "t"}, {"h", "e"}, {"Ġ", "a"}, {"i", "n"}, {"Ġt", "he"}, {"e", "r"}, {"o", "n"},
	{"r", "e"}, {"Ġ", "s"}, {"a", "t"}, {"e", "n"}, {"o", "r"}, {"Ġ", "c"}, {"Ġ", "w"},
	{"i", "s"}, {"Ġ", "f"}, {"Ġ", "i"}, {"Ġ", "o"}, {"Ġ", "b"}, {"e", "s"}, {"Ġ", "p"},
	{"a", "n"}, {"Ġ", "m"}, {"i", "t"}, {"Ġ", "d"}, {"l", "e"}, {"Ġ", "="}, {"Ġ", "Ġ"},
	{"ĠĠ", "ĠĠ"}, {"(", ")"}, {"Ġ", "{"}, {"Ċ", "Ċ"}, {"d", "e"}, {"de", "f"}, {"Ġ", "def"},
	{"re", "t"}, {"u", "r"}, {"ret", "ur"}, {"retur", "n"}, {"Ġ", "return"}, {"Ġi", "n"},
	{"Ġo", "f"}, {"Ġa", "n"}, {"Ġan", "d"}, {"Ġi", "s"}, {"Ġt", "o"}, {"in", "g"},
}

// ChatMLTemplate is the chat template of the built-in tokenizer.
const ChatMLTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// byteToUnicode is GPT-2's reversible map from bytes to printable runes, in
// the order GPT-2 numbers them (printable Latin-1 first, then the rest).
func byteToUnicode() (order []byte, runes map[byte]rune) {
	runes = map[byte]rune{}
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			order = append(order, byte(b))
			runes[byte(b)] = rune(b)
		}
	}
	n := 0
	for b := 0; b < 256; b++ {
		if _, ok := runes[byte(b)]; !ok {
			order = append(order, byte(b))
			runes[byte(b)] = rune(256 + n)
			n++
		}
	}
	return order, runes
}

// vocabEntry is one token of an id-ordered vocab object.
type vocabEntry struct {
	tok string
	id  int
}

type orderedVocab []vocabEntry

func (v orderedVocab) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(e.tok)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.id))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type byteLevel struct {
	Type           string `json:"type"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
	TrimOffsets    bool   `json:"trim_offsets"`
	UseRegex       bool   `json:"use_regex"`
}

// BuiltinTokenizer returns the tokenizer.json and tokenizer_config.json of the
// built-in tokenizer: GPT-2-style byte-level BPE with the 256 byte tokens, a
// few dozen merges for English and code, and the ChatML special tokens
// <|endoftext|>, <|im_start|> and <|im_end|>, with a ChatML chat template.
// It loads in the HuggingFace tokenizers library.
func BuiltinTokenizer() (tokenizerJSON, tokenizerConfigJSON []byte) {
	order, runes := byteToUnicode()
	var vocab orderedVocab
	for id, b := range order {
		vocab = append(vocab, vocabEntry{string(runes[b]), id})
	}
	merges := make([][2]string, len(builtinMerges))
	for i, m := range builtinMerges {
		merges[i] = m
		vocab = append(vocab, vocabEntry{m[0] + m[1], len(vocab)})
	}
	var added []addedToken
	decoder := map[string]any{}
	for _, s := range builtinSpecials {
		t := addedToken{ID: len(vocab) + len(added), Content: s, Special: true}
		added = append(added, t)
		decoder[strconv.Itoa(t.ID)] = map[string]any{
			"content": s, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true,
		}
	}
	tj := struct {
		Version       string       `json:"version"`
		Truncation    any          `json:"truncation"`
		Padding       any          `json:"padding"`
		AddedTokens   []addedToken `json:"added_tokens"`
		Normalizer    any          `json:"normalizer"`
		PreTokenizer  byteLevel    `json:"pre_tokenizer"`
		PostProcessor byteLevel    `json:"post_processor"`
		Decoder       byteLevel    `json:"decoder"`
		Model         struct {
			Type                    string       `json:"type"`
			Dropout                 any          `json:"dropout"`
			UnkToken                any          `json:"unk_token"`
			ContinuingSubwordPrefix any          `json:"continuing_subword_prefix"`
			EndOfWordSuffix         any          `json:"end_of_word_suffix"`
			FuseUnk                 bool         `json:"fuse_unk"`
			ByteFallback            bool         `json:"byte_fallback"`
			IgnoreMerges            bool         `json:"ignore_merges"`
			Vocab                   orderedVocab `json:"vocab"`
			Merges                  [][2]string  `json:"merges"`
		} `json:"model"`
	}{
		Version:       "1.0",
		AddedTokens:   added,
		PreTokenizer:  byteLevel{"ByteLevel", false, true, true},
		PostProcessor: byteLevel{"ByteLevel", false, false, true},
		Decoder:       byteLevel{"ByteLevel", false, true, true},
	}
	tj.Model.Type = "BPE"
	tj.Model.Vocab = vocab
	tj.Model.Merges = merges
	tokJSON, err := json.MarshalIndent(tj, "", "  ")
	if err != nil {
		panic(err) // static data: cannot fail
	}
	cfg := map[string]any{
		"add_bos_token":                false,
		"add_eos_token":                false,
		"add_prefix_space":             false,
		"added_tokens_decoder":         decoder,
		"additional_special_tokens":    []string{"<|im_start|>", "<|im_end|>"},
		"bos_token":                    nil,
		"chat_template":                ChatMLTemplate,
		"clean_up_tokenization_spaces": false,
		"eos_token":                    "<|im_end|>",
		"errors":                       "replace",
		"model_max_length":             2048,
		"pad_token":                    "<|endoftext|>",
		"split_special_tokens":         false,
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"unk_token":                    nil,
	}
	var cb bytes.Buffer
	enc := json.NewEncoder(&cb)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		panic(err) // static data: cannot fail
	}
	return append(tokJSON, '\n'), cb.Bytes()
}

// tokenizerFiles gets the built-in tokenizer or a copy of dir's.
func tokenizerFiles(dir string) (*tokenizer, error) {
	t := &tokenizer{files: map[string][]byte{}}
	if dir == "" {
		tj, tc := BuiltinTokenizer()
		t.files["tokenizer.json"], t.files["tokenizer_config.json"] = tj, tc
	} else {
		for _, name := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				if name == "special_tokens_map.json" && errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, fmt.Errorf("tinymodel: copying tokenizer: %w", err)
			}
			t.files[name] = data
		}
	}
	if err := t.inspect(); err != nil {
		return nil, fmt.Errorf("tinymodel: tokenizer from %q: %w", dir, err)
	}
	return t, nil
}

// inspect finds the vocabulary size and the bos/eos ids.
func (t *tokenizer) inspect() error {
	var tj struct {
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
		Model struct {
			Vocab json.RawMessage `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(t.files["tokenizer.json"], &tj); err != nil {
		return fmt.Errorf("tokenizer.json: %w", err)
	}
	ids := map[string]int{}
	var vocab map[string]int
	if err := json.Unmarshal(tj.Model.Vocab, &vocab); err == nil {
		for tok, id := range vocab {
			ids[tok] = id
			t.size = max(t.size, id+1)
		}
	} else {
		// Unigram: a list of [piece, score], ids by position.
		var list [][]any
		if err := json.Unmarshal(tj.Model.Vocab, &list); err != nil {
			return fmt.Errorf("tokenizer.json: model.vocab is neither an object nor a list")
		}
		for id, e := range list {
			if len(e) > 0 {
				if s, ok := e[0].(string); ok {
					ids[s] = id
				}
			}
		}
		t.size = len(list)
	}
	for _, a := range tj.AddedTokens {
		ids[a.Content] = a.ID
		t.size = max(t.size, a.ID+1)
	}
	if t.size == 0 {
		return errors.New("tokenizer.json has an empty vocabulary")
	}
	var tc map[string]json.RawMessage
	if err := json.Unmarshal(t.files["tokenizer_config.json"], &tc); err != nil {
		return fmt.Errorf("tokenizer_config.json: %w", err)
	}
	t.bos, t.eos = tokenID(tc["bos_token"], ids), tokenID(tc["eos_token"], ids)
	if t.bos < 0 {
		// Like Qwen2, whose config.json names <|endoftext|> as bos although
		// its tokenizer adds none.
		if id, ok := ids["<|endoftext|>"]; ok {
			t.bos = id
		}
	}
	return nil
}

// tokenID resolves a tokenizer_config token entry (a string, an object with
// "content", or null) to its id, or -1.
func tokenID(raw json.RawMessage, ids map[string]int) int {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var obj struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return -1
		}
		s = obj.Content
	}
	if id, ok := ids[s]; ok && s != "" {
		return id
	}
	return -1
}
