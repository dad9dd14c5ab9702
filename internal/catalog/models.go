package catalog

import "github.com/bidora/bidora/modelcfg"

// The facts below are the models' config.json values. Each Source names where
// they were checked (public copies of the config.json or of the model card found
// through code search); catalog_test.go cross-checks every shape against the
// parameter count the model card publishes.

func qwen2(hidden, inter, layers, heads, kv, vocab int, tied bool, maxPos int) modelcfg.Config {
	return modelcfg.Config{
		ModelType: "qwen2", Architectures: []string{"Qwen2ForCausalLM"},
		HiddenSize: hidden, IntermediateSize: inter, NumHiddenLayers: layers,
		NumAttentionHeads: heads, NumKeyValueHeads: kv, HeadDim: hidden / heads,
		VocabSize: vocab, MaxPositionEmbeddings: maxPos, RMSNormEps: 1e-6,
		RopeTheta: 1e6, TieWordEmbeddings: tied, HiddenAct: "silu", TorchDtype: "bfloat16",
	}
}

func llama(hidden, inter, layers, heads, kv, headDim, vocab int, tied bool, maxPos int, theta, eps float64, rs *modelcfg.RopeScaling) modelcfg.Config {
	return modelcfg.Config{
		ModelType: "llama", Architectures: []string{"LlamaForCausalLM"},
		HiddenSize: hidden, IntermediateSize: inter, NumHiddenLayers: layers,
		NumAttentionHeads: heads, NumKeyValueHeads: kv, HeadDim: headDim,
		VocabSize: vocab, MaxPositionEmbeddings: maxPos, RMSNormEps: eps,
		RopeTheta: theta, RopeScaling: rs, TieWordEmbeddings: tied, HiddenAct: "silu", TorchDtype: "bfloat16",
	}
}

// llama3Rope is the rope_scaling block of Llama 3.1 (factor 8) and 3.2 (factor 32).
func llama3Rope(factor float64) *modelcfg.RopeScaling {
	return &modelcfg.RopeScaling{Type: "llama3", Factor: factor, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}
}

const (
	srcQwenCard = "model card (layers, heads, parameter count) via ZHUI/paddlenlp_model_readme; "
)

