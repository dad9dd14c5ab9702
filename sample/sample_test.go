package sample

import (
	"cmp"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestArgmax(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	cases := []struct {
		logits []float32
		want   int
	}{
		{[]float32{1, 3, 2}, 1},
		{[]float32{5, 1, 5}, 0},
		{[]float32{-inf, -inf}, 0},
		{[]float32{nan, 1, 2, nan}, 2},
		{[]float32{-1, inf, 2}, 1},
	}
	for _, c := range cases {
		if got := Argmax(c.logits); got != c.want {
			t.Errorf("Argmax(%v) = %d, want %d", c.logits, got, c.want)
		}
	}
}

func TestRepetitionPenalty(t *testing.T) {
	logits := []float32{2, -2, 4, -1, 0}
	RepetitionPenalty(logits, []int{0, 1, 1, 4, 0, 9, -3}, 2)
	want := []float32{1, -4, 4, -1, 0}
	if !slices.Equal(logits, want) {
		t.Errorf("got %v, want %v (each distinct seen token penalised once)", logits, want)
	}
}

func TestTopK(t *testing.T) {
	inf := float32(math.Inf(-1))
	cases := []struct {
		logits []float32
		k      int
		want   []float32
	}{
		{[]float32{1, 5, 3, 4}, 2, []float32{inf, 5, inf, 4}},
		{[]float32{1, 5, 3, 5}, 1, []float32{inf, 5, inf, 5}}, // ties with the k-th stay
		{[]float32{1, 2}, 5, []float32{1, 2}},
		{[]float32{1, 2}, 0, []float32{1, 2}},
	}
	for _, c := range cases {
		got := slices.Clone(c.logits)
		TopK(got, c.k, nil)
		if !slices.Equal(got, c.want) {
			t.Errorf("TopK(%v, %d) = %v, want %v", c.logits, c.k, got, c.want)
		}
	}
}

func TestNthLargest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 1 + rng.IntN(300)
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.IntN(20 + trial)) // many ties
		}
		sorted := slices.Clone(x)
		slices.SortFunc(sorted, func(a, b float32) int { return cmp.Compare(b, a) })
		k := rng.IntN(n)
		if got := nthLargest(slices.Clone(x), k); got != sorted[k] {
			t.Fatalf("trial %d: nthLargest(k=%d) = %v, want %v", trial, k, got, sorted[k])
		}
	}
}

// topPRef is transformers' TopPLogitsWarper written out: sort ascending, cumulative
// sum, remove where cumsum ≤ 1−p, keep the last (most likely) one.
func topPRef(probs []float64, p float64) []bool {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := cmp.Compare(probs[a], probs[b]); c != 0 {
			return c
		}
		return cmp.Compare(b, a)
	})
	keep := make([]bool, len(probs))
	var cum float64
	for n, i := range idx {
		cum += probs[i]
		keep[i] = cum > 1-p || n == len(idx)-1
	}
	return keep
}

func TestTopP(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		name  string
		n     int
		sharp float64 // logit scale: large = peaked distribution
		p     float64
	}{
		{"peaked, small p", 1000, 8, 0.5},
		{"peaked, p 0.9", 5000, 5, 0.9},
		{"flat, p near 1 (full sort)", 2000, 0.1, 0.999999},
		{"flat, p 0.3", 500, 0.01, 0.3},
		{"tiny p keeps one", 100, 1, 1e-9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logits := make([]float32, c.n)
			for i := range logits {
				logits[i] = float32(rng.NormFloat64() * c.sharp)
			}
			s := &Sampler{}
			probs := slices.Clone(s.softmax(logits))
			want := topPRef(probs, c.p)
			got := slices.Clone(probs)
			TopP(got, c.p, nil)
			kept := 0
			for i := range got {
				if (got[i] > 0) != want[i] {
					t.Fatalf("token %d (p=%.3g): kept %v, transformers keeps %v", i, probs[i], got[i] > 0, want[i])
				}
				if want[i] {
					kept++
					if got[i] != probs[i] {
						t.Fatalf("token %d: probability changed", i)
					}
				}
			}
			if kept == 0 {
				t.Fatal("nothing kept")
			}
		})
	}
}

