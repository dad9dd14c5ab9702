package cli

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bidora/bidora/gguf"
	"github.com/bidora/bidora/internal/tinymodel"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
)

// writeGGUFTestAdapter writes a random LoRA or DoRA adapter (rank 4, alpha 8)
// on every projection of the model in dir, large enough to change its
// greedy tokens.
func writeGGUFTestAdapter(t *testing.T, dir string, dora bool) string {
	t.Helper()
	mcfg, err := modelcfg.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := peft.NewConfig(dir, 4, 8, 0, []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
	cfg.UseDora = dora
	rng := rand.New(rand.NewPCG(7, 11))
	fill := func(n int, scale, offset float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(offset + scale*rng.NormFloat64())
		}
		return x
	}
	tensors := map[string]peft.Tensor{}
	for l := 0; l < mcfg.NumHiddenLayers; l++ {
		for _, p := range cfg.TargetModules {
			out, in, _ := mcfg.ProjShape(p)
			tensors[peft.KeyA(l, p)] = peft.Tensor{Shape: []int{4, in}, Data: fill(4*in, 0.1, 0)}
			tensors[peft.KeyB(l, p)] = peft.Tensor{Shape: []int{out, 4}, Data: fill(out*4, 0.05, 0)}
			if dora {
				tensors[peft.KeyMagnitude(l, p)] = peft.Tensor{Shape: []int{out}, Data: fill(out, 0.05, 0.2)}
			}
		}
	}
	st, err := peft.ToTensors(tensors, safetensors.F32)
	if err != nil {
		t.Fatal(err)
	}
	adapterDir := filepath.Join(t.TempDir(), "adapter")
	if err := peft.Save(adapterDir, cfg, st); err != nil {
		t.Fatal(err)
	}
	return adapterDir
}

