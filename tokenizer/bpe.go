package tokenizer

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"unicode/utf8"
)

// merge is the rank of a merge rule and the id of the token it produces.
type merge struct{ rank, id int32 }

// bpeModel is HF's BPE model. In byte-level mode (a ByteLevel pre-tokenizer is present)
// the vocabulary is re-keyed by raw bytes, so text is never mapped to the byte-level
// alphabet: a piece's bytes are looked up directly.
type bpeModel struct {
	vocab     map[string]int32 // token as written in tokenizer.json -> id
	idToToken []string         // id -> token as written ("" for holes)
	byteLevel bool
	rawVocab  map[string]int32 // byte-level: raw bytes -> id
	byteIDs   [256]int32       // byte-level: single byte -> id, -1 if absent

	merges *mergeTable // left<<32 | right -> merge

	unkID        int32 // -1: none
	fuseUnk      bool
	byteFallback bool
	fallbackIDs  [256]int32 // <0xXX> tokens, -1 if absent
	hasFallback  bool       // all 256 <0xXX> tokens exist
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix

	// Char mode: ASCII characters whose single id is in no merge (see encodeSplitAtBarriers).
	hasBarriers bool
	barrier     [utf8.RuneSelf]bool
	barrierID   [utf8.RuneSelf]int32

	cache wordCache
}

// wordCache maps words to their ids; it is sharded so that goroutines encoding with one
// Tokenizer rarely wait on each other, and each shard is reset when it fills up.
type wordCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.Mutex
	m  map[string][]int32
}

const cacheShards = 16

func (c *wordCache) shard(w string) *cacheShard {
	return &c.shards[maphash.String(c.seed, w)%cacheShards]
}

func (c *wordCache) get(w string) ([]int32, bool) {
	sh := c.shard(w)
	sh.mu.Lock()
	ids, ok := sh.m[w]
	sh.mu.Unlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int32) {
	sh := c.shard(w)
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= cacheCapacity/cacheShards {
		sh.m = make(map[string][]int32)
	}
	sh.m[w] = ids
	sh.mu.Unlock()
}

const (
	cacheCapacity = 1 << 15 // words kept before the cache is reset
	cacheMaxWord  = 256     // longer words are not cached
)

type modelJSON struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

func newBPE(mj *modelJSON, byteLevel bool) (*bpeModel, error) {
	if mj.Type != "BPE" && !(mj.Type == "" && mj.Merges != nil) {
		return nil, fmt.Errorf("unsupported model type %q (only BPE is supported)", mj.Type)
	}
	if mj.Dropout != nil && *mj.Dropout > 0 {
		return nil, fmt.Errorf("model dropout %v is not supported for encoding (want null or 0)", *mj.Dropout)
	}
	vocab, err := parseVocabJSON(mj.Vocab)
	if err != nil {
		return nil, err
	}
	m := &bpeModel{
		vocab:        vocab,
		byteLevel:    byteLevel,
		unkID:        -1,
		fuseUnk:      mj.FuseUnk,
		byteFallback: mj.ByteFallback,
		ignoreMerges: mj.IgnoreMerges,
		cache:        wordCache{seed: maphash.MakeSeed()},
	}
	if mj.ContinuingSubwordPrefix != nil {
		m.prefix = *mj.ContinuingSubwordPrefix
	}
	if mj.EndOfWordSuffix != nil {
		m.suffix = *mj.EndOfWordSuffix
	}
	maxID := int32(-1)
	for tok, id := range m.vocab {
		if id < 0 {
			return nil, fmt.Errorf("vocab: token %q has negative id %d", tok, id)
		}
		maxID = max(maxID, id)
	}
	if int(maxID) >= 2*len(m.vocab)+1<<16 {
		// idToToken is indexed by id: a lone huge id must not cost gigabytes.
		return nil, fmt.Errorf("vocab: id %d is far beyond the %d tokens; ids must be nearly contiguous", maxID, len(m.vocab))
	}
	m.idToToken = make([]string, maxID+1)
	for tok, id := range m.vocab {
		m.idToToken[id] = tok
	}
	if mj.UnkToken != nil {
		id, ok := m.vocab[*mj.UnkToken]
		if !ok {
			return nil, fmt.Errorf("unk_token %q is not in the vocab", *mj.UnkToken)
		}
		m.unkID = id
	}
	m.hasFallback = true
	for b := 0; b < 256; b++ {
		m.fallbackIDs[b] = -1
		if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.fallbackIDs[b] = id
		} else {
			m.hasFallback = false
		}
	}
	if byteLevel {
		m.rawVocab = make(map[string]int32, len(m.vocab))
		for tok, id := range m.vocab {
			if raw, ok := byteLevelDecode(tok); ok {
				m.rawVocab[string(raw)] = id
			}
		}
		for b := 0; b < 256; b++ {
			m.byteIDs[b] = -1
			if id, ok := m.vocab[string(byteToRune[b])]; ok {
				m.byteIDs[b] = id
			}
		}
	}
	if err := m.parseMerges(mj.Merges); err != nil {
		return nil, err
	}
	m.findBarriers()
	return m, nil
}