// Draws follow the filtered softmax: a chi-square test against the expected counts.
func TestSamplerDistribution(t *testing.T) {
	logits := []float32{0, 1, 2, -1, 3, 2.5}
	cases := []struct {
		name string
		cfg  Config
		want []float64
	}{
		{"temperature 1", Config{Temperature: 1}, softmax64(logits, 1, nil)},
		{"temperature 2", Config{Temperature: 2}, softmax64(logits, 2, nil)},
		{"top-k 2", Config{Temperature: 1, TopK: 2}, softmax64(logits, 1, []int{4, 5})},
		{"top-p 0.8", Config{Temperature: 1, TopP: 0.8}, softmax64(logits, 1, []int{2, 4, 5})},
	}
	const draws = 40000
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			counts := make([]float64, len(logits))
			for range draws {
				counts[s.Sample(slices.Clone(logits), nil)]++
			}
			var chi2 float64
			for i, p := range c.want {
				if p == 0 {
					if counts[i] != 0 {
						t.Fatalf("token %d filtered out but drawn %v times", i, counts[i])
					}
					continue
				}
				e := p * draws
				chi2 += (counts[i] - e) * (counts[i] - e) / e
			}
			if chi2 > 25 { // 5 degrees of freedom: p ≈ 1e-4
				t.Errorf("chi² %.1f: counts %v, want probabilities %v", chi2, counts, c.want)
			}
		})
	}
}

// softmax64 is softmax(logits/temp) restricted to keep (nil: all).
func softmax64(logits []float32, temp float64, keep []int) []float64 {
	p := make([]float64, len(logits))
	var z float64
	for i, v := range logits {
		if keep != nil && !slices.Contains(keep, i) {
			continue
		}
		p[i] = math.Exp(float64(v) / temp)
		z += p[i]
	}
	for i := range p {
		p[i] /= z
	}
	return p
}

