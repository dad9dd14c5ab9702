package fim

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bidora/bidora/dataset"
	"github.com/bidora/bidora/tokenizer"
)

// qwen3Dir is the shared Qwen3 tokenizer, which carries Qwen2.5-Coder's FIM tokens.
const qwen3Dir = "../../shared/tokenizers/qwen3"

func loadTok(t testing.TB, path string) *tokenizer.Tokenizer {
	t.Helper()
	if strings.HasPrefix(path, "../") {
		if _, err := os.Stat(filepath.Join(path, "tokenizer.json")); err != nil {
			t.Skipf("shared tokenizer %s absent", path)
		}
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const ig = dataset.IgnoreIndex

// The fixtures: codellama.json is a SentencePiece-style BPE (Llama 2's normalizer,
// byte fallback: "▁"=259, letters from 260, "▁def"=332, "return"=337, "▁x"=342,
// "▁▁▁▁"=341, <0x0A>=13) with ▁<PRE> ▁<SUF> ▁<MID> ▁<EOT> = 345…348 and <s>=1;
// deepseek.json and starcoder.json are the GPT-2-alphabet byte-level BPE of
// internal/tinymodel ("def"=289, " f"=271, "("=7, "x"=87, ")"=8, ":"=25, "\n"=198,
// " "=220, "   "=283, " return"=295, "+"=10, "1"=16) with their added tokens from 303.
var familyCases = []struct {
	name, path string
	want       Vocab
	bos        []int
	// psm and spm for Parts{Prefix: "def f(x):\n", Middle: "    return x", Suffix: "+1\n"}
	psm, spm []int32
	midFrom  int // index of the first middle token in both
}{
	{"qwen", qwen3Dir, Vocab{Qwen, 151659, 151661, 151660, 151643, 151662}, nil,
		// <|fim_prefix|> def ␣f (x ):\n <|fim_suffix|> + 1 \n <|fim_middle|> ␣␣␣ ␣return ␣x <|endoftext|>
		[]int32{151659, 750, 282, 2075, 982, 151661, 10, 16, 198, 151660, 262, 470, 856, 151643},
		[]int32{151659, 151661, 10, 16, 198, 151660, 750, 282, 2075, 982, 262, 470, 856, 151643}, 10},
	{"codellama", "testdata/codellama.json", Vocab{CodeLlama, 345, 346, 347, 348, -1}, []int{1},
		// <s> ▁<PRE> ▁def ▁ f ( x ) : \n ▁<SUF> + 1 \n ▁<MID> ▁▁▁▁ return ▁x ▁<EOT>:
		// the prefix keeps SentencePiece's leading ▁, suffix and middle do not ("+" not "▁+").
		[]int32{1, 345, 332, 259, 265, 286, 283, 287, 288, 13, 346, 290, 292, 13, 347, 341, 337, 342, 348},
		[]int32{1, 345, 346, 290, 292, 13, 347, 332, 259, 265, 286, 283, 287, 288, 13, 341, 337, 342, 348}, 15},
	{"deepseek", "testdata/deepseek.json", Vocab{DeepSeek, 306, 305, 307, 304, -1}, []int{303},
		// <BOS> <fim▁begin> def ␣f ( x ) : \n <fim▁hole> + 1 \n <fim▁end> ␣␣␣ ␣ ␣return ␣ x <EOS>
		[]int32{303, 306, 289, 271, 7, 87, 8, 25, 198, 305, 10, 16, 198, 307, 283, 220, 295, 220, 87, 304},
		[]int32{303, 306, 305, 10, 16, 198, 307, 289, 271, 7, 87, 8, 25, 198, 283, 220, 295, 220, 87, 304}, 14},
	{"starcoder", "testdata/starcoder.json", Vocab{StarCoder, 304, 306, 305, 303, 307}, nil,
		[]int32{304, 289, 271, 7, 87, 8, 25, 198, 306, 10, 16, 198, 305, 283, 220, 295, 220, 87, 303},
		[]int32{304, 306, 10, 16, 198, 305, 289, 271, 7, 87, 8, 25, 198, 283, 220, 295, 220, 87, 303}, 13},
}

func TestExampleTokensPerFamily(t *testing.T) {
	parts := Parts{Prefix: "def f(x):\n", Middle: "    return x", Suffix: "+1\n"}
	for _, c := range familyCases {
		t.Run(c.name, func(t *testing.T) {
			tok := loadTok(t, c.path)
			v, err := Detect(tok)
			if err != nil {
				t.Fatal(err)
			}
			if v != c.want {
				t.Fatalf("Detect = %+v, want %+v", v, c.want)
			}
			// BOS comes from the post-processor; the fixtures name no EOS (not needed here).
			sp, _ := tok.ResolveSpecial(tokenizer.SpecialConfig{})
			if !slices.Equal(sp.BOS, c.bos) {
				t.Fatalf("tokenizer BOS %v, want %v", sp.BOS, c.bos)
			}
			b := NewBuilder(tok, v, sp.BOS)
			for _, m := range []struct {
				mode Mode
				want []int32
			}{{PSM, c.psm}, {SPM, c.spm}} {
				for _, loss := range []Loss{LossAll, LossMiddle} {
					ex, err := b.Example(parts, m.mode, loss)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(ex.InputIDs, m.want) {
						t.Fatalf("%s ids\n got %v\nwant %v", m.mode, ex.InputIDs, m.want)
					}
					for i, l := range ex.Labels {
						var want int32
						switch {
						case i < len(c.bos):
							want = ig // BOS never carries loss
						case loss == LossMiddle && i < c.midFrom:
							want = ig
						default:
							want = m.want[i]
						}
						if l != want {
							t.Fatalf("%s/%s label %d = %d, want %d (labels %v)", m.mode, loss, i, l, want, ex.Labels)
						}
					}
					if ex.Labels[len(ex.Labels)-1] != int32(v.End) {
						t.Fatalf("the end-of-middle token is not trained on: %v", ex.Labels)
					}
					// The prompt is the example up to the middle.
					p, err := b.Prompt("", parts.Prefix, parts.Suffix, m.mode)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(toInt32(p), m.want[:c.midFrom]) {
						t.Fatalf("%s prompt %v, want %v", m.mode, p, m.want[:c.midFrom])
					}
				}
			}
			if !slices.Equal(b.Stops(), []int{v.End}) {
				t.Fatalf("Stops = %v", b.Stops())
			}
		})
	}
}

func toInt32(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

func TestHeaderGoesFirstUncut(t *testing.T) {
	tok := loadTok(t, qwen3Dir)
	v, err := Detect(tok)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder(tok, v, nil)
	header := "<|repo_name|>r\n<|file_sep|>a.py\n"
	// <|repo_name|> r \n <|file_sep|> a .py \n
	wantHeader := []int32{151663, 81, 198, 151664, 64, 7197, 198}
	for _, loss := range []Loss{LossAll, LossMiddle} {
		ex, err := b.Example(Parts{Header: header, Prefix: "x = 1\n", Middle: "y", Suffix: " = 2\n"}, PSM, loss)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ex.InputIDs[:len(wantHeader)], wantHeader) || ex.InputIDs[len(wantHeader)] != 151659 {
			t.Fatalf("ids %v: want the header %v then <|fim_prefix|>", ex.InputIDs, wantHeader)
		}
		trained := ex.Labels[0] != ig
		if trained != (loss == LossAll) {
			t.Fatalf("loss %s: header label %d", loss, ex.Labels[0])
		}
	}
}

func TestDetectErrors(t *testing.T) {
	tok := loadTok(t, "../../shared/tokenizers/llama2")
	_, err := Detect(tok)
	var ne *NoTokensError
	if !errors.As(err, &ne) || ne.Partial != "" {
		t.Fatalf("llama2: err %v, want a *NoTokensError", err)
	}
	partial := partialTok{"<fim_prefix>": 5, "<|endoftext|>": 0}
	_, err = Detect(partial)
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), "lacks <fim_suffix>, <fim_middle>") {
		t.Fatalf("partial: err %v", err)
	}
}