func TestExportGGUFModel(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	if err := tinymodel.Write(base, tinymodel.Options{Arch: "llama", NumHeads: 4, NumKVHeads: 2, DType: safetensors.BF16,
		RopeScaling: &modelcfg.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 64}}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "m.gguf")
	code, stdout, stderr := runCLI(t, "", "export", "--format", "gguf", "--model", base, "--output", out, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		Architecture string `json:"architecture"`
		Tensors      int    `json:"tensors"`
		Tokenizer    string `json:"tokenizer"`
		Pre          string `json:"pre"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	// rope_freqs + token_embd + 2 × 9 + output_norm + output.
	if res.Architecture != "llama" || res.Tensors != 22 || res.Tokenizer != "gpt2" || res.Pre != "gpt-2" {
		t.Errorf("result %s", stdout)
	}
	f, err := gguf.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"general.architecture": "llama", "llama.block_count": uint32(2), "llama.embedding_length": uint32(64),
		"llama.attention.head_count": uint32(4), "llama.attention.head_count_kv": uint32(2),
		"llama.rope.dimension_count": uint32(16), "llama.context_length": uint32(2048),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5), "llama.rope.freq_base": float32(10000),
		"tokenizer.ggml.model": "gpt2", "general.file_type": uint32(0),
		"tokenizer.chat_template": tinymodel.ChatMLTemplate,
	} {
		if v, _ := f.Get(k); v != want {
			t.Errorf("%s = %v (%T), want %v", k, v, v, want)
		}
	}
	st, err := safetensors.OpenDir(base)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// q is permuted for ggml's rotary layout: row h·d + 2j + t of the GGUF
	// is row h·d + t·d/2 + j of the HF weight.
	q, _ := st.Float32("model.layers.1.self_attn.q_proj.weight")
	info, data, err := f.Tensor("blk.1.attn_q.weight")
	if err != nil || info.Type != gguf.F32 || !slices.Equal(info.Dims, []uint64{64, 64}) {
		t.Fatalf("blk.1.attn_q.weight %+v %v", info, err)
	}
	got := decodeF32(data)
	d := 16
	for h := 0; h < 4; h++ {
		for j := 0; j < d/2; j++ {
			for tt := 0; tt < 2; tt++ {
				src, dst := h*d+tt*d/2+j, h*d+2*j+tt
				if !slices.Equal(got[dst*64:(dst+1)*64], q[src*64:(src+1)*64]) {
					t.Fatalf("attn_q row %d is not HF row %d", dst, src)
				}
			}
		}
	}
	// v is not permuted; the values are the bf16 weights exactly.
	v, _ := st.Float32("model.layers.0.self_attn.v_proj.weight")
	if _, data, _ := f.Tensor("blk.0.attn_v.weight"); !slices.Equal(decodeF32(data), v) {
		t.Error("blk.0.attn_v.weight differs from v_proj")
	}
	// Llama 3 scaling: factor 1 at high frequency, 8 at low.
	if _, data, err := f.Tensor("rope_freqs.weight"); err != nil {
		t.Error(err)
	} else if rf := decodeF32(data); rf[0] != 1 || rf[len(rf)-1] != 8 {
		t.Errorf("rope_freqs %v", rf)
	}

	// Q8_0 with a DoRA adapter folded in: the fold equals merge's, within
	// Q8_0's error.
	adapter := writeGGUFTestAdapter(t, base, true)
	q8 := filepath.Join(t.TempDir(), "q8.gguf")
	if code, _, stderr := runCLI(t, "", "export", "--format", "gguf", "--model", base, "--adapter", adapter, "--dtype", "q8_0", "--output", q8); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	merged := filepath.Join(t.TempDir(), "merged")
	if code, _, stderr := runCLI(t, "", "merge", "--model", base, "--adapter", adapter, "--output", merged, "--dtype", "f32"); code != 0 {
		t.Fatalf("merge exit %d: %s", code, stderr)
	}
	fq, err := gguf.ReadFile(q8)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := fq.Get("general.file_type"); v != uint32(7) {
		t.Errorf("general.file_type %v, want 7 (mostly Q8_0)", v)
	}
	ms, err := safetensors.OpenDir(merged)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	want, _ := ms.Float32("model.layers.0.mlp.down_proj.weight")
	info, data, err = fq.Tensor("blk.0.ffn_down.weight")
	if err != nil || info.Type != gguf.Q8_0 {
		t.Fatalf("blk.0.ffn_down.weight %+v %v", info, err)
	}
	deq, err := gguf.DecodeQ8_0(data)
	if err != nil {
		t.Fatal(err)
	}
	var maxErr, maxAbs float64
	for i := range want {
		maxErr = max(maxErr, math.Abs(float64(deq[i]-want[i])))
		maxAbs = max(maxAbs, math.Abs(float64(want[i])))
	}
	if maxErr > maxAbs/254*1.01 || maxErr == 0 {
		t.Errorf("Q8_0 ffn_down: max error %g for max |w| %g", maxErr, maxAbs)
	}
	if info, _, _ := fq.Tensor("blk.0.attn_norm.weight"); info.Type != gguf.F32 {
		t.Errorf("norms must stay F32, got %s", info.Type)
	}
	// The intermediate size 160 is a multiple of 32, the hidden 64 too: every
	// matrix is Q8_0; a folded adapter changed the weights.
	if _, d0, _ := f.Tensor("blk.0.ffn_down.weight"); slices.Equal(decodeF32(d0), want) {
		t.Error("the adapter did not change ffn_down")
	}
}

func TestExportGGUFTokenizers(t *testing.T) {
	for _, tc := range []struct {
		tok, arch, model, pre string
		addBOS                bool
	}{
		{"llama3", "llama", "gpt2", "llama-bpe", false},
		{"qwen3", "qwen2", "gpt2", "qwen2", false},
		{"llama2", "mistral", "llama", "default", true},
	} {
		t.Run(tc.tok, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "base")
			if err := tinymodel.Write(base, tinymodel.Options{Arch: tc.arch, HiddenSize: 32, NumLayers: 1, TokenizerDir: sharedTokenizer(t, tc.tok)}); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "m.gguf")
			if code, _, stderr := runCLI(t, "", "export", "--format", "gguf", "--model", base, "--output", out, "--dtype", "f16"); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			f, err := gguf.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := modelcfg.Load(base)
			toks, _ := f.Get("tokenizer.ggml.tokens")
			types, _ := f.Get("tokenizer.ggml.token_type")
			if m, _ := f.Get("tokenizer.ggml.model"); m != tc.model {
				t.Errorf("model %v", m)
			}
			if p, _ := f.Get("tokenizer.ggml.pre"); p != tc.pre {
				t.Errorf("pre %v", p)
			}
			if b, _ := f.Get("tokenizer.ggml.add_bos_token"); b != tc.addBOS {
				t.Errorf("add_bos_token %v", b)
			}
			ts := toks.([]string)
			if len(ts) != cfg.VocabSize || len(types.([]int32)) != cfg.VocabSize {
				t.Fatalf("%d tokens, %d types; vocab_size %d", len(ts), len(types.([]int32)), cfg.VocabSize)
			}
			ty := types.([]int32)
			switch tc.tok {
			case "llama2":
				if ts[1] != "<s>" || ty[1] != gguf.TokenControl || ty[0] != gguf.TokenUnknown || ts[13] != "<0x0A>" || ty[13] != gguf.TokenByte {
					t.Errorf("tokens %q types %v", ts[:14], ty[:14])
				}
				sc, _ := f.Get("tokenizer.ggml.scores")
				if s := sc.([]float32); !(s[450] > s[20000]) { // "▁the" merges before a rare piece
					t.Errorf("scores %v %v", s[450], s[20000])
				}
			case "qwen3":
				if ts[151644] != "<|im_start|>" || ty[151644] != gguf.TokenControl || ty[len(ty)-1] != gguf.TokenUnused || !strings.HasPrefix(ts[len(ts)-1], "[PAD") {
					t.Errorf("tail %q %v", ts[151640:], ty[151640:])
				}
			}
			if info, _, _ := f.Tensor("token_embd.weight"); info.Type != gguf.F16 {
				t.Errorf("token_embd %s", info.Type)
			}
		})
	}
}

func TestExportGGUFErrors(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	if err := tinymodel.Write(base, tinymodel.Options{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "m.gguf")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--output", out}, "--model is required"},
		{[]string{"--model", base}, "--output is required"},
		{[]string{"--model", base, "--output", out, "--dtype", "q4_0"}, `--dtype "q4_0"`},
		{[]string{"--model", base, "--output", out, "--base-model-config", base}, "--base-model-config is for --format gguf-lora"},
	} {
		code, _, stderr := runCLI(t, "", append([]string{"export", "--format", "gguf"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

func decodeF32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return out
}

// export --format gguf writes and prints an Ollama Modelfile beside the
// file, refuses to replace one without --overwrite, and skips it with
// --no-modelfile; --dtype q4_k_m writes general.file_type 15 and Q4_K/Q6_K.
func TestExportGGUFModelfile(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	if err := tinymodel.Write(base, tinymodel.Options{HiddenSize: 256, IntermediateSize: 512, NumLayers: 2, NumHeads: 4, Tied: true}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "Coder Q4.gguf")
	code, stdout, stderr := runCLI(t, "", "export", "--format", "gguf", "--model", base, "--dtype", "q4_k_m", "--output", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	mf, err := os.ReadFile(filepath.Join(dir, "Modelfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM ./Coder Q4.gguf\n", "PARAMETER stop "} {
		if !strings.Contains(string(mf), want) {
			t.Errorf("Modelfile has no %q:\n%s", want, mf)
		}
	}
	if !strings.Contains(stdout, string(mf)) || !strings.Contains(stdout, "ollama create coder-q4 -f "+filepath.Join(dir, "Modelfile")) {
		t.Errorf("stdout does not show the Modelfile and the ollama create command:\n%s", stdout)
	}
	f, err := gguf.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if ft, _ := f.Get("general.file_type"); ft != uint32(15) {
		t.Errorf("general.file_type %v, want 15 (Q4_K_M)", ft)
	}
	types := map[string]gguf.TensorType{}
	for _, ti := range f.Tensors {
		types[ti.Name] = ti.Type
	}
	for name, want := range map[string]gguf.TensorType{"token_embd.weight": gguf.Q6_K, "blk.0.attn_q.weight": gguf.Q4_K,
		"blk.1.ffn_down.weight": gguf.Q6_K, "blk.0.ffn_down.weight": gguf.Q4_K, "blk.0.attn_norm.weight": gguf.F32} {
		if types[name] != want {
			t.Errorf("%s is %s, want %s", name, types[name], want)
		}
	}

	second := filepath.Join(dir, "other.gguf")
	if code, _, stderr := runCLI(t, "", "export", "--format", "gguf", "--model", base, "--output", second); code != 2 || !strings.Contains(stderr, "Modelfile exists") {
		t.Errorf("second export into the folder: exit %d, %q; want 2 and 'Modelfile exists'", code, stderr)
	}
	if fileExistsT(second) {
		t.Error("the refused export wrote its .gguf")
	}
	if code, stdout, stderr := runCLI(t, "", "export", "--format", "gguf", "--model", base, "--output", second, "--no-modelfile"); code != 0 || strings.Contains(stdout, "ollama create") {
		t.Errorf("--no-modelfile: exit %d, %s%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(t, "", "export", "--format", "gguf", "--model", base, "--output", second, "--overwrite"); code != 0 {
		t.Errorf("--overwrite: exit %d, %s", code, stderr)
	}
	if mf, _ := os.ReadFile(filepath.Join(dir, "Modelfile")); !strings.Contains(string(mf), "FROM ./other.gguf\n") {
		t.Errorf("--overwrite did not replace the Modelfile:\n%s", mf)
	}
}

func fileExistsT(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