func TestSamplerGreedyWithPenalty(t *testing.T) {
	s, err := New(Config{RepetitionPenalty: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sample([]float32{1, 2.5, 2}, []int{1}); got != 2 {
		t.Errorf("greedy with penalty picked %d, want 2 (2.5/3 < 2)", got)
	}
}

func TestSamplerSeed(t *testing.T) {
	logits := make([]float32, 100)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)))
	}
	run := func(seed uint64) []int {
		s, err := New(Config{Temperature: 1, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for range 20 {
			out = append(out, s.Sample(slices.Clone(logits), nil))
		}
		return out
	}
	if a, b := run(7), run(7); !slices.Equal(a, b) {
		t.Errorf("same seed: %v vs %v", a, b)
	}
	if a, b := run(7), run(8); slices.Equal(a, b) {
		t.Errorf("different seeds drew the same 20 tokens")
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string // part of the error, "" for none
	}{
		{Config{}, ""},
		{Config{Temperature: 0.7, TopK: 20, TopP: 0.8, RepetitionPenalty: 1.05}, ""},
		{Config{Temperature: -1}, "temperature"},
		{Config{Temperature: math.NaN()}, "temperature"},
		{Config{TopK: -2}, "top-k"},
		{Config{TopP: 1.5}, "top-p"},
		{Config{RepetitionPenalty: -1}, "repetition penalty"},
		{Config{RepetitionPenalty: math.Inf(1)}, "repetition penalty"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: error %v, want one naming %q", c.cfg, err, c.want)
		}
	}
}

func TestGenerationConfig(t *testing.T) {
	cases := []struct {
		name    string
		json    string
		wantEOS []int
		want    Config
	}{
		{"empty: greedy", `{}`, nil, Config{TopK: 50, TopP: 1, RepetitionPenalty: 1}},
		{"qwen2.5 instruct", `{"bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643],
			"pad_token_id": 151643, "repetition_penalty": 1.05, "temperature": 0.7, "top_k": 20, "top_p": 0.8}`,
			[]int{151645, 151643}, Config{Temperature: 0.7, TopK: 20, TopP: 0.8, RepetitionPenalty: 1.05}},
		{"sampling defaults", `{"do_sample": true, "eos_token_id": 2}`, []int{2}, Config{Temperature: 1, TopK: 50, TopP: 1, RepetitionPenalty: 1}},
		{"greedy keeps filters", `{"do_sample": false, "temperature": 0.6, "top_p": 0.9, "eos_token_id": null}`, nil,
			Config{TopK: 50, TopP: 0.9, RepetitionPenalty: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := ParseGenerationConfig([]byte(c.json))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(g.EOSTokenIDs, c.wantEOS) {
				t.Errorf("eos %v, want %v", g.EOSTokenIDs, c.wantEOS)
			}
			if got := g.Sampling(); got != c.want {
				t.Errorf("sampling %+v, want %+v", got, c.want)
			}
		})
	}
	for _, bad := range []string{`{"eos_token_id": "x"}`, `{"top_k": 1.5}`, `[`} {
		if _, err := ParseGenerationConfig([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	g, err := LoadGenerationConfig(t.TempDir())
	if err != nil || g.EOSTokenIDs != nil || g.DoSample != nil {
		t.Errorf("missing file: %+v, %v; want an empty config", g, err)
	}
}

// TestTinyTemperatureIsGreedy: temperatures whose division overflows float32 (or that
// leave all the mass on the top token) decode greedily instead of drawing from NaNs.
func TestTinyTemperatureIsGreedy(t *testing.T) {
	cases := []struct {
		name   string
		temp   float64
		logits []float32
		want   int
	}{
		{"1e-300", 1e-300, []float32{-3, 1.5, 7.25, 7.0, -40}, 2},
		{"smallest denormal", 5e-324, []float32{-3, 1.5, 7.25, 7.0, -40}, 2},
		{"1e-30", 1e-30, []float32{0.1, -0.2, 0.3, 0.2999}, 2},
		{"1e-6", 1e-6, []float32{5, 5.5, 4}, 1},
		{"just below MinTemperature", MinTemperature * 0.999, []float32{5, 5.5, 4}, 1},
		{"overflowing logits", 2e-5, []float32{1e34, 2e34, -1e34}, 1},
		{"ties go to the lowest id", 1e-200, []float32{1, 9, 9}, 1},
	}
	for _, c := range cases {
		for seed := uint64(0); seed < 20; seed++ {
			s, err := New(Config{Temperature: c.temp, Seed: seed})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := s.Sample(slices.Clone(c.logits), nil); got != c.want {
				t.Fatalf("%s (seed %d): token %d, want the argmax %d", c.name, seed, got, c.want)
			}
		}
	}
	if (&Config{Temperature: MinTemperature}).Greedy() || !(&Config{Temperature: MinTemperature / 2}).Greedy() {
		t.Error("Greedy disagrees with MinTemperature")
	}
	// At MinTemperature itself sampling still happens, and stays finite.
	s, _ := New(Config{Temperature: MinTemperature, Seed: 1})
	if got := s.Sample([]float32{1, 1 + 1e-6, 0}, nil); got != 0 && got != 1 {
		t.Errorf("MinTemperature: token %d", got)
	}
}

func TestGenerationConfigFileChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		path, want string
	}{
		{write("array.json", `[{"temperature": 0.7}]`), "array.json: want a JSON object, got an array"},
		{write("null.json", `null`), "null.json: want a JSON object, got null"},
		{write("big.json", `{"x": "`+strings.Repeat("a", 16<<20)+`"}`), "big.json is larger than the 16 MiB allowed"},
	}
	for _, c := range cases {
		if _, err := LoadGenerationConfig(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.path, err, c.want)
		}
	}
}