// parseMerges reads merges written as "a b" strings or as ["a", "b"] pairs.
func (m *bpeModel) parseMerges(raw json.RawMessage) error {
	pairs, err := parseMergesJSON(raw)
	if err != nil {
		return err
	}
	m.merges = newMergeTable(len(pairs))
	for rank, p := range pairs {
		a, ok1 := m.vocab[p[0]]
		b, ok2 := m.vocab[p[1]]
		c, ok3 := m.vocab[p[0]+p[1]]
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("merges[%d]: %q + %q: token missing from the vocab", rank, p[0], p[1])
		}
		m.merges.insert(pairKey(a, b), merge{rank: int32(rank), id: c}) // the first rank of a duplicate wins
	}
	return nil
}

// findBarriers marks the ASCII characters whose token (or byte-fallback token) is the
// left or right side of no merge, for char-mode models without prefix or suffix.
func (m *bpeModel) findBarriers() {
	if m.byteLevel || m.prefix != "" || m.suffix != "" {
		return
	}
	inMerge := make(map[int32]bool)
	for _, k := range m.merges.keys {
		if k != emptyKey {
			inMerge[int32(k>>32)] = true
			inMerge[int32(uint32(k))] = true
		}
	}
	for c := 0; c < utf8.RuneSelf; c++ {
		id, ok := m.vocab[string(rune(c))]
		if !ok {
			if !m.byteFallback || m.fallbackIDs[c] < 0 {
				continue // unk: may fuse with neighbours
			}
			id = m.fallbackIDs[c]
		}
		if !inMerge[id] {
			m.barrier[c], m.barrierID[c], m.hasBarriers = true, id, true
		}
	}
}

// tokenString returns the vocab token of id.
func (m *bpeModel) tokenString(id int) (string, bool) {
	if id < 0 || id >= len(m.idToToken) {
		return "", false
	}
	t := m.idToToken[id]
	if t == "" {
		_, ok := m.vocab[""]
		return "", ok && m.vocab[""] == int32(id)
	}
	return t, true
}

// symbol is one node of the doubly linked list a word is merged on.
type symbol struct {
	id         int32
	prev, next int32
	dead       bool
}

// heapItem is a candidate merge of the symbol at pos with its successor.
type heapItem struct{ rank, pos int32 }

// wordState holds the reusable buffers of encodeWord.
type wordState struct {
	syms []symbol
	heap []heapItem
}

// encode appends the ids of one pre-tokenized piece to ids.
func (m *bpeModel) encode(w string, ids []int, ws *wordState) []int {
	if w == "" {
		return ids
	}
	if m.byteLevel && len(w) == 1 && m.byteIDs[w[0]] >= 0 {
		return append(ids, int(m.byteIDs[w[0]]))
	}
	if m.ignoreMerges {
		var id int32
		var ok bool
		if m.byteLevel {
			id, ok = m.rawVocab[w]
		} else {
			id, ok = m.vocab[w]
		}
		if ok {
			return append(ids, int(id))
		}
	}
	if m.hasBarriers {
		return m.encodeSplitAtBarriers(w, ids, ws)
	}
	return m.encodeWord(w, ids, ws)
}

// encodeSplitAtBarriers encodes w in chunks cut at barrier bytes: ASCII characters whose
// token takes part in no merge. No merge can cross them, so the chunks merge exactly as
// the whole word would, while staying short and cacheable (for Llama-2-style models a
// whole line of text is one word, and newlines are barriers).
func (m *bpeModel) encodeSplitAtBarriers(w string, ids []int, ws *wordState) []int {
	start := 0
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= utf8.RuneSelf || !m.barrier[c] {
			continue
		}
		if start < i {
			ids = m.encodeWord(w[start:i], ids, ws)
		}
		ids = append(ids, int(m.barrierID[c]))
		start = i + 1
	}
	if start == 0 {
		return m.encodeWord(w, ids, ws)
	}
	if start < len(w) {
		ids = m.encodeWord(w[start:], ids, ws)
	}
	return ids
}

