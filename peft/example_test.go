package peft_test

import (
	"fmt"
	"log"

	"github.com/bidora/bidora/peft"
)

// An adapter_config.json with PEFT's per-module overrides: rank_pattern and
// alpha_pattern keys are regular expressions matched against a dot-separated suffix
// of the module name, the first match in file order winning.
func ExampleConfig_RankFor() {
	cfg, err := peft.ParseConfig([]byte(`{
		"peft_type": "LORA", "task_type": "CAUSAL_LM",
		"r": 8, "lora_alpha": 16, "use_rslora": false,
		"target_modules": ["q_proj", "v_proj", "down_proj"],
		"rank_pattern": {"layers.0.self_attn.q_proj": 4, "down_proj": 2},
		"alpha_pattern": {"down_proj": 8}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range []string{
		peft.ModuleName(0, "q_proj"),
		peft.ModuleName(1, "q_proj"),
		peft.ModuleName(1, "down_proj"),
		peft.ModuleName(1, "up_proj"),
	} {
		fmt.Printf("%-33s targeted %-5v rank %d scale %g\n", m, cfg.Targets(m), cfg.RankFor(m), cfg.ScaleFor(m))
	}
	// Tensor names in adapter_model.safetensors parse back into layer, projection and part.
	k, err := peft.ParseKey(peft.KeyMagnitude(3, "v_proj"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.Layer, k.Proj, k.Part)
	// Output:
	// model.layers.0.self_attn.q_proj   targeted true  rank 4 scale 4
	// model.layers.1.self_attn.q_proj   targeted true  rank 8 scale 2
	// model.layers.1.mlp.down_proj      targeted true  rank 2 scale 4
	// model.layers.1.mlp.up_proj        targeted false rank 8 scale 2
	// 3 v_proj lora_magnitude_vector
}