var entries = []Entry{
	{ID: "Qwen/Qwen2.5-Coder-0.5B-Instruct", Preset: "qwen2.5-coder-0.5b", Family: "Qwen2.5-Coder",
		Config: qwen2(896, 4864, 24, 14, 2, 151936, true, 32768), ContextLength: 32768,
		Source: "same shape as Qwen/Qwen2.5-0.5B config.json (code search); card via Abandon-ht/LLM-tutorial: 24 layers, 14/2 heads, 0.49B, 32,768 context"},
	{ID: "Qwen/Qwen2.5-Coder-1.5B-Instruct", Preset: "qwen2.5-coder-1.5b", Family: "Qwen2.5-Coder",
		Config: qwen2(1536, 8960, 28, 12, 2, 151936, true, 32768), ContextLength: 32768,
		Source: srcQwenCard + "Qwen2.5-Coder-1.5B: 28 layers, 12/2 heads, 1.54B, tied; hidden 1536 / intermediate 8960 from a config preset in code search"},
	{ID: "Qwen/Qwen2.5-Coder-3B-Instruct", Preset: "qwen2.5-coder-3b", Family: "Qwen2.5-Coder",
		Config: qwen2(2048, 11008, 36, 16, 2, 151936, true, 32768), ContextLength: 32768,
		Source: "Qwen2.5-3B text config (2048/11008/36 layers/16/2 heads, vocab 151936) via a Qwen2.5-Omni-3B thinker config in code search; 3.09B on the card"},
	{ID: "Qwen/Qwen2.5-Coder-7B-Instruct", Preset: "qwen2.5-coder-7b", Family: "Qwen2.5-Coder",
		Config: qwen2(3584, 18944, 28, 28, 4, 152064, false, 32768), ContextLength: 32768,
		Source: srcQwenCard + "Qwen2.5-Coder-7B: 28 layers, 28/4 heads, 7.61B; projection shapes q 3584x3584, k 512x3584, gate 18944x3584 from a Qwen2.5-7B layer table in code search"},
	{ID: "Qwen/Qwen2.5-Coder-14B-Instruct", Preset: "qwen2.5-coder-14b", Family: "Qwen2.5-Coder",
		Config: qwen2(5120, 13824, 48, 40, 8, 152064, false, 32768), ContextLength: 32768,
		Source: "Qwen2.5-14B config.json values; checked against the card's 14.7B parameters"},
	{ID: "Qwen/Qwen2.5-Coder-32B-Instruct", Preset: "qwen2.5-coder-32b", Family: "Qwen2.5-Coder",
		Config: qwen2(5120, 27648, 64, 40, 8, 152064, false, 32768), ContextLength: 32768,
		Source: srcQwenCard + "Qwen2.5-32B: 64 layers, 40/8 heads, 32.5B"},
	{ID: "Qwen/Qwen2.5-0.5B-Instruct", Preset: "qwen2.5-0.5b", Family: "Qwen2.5",
		Config: qwen2(896, 4864, 24, 14, 2, 151936, true, 32768), ContextLength: 32768,
		Source: "Qwen/Qwen2.5-0.5B config.json (code search): 896/4864/24/14/2, vocab 151936, tied, rope_theta 1e6, max_position_embeddings 32768"},
	{ID: "Qwen/Qwen2.5-1.5B-Instruct", Preset: "qwen2.5-1.5b", Family: "Qwen2.5",
		Config: qwen2(1536, 8960, 28, 12, 2, 151936, true, 32768), ContextLength: 32768,
		Source: "same shape as Qwen2.5-Coder-1.5B (model card: 28 layers, 12/2 heads, 1.54B)"},
	{ID: "Qwen/Qwen2.5-3B-Instruct", Preset: "qwen2.5-3b", Family: "Qwen2.5",
		Config: qwen2(2048, 11008, 36, 16, 2, 151936, true, 32768), ContextLength: 32768,
		Source: "Qwen2.5-3B text config via a Qwen2.5-Omni-3B thinker config in code search"},
	{ID: "Qwen/Qwen2.5-7B-Instruct", Preset: "qwen2.5-7b", Family: "Qwen2.5",
		Config: qwen2(3584, 18944, 28, 28, 4, 152064, false, 32768), ContextLength: 32768,
		Source: "Qwen2.5-7B layer table (code search) and card: 28 layers, 28/4 heads, 7.61B"},
	{ID: "meta-llama/Llama-3.2-1B-Instruct", Preset: "llama-3.2-1b", Family: "Llama 3.2",
		Config: llama(2048, 8192, 16, 32, 8, 64, 128256, true, 131072, 500000, 1e-5, llama3Rope(32)), ContextLength: 131072,
		Source: "meta-llama/Llama-3.2-1B-Instruct config.json copy in kevinstephano/thunder_model_blocks hf_llama/llama_config.py"},
	{ID: "meta-llama/Llama-3.2-3B-Instruct", Preset: "llama-3.2-3b", Family: "Llama 3.2",
		Config: llama(3072, 8192, 28, 24, 8, 128, 128256, true, 131072, 500000, 1e-5, llama3Rope(32)), ContextLength: 131072,
		Source: "Llama 3.2 3B config in silvaxxx1/MyLLM_101 models/LLAMA/Llama3.2/Llama_configs.py (3072, 28 layers, 24/8 heads, 8192, rope factor 32)"},
	{ID: "meta-llama/Llama-3.1-8B-Instruct", Preset: "llama-3.1-8b", Family: "Llama 3.1",
		Config: llama(4096, 14336, 32, 32, 8, 128, 128256, false, 131072, 500000, 1e-5, llama3Rope(8)), ContextLength: 131072,
		Source: "Llama 3.1 config.json copy (llama_3_1_config) in code search and Meta's params (dim 4096, 32 layers, 32/8 heads, ffn 14336, vocab 128256)"},
	{ID: "mistralai/Mistral-7B-Instruct-v0.3", Preset: "mistral-7b", Family: "Mistral",
		Config: modelcfg.Config{ModelType: "mistral", Architectures: []string{"MistralForCausalLM"},
			HiddenSize: 4096, IntermediateSize: 14336, NumHiddenLayers: 32, NumAttentionHeads: 32, NumKeyValueHeads: 8,
			HeadDim: 128, VocabSize: 32768, MaxPositionEmbeddings: 32768, RMSNormEps: 1e-5, RopeTheta: 1e6,
			HiddenAct: "silu", TorchDtype: "bfloat16"}, ContextLength: 32768,
		Source: "Mistral 7B v0.2+ params (edadaltocg/mistral-src-finetune finetune/config.py) and the v0.3 model card (vocabulary extended to 32768, no sliding window)"},
	{ID: "deepseek-ai/deepseek-coder-6.7b-instruct", Preset: "deepseek-coder-6.7b", Family: "DeepSeek-Coder",
		Config: llama(4096, 11008, 32, 32, 32, 128, 32256, false, 16384, 100000, 1e-6, &modelcfg.RopeScaling{Type: "linear", Factor: 4}), ContextLength: 16384,
		Source: "deepseek-coder config.json dumps in code search (vocab 32256, rope linear factor 4, rope_theta 100000, 16384 context); 6.7B shape checked against its 6.74B parameters"},
	{ID: "codellama/CodeLlama-7b-hf", Preset: "codellama-7b", Family: "Code Llama",
		Config: llama(4096, 11008, 32, 32, 32, 128, 32016, false, 16384, 1e6, 1e-5, nil), ContextLength: 16384,
		Source: "CodeLlama-7b LlamaConfig dump in code search (4096/11008/32/32/32, vocab 32016, rope_theta 1e6, 16384) and Meta's code-7B params"},
}