// encodeWord runs BPE on one word, through the cache.
func (m *bpeModel) encodeWord(w string, ids []int, ws *wordState) []int {
	cacheable := len(w) <= cacheMaxWord
	if cacheable {
		if hit, ok := m.cache.get(w); ok {
			for _, id := range hit {
				ids = append(ids, int(id))
			}
			return ids
		}
	}
	m.initSymbols(w, ws)
	m.mergeAll(ws)
	start := len(ids)
	for i := int32(0); i >= 0 && int(i) < len(ws.syms); i = ws.syms[i].next {
		ids = append(ids, int(ws.syms[i].id))
	}
	if cacheable {
		out := make([]int32, len(ids)-start)
		for k, id := range ids[start:] {
			out[k] = int32(id)
		}
		m.cache.put(strings.Clone(w), out) // w may be a slice of a large input: do not pin it
	}
	return ids
}

// initSymbols splits w into its initial symbols: bytes in byte-level mode, characters
// (with byte fallback or unk) otherwise.
func (m *bpeModel) initSymbols(w string, ws *wordState) {
	syms := ws.syms[:0]
	add := func(id int32) {
		n := int32(len(syms))
		syms = append(syms, symbol{id: id, prev: n - 1, next: n + 1})
	}
	if m.byteLevel {
		for i := 0; i < len(w); i++ {
			if id := m.byteIDs[w[i]]; id >= 0 {
				add(id)
			} else if m.unkID >= 0 {
				add(m.unkID) // never fused here: a byte-level alphabet always has all bytes
			}
		}
	} else {
		pendingUnk := false
		for i := 0; i < len(w); {
			_, size := utf8.DecodeRuneInString(w[i:])
			s := w[i : i+size]
			if m.prefix != "" && i > 0 {
				s = m.prefix + s
			}
			if m.suffix != "" && i+size == len(w) {
				s += m.suffix
			}
			i += size
			if id, ok := m.vocab[s]; ok {
				if pendingUnk {
					add(m.unkID)
					pendingUnk = false
				}
				add(id)
				continue
			}
			if m.byteFallback && m.canFallBack(s) {
				for k := 0; k < len(s); k++ {
					add(m.fallbackIDs[s[k]])
				}
				continue
			}
			if m.unkID >= 0 {
				if pendingUnk && !m.fuseUnk {
					add(m.unkID)
				}
				pendingUnk = true
			}
		}
		if pendingUnk {
			add(m.unkID)
		}
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	ws.syms = syms
}

// canFallBack reports whether every byte of s has a <0xXX> token.
func (m *bpeModel) canFallBack(s string) bool {
	if m.hasFallback {
		return true
	}
	for k := 0; k < len(s); k++ {
		if m.fallbackIDs[s[k]] < 0 {
			return false
		}
	}
	return true
}

func (m *bpeModel) pairMerge(a, b int32) (merge, bool) {
	return m.merges.get(pairKey(a, b))
}

// mergeAll applies merges lowest rank first (leftmost first among equal ranks) until
// none applies, using a binary heap of candidate pairs.
func (m *bpeModel) mergeAll(ws *wordState) {
	syms := ws.syms
	if len(syms) < 2 {
		return
	}
	h := ws.heap[:0]
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.pairMerge(syms[i].id, syms[i+1].id); ok {
			h = heapPush(h, heapItem{mg.rank, int32(i)})
		}
	}
	for len(h) > 0 {
		var top heapItem
		top, h = heapPop(h)
		s := &syms[top.pos]
		if s.dead || s.next < 0 {
			continue
		}
		r := &syms[s.next]
		mg, ok := m.pairMerge(s.id, r.id)
		if !ok || mg.rank != top.rank {
			continue // stale entry
		}
		s.id = mg.id
		r.dead = true
		s.next = r.next
		if s.next >= 0 {
			syms[s.next].prev = top.pos
		}
		if s.prev >= 0 {
			if pm, ok := m.pairMerge(syms[s.prev].id, s.id); ok {
				h = heapPush(h, heapItem{pm.rank, s.prev})
			}
		}
		if s.next >= 0 {
			if nm, ok := m.pairMerge(s.id, syms[s.next].id); ok {
				h = heapPush(h, heapItem{nm.rank, top.pos})
			}
		}
	}
	ws.heap = h
}

func heapLess(a, b heapItem) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

func heapPush(h []heapItem, it heapItem) []heapItem {
	h = append(h, it)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !heapLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

func heapPop(h []heapItem) (heapItem, []heapItem) {
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && heapLess(h[r], h[l]) {
			c = r
		}
		if !heapLess(h[c], h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	return top, h
}
