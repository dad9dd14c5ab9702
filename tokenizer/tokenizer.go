// Package tokenizer is a pure-Go implementation of HuggingFace tokenizer.json files for
// BPE models: byte-level BPE with the GPT-2, Llama-3 and Qwen2 pre-tokenizer regexes
// (matched by hand-written scanners, with regexp2 as the fallback for other patterns),
// byte-fallback BPE with the SentencePiece-style Prepend/Replace normalizers or the
// Metaspace pre-tokenizer (Llama-2, Mistral), Unicode normalizers, added and special
// tokens matched in the text, ignore_merges, post-processors and decoders.
//
// Encode gives the ids of HF tokenizers' encode(text, add_special_tokens=False);
// EncodeWithSpecial also applies the post-processor (BOS and the like). A Tokenizer is
// safe for concurrent use.
package tokenizer

import (
	"encoding/json"
	"fmt"
	"github.com/bidora/bidora/internal/metafile"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Tokenizer encodes text to token ids and decodes ids back to text.
type Tokenizer struct {
	normalizer normalizer
	pre        preTokenizer
	model      *bpeModel
	post       postProcessor
	decoder    decoder

	added      []*AddedToken
	addedByID  map[int]*AddedToken
	addedByStr map[string]int
	rawAdded   *addedMatcher // tokens with normalized=false, matched in the input
	normAdded  *addedMatcher // tokens with normalized=true, matched after normalization

	pool sync.Pool // *encState
}

// encState holds the reusable buffers of one Encode call.
type encState struct {
	splits, subSplits []addedSplit
	pieces            []piece
	scratch           scratch
	word              wordState
}

type fileJSON struct {
	AddedTokens   []*AddedToken   `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         *modelJSON      `json:"model"`
}

// MaxTokenizerBytes bounds tokenizer.json (the largest real ones, with 256k-token
// vocabularies, are under 40 MB).
var MaxTokenizerBytes int64 = 256 << 20

// Load reads a tokenizer from a tokenizer.json file or from a directory holding one.
func Load(pathOrDir string) (*Tokenizer, error) {
	path := pathOrDir
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "tokenizer.json")
	}
	data, err := metafile.Read(path, MaxTokenizerBytes)
	if err != nil {
		return nil, fmt.Errorf("reading tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse builds a tokenizer from the contents of a tokenizer.json file.
func Parse(data []byte) (*Tokenizer, error) {
	var fj fileJSON
	if err := json.Unmarshal(data, &fj); err != nil {
		return nil, fmt.Errorf("parsing tokenizer.json: %w", err)
	}
	if fj.Model == nil {
		return nil, fmt.Errorf("tokenizer.json has no \"model\"")
	}
	t := &Tokenizer{addedByID: map[int]*AddedToken{}, addedByStr: map[string]int{}}
	var err error
	if t.normalizer, err = parseNormalizer(fj.Normalizer); err != nil {
		return nil, err
	}
	byteLevel := false
	if t.pre, err = parsePreTokenizer(fj.PreTokenizer, &byteLevel); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	if t.model, err = newBPE(fj.Model, byteLevel); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if t.post, err = parsePostProcessor(fj.PostProcessor); err != nil {
		return nil, err
	}
	if t.decoder, err = parseDecoder(fj.Decoder); err != nil {
		return nil, err
	}
	var rawToks, normToks []*AddedToken
	var rawPats, normPats []string
	for k, at := range fj.AddedTokens {
		if at == nil || at.Content == "" {
			return nil, fmt.Errorf("added_tokens[%d]: empty content", k)
		}
		if at.ID < 0 || at.ID > math.MaxInt32 {
			return nil, fmt.Errorf("added_tokens[%d] %q: id %d is negative or too large", k, at.Content, at.ID)
		}
		t.added = append(t.added, at)
		t.addedByID[at.ID] = at
		t.addedByStr[at.Content] = at.ID
		if at.Normalized {
			pat := at.Content
			if t.normalizer != nil {
				pat = t.normalizer.normalize(pat)
			}
			normToks, normPats = append(normToks, at), append(normPats, pat)
		} else {
			rawToks, rawPats = append(rawToks, at), append(rawPats, at.Content)
		}
	}
	t.rawAdded = newAddedMatcher(rawToks, rawPats)
	t.normAdded = newAddedMatcher(normToks, normPats)
	if t.post != nil {
		// The post-processor only adds ids; each must name a token, or
		// EncodeWithSpecial would hand out ids no embedding row has.
		for _, id := range t.post.process(nil) {
			if _, ok := t.IDToToken(id); !ok {
				return nil, fmt.Errorf("post_processor: id %d is neither in the vocab nor an added token", id)
			}
		}
	}
	t.pool.New = func() any { return &encState{} }
	return t, nil
}

// Encode returns the token ids of text without the post-processor's special tokens, like
// HF's encode(text, add_special_tokens=False). Added and special tokens written in the
// text are recognised. HF only accepts valid UTF-8; invalid bytes here are encoded as
// bytes (byte-level models) or through byte fallback, and never cause a panic.
func (t *Tokenizer) Encode(text string) []int {
	st := t.pool.Get().(*encState)
	defer t.pool.Put(st)
	ids := make([]int, 0, len(text)/3+1)
	st.splits = t.rawAdded.split(text, st.splits[:0])
	for _, sp := range st.splits {
		if sp.id >= 0 {
			ids = append(ids, sp.id)
			continue
		}
		seg := text[sp.start:sp.end]
		if seg == "" {
			continue
		}
		if t.normalizer != nil {
			seg = t.normalizer.normalize(seg)
		}
		if t.normAdded.empty() {
			ids = t.encodeSegment(seg, sp.start == 0, ids, st)
			continue
		}
		st.subSplits = t.normAdded.split(seg, st.subSplits[:0])
		for _, sub := range st.subSplits {
			if sub.id >= 0 {
				ids = append(ids, sub.id)
			} else {
				ids = t.encodeSegment(seg[sub.start:sub.end], sp.start == 0 && sub.start == 0, ids, st)
			}
		}
	}
	return ids
}

// encodeSegment pre-tokenizes normalized text and runs the model on every piece.
func (t *Tokenizer) encodeSegment(s string, first bool, ids []int, st *encState) []int {
	if s == "" {
		return ids
	}
	if t.pre == nil {
		return t.model.encode(s, ids, &st.word)
	}
	st.pieces = t.pre.apply(piece{s: s, first: first}, st.pieces[:0], &st.scratch)
	for _, p := range st.pieces {
		ids = t.model.encode(p.s, ids, &st.word)
	}
	return ids
}

// EncodeWithSpecial is Encode followed by the post-processor (for example a BOS token),
// like HF's encode(text, add_special_tokens=True).
func (t *Tokenizer) EncodeWithSpecial(text string) []int {
	ids := t.Encode(text)
	if t.post == nil {
		return ids
	}
	return t.post.process(ids)
}

// Decode turns ids back into text. Unknown ids are skipped; with skipSpecial, special
// added tokens are left out.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if at, ok := t.addedByID[id]; ok {
			if !(skipSpecial && at.Special) {
				tokens = append(tokens, at.Content)
			}
			continue
		}
		if s, ok := t.model.tokenString(id); ok {
			tokens = append(tokens, s)
		}
	}
	if t.decoder == nil {
		return strings.Join(tokens, " ")
	}
	return strings.Join(t.decoder.decodeChain(tokens), "")
}

// TokenToID returns the id of a vocabulary or added token.
func (t *Tokenizer) TokenToID(token string) (int, bool) {
	if id, ok := t.addedByStr[token]; ok {
		return id, true
	}
	id, ok := t.model.vocab[token]
	return int(id), ok
}

// IDToToken returns the token string of id as written in tokenizer.json.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if at, ok := t.addedByID[id]; ok {
		return at.Content, true
	}
	return t.model.tokenString(id)
}

// VocabSize is the number of ids: the model's vocabulary plus added tokens beyond it.
func (t *Tokenizer) VocabSize() int {
	n := len(t.model.idToToken)
	for id := range t.addedByID {
		n = max(n, id+1)
	}
	return n
}

// AddedTokens returns the added tokens in file order (the caller must not modify them).
func (t *Tokenizer) AddedTokens() []*AddedToken { return t.added }