type partialTok map[string]int

func (p partialTok) Encode(string) []int { return nil }
func (p partialTok) TokenToID(s string) (int, bool) {
	id, ok := p[s]
	return id, ok
}

func TestBadModeOrLoss(t *testing.T) {
	b := NewBuilder(partialTok{}, Vocab{Family: StarCoder}, nil)
	if _, err := b.Example(Parts{}, "pms", LossAll); !errors.Is(err, ErrMode) {
		t.Fatalf("mode: %v", err)
	}
	if _, err := b.Example(Parts{}, PSM, "some"); !errors.Is(err, ErrMode) {
		t.Fatalf("loss: %v", err)
	}
	if _, err := b.Prompt("", "", "", "x"); !errors.Is(err, ErrMode) {
		t.Fatalf("prompt mode: %v", err)
	}
}

func TestSplitSeededAndRuneSafe(t *testing.T) {
	text := "fn main() { println!(\"héllo, 世界 🌍\"); }\n// ü\n"
	n := utf8.RuneCountInString(text)
	seen := map[[2]int]bool{}
	for seed := range uint64(300) {
		p, m, s := Split(text, rand.New(rand.NewPCG(seed, 1)))
		p2, m2, s2 := Split(text, rand.New(rand.NewPCG(seed, 1)))
		if p != p2 || m != m2 || s != s2 {
			t.Fatalf("seed %d: not deterministic", seed)
		}
		if p+m+s != text {
			t.Fatalf("seed %d: parts %q %q %q do not rebuild the text", seed, p, m, s)
		}
		for _, part := range []string{p, m, s} {
			if !utf8.ValidString(part) {
				t.Fatalf("seed %d: a cut falls inside a rune: %q", seed, part)
			}
		}
		i, j := utf8.RuneCountInString(p), utf8.RuneCountInString(p+m)
		seen[[2]int{i, j}] = true
	}
	// 300 draws of pairs among (n+1)(n+2)/2 ordered cut pairs: both ends are reached and
	// the cut points spread over the text.
	var lo, hi bool
	for k := range seen {
		lo = lo || k[0] == 0
		hi = hi || k[1] == n
	}
	if !lo || !hi || len(seen) < 150 {
		t.Fatalf("cut points do not spread: %d distinct pairs, start %v end %v", len(seen), lo, hi)
	}
}

// TestSplitUniform checks the cut points' distribution: each of two uniform draws on
// [0, n] lands on a position with probability 1/(n+1), so a position is the first cut
// with probability (2(n−i)+1)/(n+1)² — compared with frequencies over many draws.
func TestSplitUniform(t *testing.T) {
	text := "abcdefghij" // n = 10
	const draws = 200000
	n := 10
	var first [11]int
	r := rand.New(rand.NewPCG(7, 7))
	for range draws {
		p, _, _ := Split(text, r)
		first[len(p)]++
	}
	for i, c := range first {
		want := float64(2*(n-i)+1) / float64((n+1)*(n+1))
		got := float64(c) / draws
		if d := got - want; d > 0.005 || d < -0.005 {
			t.Fatalf("P(first cut = %d) = %.4f, want %.4f", i, got, want)
		}
	}
}

func TestSplitAtClamps(t *testing.T) {
	p, m, s := SplitAt("añb", 5, 1)
	if p != "a" || m != "ñb" || s != "" {
		t.Fatalf("got %q %q %q", p, m, s)
	}
	p, m, s = SplitAt("", 0, 3)
	if p != "" || m != "" || s != "" {
		t.Fatalf("empty: %q %q %q", p, m, s)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("def f(x):\n    return x\n", uint64(1), 2, 5)
	f.Add("世界🌍\xff\xfe", uint64(2), -1, 100)
	f.Add("", uint64(0), 0, 0)
	f.Fuzz(func(t *testing.T, text string, seed uint64, i, j int) {
		for _, parts := range [][3]string{
			func() [3]string { p, m, s := Split(text, rand.New(rand.NewPCG(seed, 0))); return [3]string{p, m, s} }(),
			func() [3]string { p, m, s := SplitAt(text, i, j); return [3]string{p, m, s} }(),
		} {
			if parts[0]+parts[1]+parts[2] != text {
				t.Fatalf("parts %q do not rebuild %q", parts, text)
			}
			// A cut never splits a valid rune: each part of a valid text is valid.
			if utf8.ValidString(text) {
				for _, p := range parts {
					if !utf8.ValidString(p) {
						t.Fatalf("part %q of %q is not valid UTF-8", p, text)
					}
				}
			}
		}
		if utf8.ValidString(text) {
			for _, kind := range []SpanKind{SingleLine, MultiLine} {
				p, m, s, ok := RandomSpan(text, kind, rand.New(rand.NewPCG(seed, 0)))
				if ok && p+m+s != text {
					t.Fatalf("%s span %q %q %q does not rebuild %q", kind, p, m, s, text)
				}
			}
		}
	})
}

func TestRandomSpan(t *testing.T) {
	text := "a\n\n  b = 1\nc\nd\ne"
	r := rand.New(rand.NewPCG(3, 3))
	for range 200 {
		p, m, s, ok := RandomSpan(text, SingleLine, r)
		if !ok || p+m+s != text || strings.Contains(m, "\n") || strings.TrimSpace(m) == "" {
			t.Fatalf("line span %q|%q|%q ok=%v", p, m, s, ok)
		}
		if s != "" && s[0] != '\n' || p != "" && !strings.HasSuffix(p, "\n") {
			t.Fatalf("line span %q|%q|%q does not hold whole lines", p, m, s)
		}
		p, m, s, ok = RandomSpan(text, MultiLine, r)
		lines := strings.Count(m, "\n") + 1
		if !ok || p+m+s != text || lines < 2 || lines > MaxBlockLines {
			t.Fatalf("block span %q|%q|%q ok=%v", p, m, s, ok)
		}
	}
	if _, _, _, ok := RandomSpan("one line", MultiLine, r); ok {
		t.Fatal("a one-line text has no block")
	}
	if _, _, _, ok := RandomSpan(" \n\t\n", SingleLine, r); ok {
		t.Fatal("a blank text has no line")
	}
}

func TestEditSimilarity(t *testing.T) {
	cases := []struct {
		a, b string
		d    int
		sim  float64
	}{
		{"", "", 0, 1},
		{"kitten", "sitting", 3, 1 - 3.0/7},
		{"flaw", "lawn", 2, 0.5},
		{"abc", "", 3, 0},
		{"héllo", "hello", 1, 0.8}, // runes, not bytes
		{"return x", "return x", 0, 1},
	}
	for _, c := range cases {
		if d := Levenshtein([]rune(c.a), []rune(c.b)); d != c.d {
			t.Errorf("Levenshtein(%q, %q) = %d, want %d", c.a, c.b, d, c.d)
		}
		if s := EditSimilarity(c.a, c.b); s-c.sim > 1e-12 || c.sim-s > 1e-12 {
			t.Errorf("EditSimilarity(%q, %q) = %v, want %v", c.a, c.b, s, c.sim)
		}
	}
}

// A generated middle decodes to the text it was encoded from, leading spaces kept (the
// CodeLlama decoder strips one from the start of a text; MiddleContext works around it).
func TestDecodeMiddle(t *testing.T) {
	for _, c := range familyCases {
		t.Run(c.name, func(t *testing.T) {
			tok := loadTok(t, c.path)
			v, err := Detect(tok)
			if err != nil {
				t.Fatal(err)
			}
			b := NewBuilder(tok, v, nil)
			for _, mid := range []string{"    return x", " x", "x\n", ""} {
				ex, err := b.Example(Parts{Prefix: "a", Middle: mid, Suffix: "b"}, PSM, LossMiddle)
				if err != nil {
					t.Fatal(err)
				}
				n := len(b.encodeInner(mid))
				ids := ex.InputIDs[len(ex.InputIDs)-1-n : len(ex.InputIDs)-1]
				var gen []int
				for _, id := range ids {
					gen = append(gen, int(id))
				}
				if got := b.DecodeMiddle(tok, gen); got != mid {
					t.Fatalf("DecodeMiddle = %q, want %q", got, mid)
				}
			}
			if (b.MiddleContext() != nil) != (c.name == "codellama") {
				t.Fatalf("MiddleContext %v", b.MiddleContext())
			}
		})
	}
}
