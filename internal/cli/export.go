package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bidora/bidora/gguf"
	"github.com/bidora/bidora/hub"
	"github.com/bidora/bidora/internal/atomicfile"
	"github.com/bidora/bidora/merge"
	"github.com/bidora/bidora/modelcfg"
	"github.com/bidora/bidora/peft"
	"github.com/bidora/bidora/safetensors"
)

type exportOptions struct {
	Model           string
	Adapter         string
	Format          string
	Output          string
	BaseModelConfig string
	DType           string
	Overwrite       bool
	NoModelfile     bool
	JSON            bool
}

func newExportCmd(stdio *IO) *cobra.Command {
	opts := &exportOptions{}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Convert a model or an adapter for llama.cpp/Ollama (GGUF model, GGUF LoRA)",
		Long: `export --format gguf writes a whole model as one GGUF file that llama.cpp
(llama-cli, llama-server) and Ollama (FROM in a Modelfile) load: the base model of
--model, with the LoRA or DoRA adapter of --adapter folded in when given (as
'bidora merge' folds it), its tokenizer converted from tokenizer.json, the matrices
in --dtype f32, f16, bf16, q8_0 or q4_k_m (norms and biases stay f32). q4_k_m is
llama.cpp's Q4_K_M mix: Q4_K matrices, Q6_K for the output matrix and for attn_v
and ffn_down in some layers, with llama.cpp's fallbacks (Q5_0 for Q4_K, Q8_0 for
Q6_K) for rows whose length is not a multiple of 256. It streams: one tensor is
in memory at a time. llama.cpp has no DoRA at run time, so a DoRA adapter is
exported merged (folded into the weights).

Beside the .gguf, export --format gguf writes an Ollama Modelfile (FROM the
file, a TEMPLATE converted from the model's chat template for ChatML/Qwen,
Llama 3 and Llama 2/Mistral [INST] templates, else the plain prompt, PARAMETER
stop for the end-of-turn and end-of-sequence tokens, sampling defaults), prints
it and the 'ollama create' command; --no-modelfile leaves it out. An existing
Modelfile is replaced only with --overwrite.

export --format gguf-lora writes a PEFT LoRA/rsLoRA adapter as a GGUF LoRA adapter that llama.cpp
(llama-cli/llama-server --lora) and Ollama (ADAPTER in a Modelfile) load on top of
the GGUF of the same base model.

The base model's config.json gives the architecture and attention heads; it comes
from --base-model-config (a model directory or its config.json), else from the
adapter's base_model_name_or_path (a local directory or a hub repo id, of which
only config.json is fetched).

The scale s of each module (alpha/r, alpha/√r with rsLoRA, rank and alpha patterns)
is carried by adapter.lora.alpha, since llama.cpp scales by alpha/rank. DoRA
adapters cannot be expressed as llama.cpp LoRA adapters: export the model with
the adapter folded in (--format gguf --model BASE --adapter DORA) instead.`,
		Example: `  bidora export --format gguf --model ./Qwen2.5-Coder-0.5B --adapter ./output --dtype q8_0 --output merged.gguf
  bidora export --adapter ./output --format gguf-lora --output adapter.gguf
  bidora export --adapter ./output --format gguf-lora --output adapter-f16.gguf --dtype f16 --base-model-config ./Qwen2.5-Coder-7B-Instruct`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExport(cmd.Context(), stdio, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Model, "model", "", "base model (--format gguf): local directory or HF repo id")
	f.StringVar(&opts.Adapter, "adapter", "", "PEFT adapter: local directory or HF repo id (optional with --format gguf)")
	f.StringVar(&opts.Format, "format", "gguf-lora", "output format: gguf (a whole model) or gguf-lora (an adapter)")
	f.StringVar(&opts.Output, "output", "", "file to write, e.g. model.gguf or adapter.gguf")
	f.StringVar(&opts.BaseModelConfig, "base-model-config", "", "base model directory or config.json (default: the adapter's base_model_name_or_path)")
	f.StringVar(&opts.DType, "dtype", "f32", "tensor dtype: f32, f16, bf16 (or q8_0, q4_k_m with --format gguf)")
	f.BoolVar(&opts.Overwrite, "overwrite", false, "replace an existing --output file (a regular file only: symlinks, devices and pipes are refused)")
	f.BoolVar(&opts.NoModelfile, "no-modelfile", false, "with --format gguf: do not write an Ollama Modelfile beside the .gguf")
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

// exportResult is what export prints with --json.
type exportResult struct {
	Output string `json:"output"`
	Format string `json:"format"`
	DType  string `json:"dtype"`
	*gguf.LoRAResult
}

func runExport(ctx context.Context, stdio *IO, opts *exportOptions) error {
	if opts.Format == "gguf" {
		return runExportModel(ctx, stdio, opts)
	}
	switch {
	case opts.Model != "":
		return usageErrorf("--model is for --format gguf; a gguf-lora adapter takes its base's config from --base-model-config")
	case opts.Adapter == "":
		return usageErrorf("--adapter is required")
	case opts.Output == "":
		return usageErrorf("--output is required")
	case opts.Format != "gguf-lora":
		return usageErrorf("--format %q: want gguf or gguf-lora", opts.Format)
	}
	dt, err := parseDType("--dtype", opts.DType)
	if err != nil {
		return err
	}
	typ := map[safetensors.DType]gguf.TensorType{safetensors.F32: gguf.F32, safetensors.F16: gguf.F16, safetensors.BF16: gguf.BF16}[dt]
	if err := checkExportOutput(opts); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	adapterDir, err := hub.ResolveModel(ctx, opts.Adapter)
	if err != nil {
		return fmt.Errorf("--adapter: %w", err)
	}
	acfg, err := peft.ReadConfig(adapterDir)
	if err != nil {
		return fmt.Errorf("--adapter: %w", err)
	}
	if acfg.UseDora {
		return fmt.Errorf("--adapter %s is a DoRA adapter; llama.cpp GGUF LoRA adapters have no magnitude vector, so it cannot be exported as gguf-lora. Merge it instead (bidora merge --model BASE --adapter %s --output MERGED) and convert the merged model with llama.cpp's convert_hf_to_gguf.py", opts.Adapter, opts.Adapter)
	}
	base, err := exportBaseConfig(ctx, opts.BaseModelConfig, acfg.BaseModelNameOrPath)
	if err != nil {
		return err
	}
	ad, err := merge.LoadAdapter(adapterDir, base)
	if err != nil {
		return err
	}
	mods := make([]gguf.LoRAModule, len(ad.Modules))
	for i, m := range ad.Modules {
		mods[i] = gguf.LoRAModule{Layer: m.Layer, Proj: m.Proj, Out: m.Out, In: m.In, Rank: m.Rank, Scale: m.Scale, A: m.A, B: m.B}
	}
	name := acfg.BaseModelNameOrPath
	if name != "" {
		name = filepath.Base(name) + " LoRA"
	}
	if err := mkdirOutput(opts.Output); err != nil {
		return err
	}
	res, err := gguf.WriteLoRA(opts.Output, mods, base, gguf.LoRAOptions{Type: typ, Name: name})
	if err != nil {
		return err
	}
	if opts.JSON {
		return json.NewEncoder(stdio.Out).Encode(exportResult{Output: opts.Output, Format: opts.Format, DType: strings.ToLower(string(dt)), LoRAResult: res})
	}
	fmt.Fprintf(stdio.Out, "wrote %s: GGUF LoRA adapter (%s, %d tensors, %s, alpha %g)\n", opts.Output, res.Architecture, res.Tensors, strings.ToLower(string(dt)), res.Alpha)
	if res.Rescaled > 0 {
		fmt.Fprintf(stdio.Out, "note: %d module(s) have a scale other than alpha/rank (alpha_pattern); their lora_b was rescaled to match\n", res.Rescaled)
	}
	return nil
}

// checkExportOutput refuses an --output that is not a regular file, or one
// that exists without --overwrite.
func checkExportOutput(opts *exportOptions) error {
	if err := atomicfile.CheckFile(opts.Output); err != nil {
		if errors.Is(err, atomicfile.ErrNotReplaceable) {
			return usageErrorf("--output: %v", err)
		}
		return fmt.Errorf("--output: %w", err)
	}
	if _, err := os.Lstat(opts.Output); err == nil && !opts.Overwrite {
		return usageErrorf("--output %s exists (pass --overwrite to replace it)", opts.Output)
	}
	return nil
}

func mkdirOutput(path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
	}
	return nil
}

// exportModelResult is what export --format gguf prints with --json.
type exportModelResult struct {
	Output string `json:"output"`
	Format string `json:"format"`
	DType  string `json:"dtype"`
	// Modelfile is the Ollama Modelfile written beside Output ("" with
	// --no-modelfile).
	Modelfile string `json:"modelfile,omitempty"`
	*merge.GGUFResult
}

// runExportModel writes a whole model, with an adapter folded in when given,
// as one GGUF file.
func runExportModel(ctx context.Context, stdio *IO, opts *exportOptions) error {
	switch {
	case opts.Model == "":
		return usageErrorf("--model is required with --format gguf")
	case opts.Output == "":
		return usageErrorf("--output is required")
	case opts.BaseModelConfig != "":
		return usageErrorf("--base-model-config is for --format gguf-lora; --format gguf reads the config of --model")
	}
	types := map[string]gguf.TensorType{"f32": gguf.F32, "fp32": gguf.F32, "float32": gguf.F32,
		"f16": gguf.F16, "fp16": gguf.F16, "float16": gguf.F16,
		"bf16": gguf.BF16, "bfloat16": gguf.BF16, "q8_0": gguf.Q8_0, "q8": gguf.Q8_0}
	var mix gguf.Mix
	typ, ok := types[strings.ToLower(opts.DType)]
	if strings.EqualFold(opts.DType, "q4_k_m") {
		mix, ok = gguf.MixQ4_K_M, true
	}
	if !ok {
		return usageErrorf("--dtype %q: want f32, f16, bf16, q8_0 or q4_k_m", opts.DType)
	}
	if err := checkExportOutput(opts); err != nil {
		return err
	}
	modelfile := ""
	if !opts.NoModelfile {
		modelfile = filepath.Join(filepath.Dir(opts.Output), "Modelfile")
		if err := atomicfile.CheckFile(modelfile); err != nil {
			if errors.Is(err, atomicfile.ErrNotReplaceable) {
				return usageErrorf("the Modelfile beside --output: %v", err)
			}
			return fmt.Errorf("the Modelfile beside --output: %w", err)
		}
		if _, err := os.Lstat(modelfile); err == nil && !opts.Overwrite {
			return usageErrorf("%s exists (pass --overwrite to replace it, or --no-modelfile)", modelfile)
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	baseDir, err := hub.ResolveModel(ctx, opts.Model)
	if err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	adapterDir := ""
	if opts.Adapter != "" {
		if adapterDir, err = hub.ResolveModel(ctx, opts.Adapter); err != nil {
			return fmt.Errorf("--adapter: %w", err)
		}
	}
	if err := mkdirOutput(opts.Output); err != nil {
		return err
	}
	name := filepath.Base(filepath.Clean(opts.Model))
	if opts.Adapter != "" {
		name += " + " + filepath.Base(filepath.Clean(opts.Adapter))
	}
	res, err := merge.ExportGGUF(ctx, baseDir, adapterDir, opts.Output, merge.GGUFOptions{Type: typ, Mix: mix, Name: name})
	if err != nil {
		return err
	}
	dt := strings.ToLower(typ.String())
	if mix != "" {
		dt = strings.ToLower(string(mix))
	}
	var mfText, mfNote string
	if modelfile != "" {
		if mfText, mfNote, err = writeModelfile(baseDir, opts.Output, modelfile); err != nil {
			return err
		}
	}
	if opts.JSON {
		return json.NewEncoder(stdio.Out).Encode(exportModelResult{Output: opts.Output, Format: opts.Format, DType: dt, Modelfile: modelfile, GGUFResult: res})
	}
	what := "base model"
	if res.Method != "" {
		what = fmt.Sprintf("%s adapter folded into %d weights", res.Method, res.Merged)
	}
	fmt.Fprintf(stdio.Out, "wrote %s: GGUF model (%s, %s, %d tensors, %s; tokenizer %s/%s, %d tokens)\n",
		opts.Output, res.Architecture, dt, res.Tensors, what, res.Tokenizer, res.Pre, res.VocabSize)
	if modelfile != "" {
		fmt.Fprintf(stdio.Out, "wrote %s:\n\n%s\n", modelfile, mfText)
		if mfNote != "" {
			fmt.Fprintf(stdio.Out, "note: %s\n", mfNote)
		}
		fmt.Fprintf(stdio.Out, "next: ollama create %s -f %s\n", ollamaName(opts.Output), modelfile)
	}
	return nil
}

// writeModelfile writes the Ollama Modelfile for the GGUF export gguf of the
// model in baseDir at path, atomically, and returns its text and note.
func writeModelfile(baseDir, ggufPath, path string) (text, note string, err error) {
	cfg, err := modelcfg.Load(baseDir)
	if err != nil {
		return "", "", fmt.Errorf("base model: %w", err)
	}
	v, err := gguf.ReadVocab(baseDir, cfg.VocabSize, cfg.BOSTokenID, cfg.EOSTokenIDs)
	if err != nil {
		return "", "", fmt.Errorf("base model %s: %w", baseDir, err)
	}
	in := modelfileInput{GGUF: filepath.Base(ggufPath), ChatTemplate: v.ChatTemplate, ContextLength: cfg.MaxPositionEmbeddings}
	eos := slices.Clone(cfg.EOSTokenIDs)
	if v.EOS >= 0 {
		eos = append(eos, v.EOS)
	}
	for _, id := range eos {
		if id >= 0 && id < len(v.Tokens) {
			in.EOS = append(in.EOS, v.Tokens[id])
		}
	}
	text, note = ollamaModelfile(in)
	if err := atomicfile.Write(path, func(w io.Writer) error {
		_, err := io.WriteString(w, text)
		return err
	}); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", path, err)
	}
	return text, note, nil
}

// exportBaseConfig loads the base model's config.json from flag (a directory
// or the file), else from the adapter's base_model_name_or_path.
func exportBaseConfig(ctx context.Context, flag, fromAdapter string) (*modelcfg.Config, error) {
	if flag != "" {
		path := flag
		if fi, err := os.Stat(flag); err == nil && fi.IsDir() {
			path = filepath.Join(flag, "config.json")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--base-model-config: %w", err)
		}
		cfg, err := modelcfg.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("--base-model-config %s: %w", path, err)
		}
		return cfg, nil
	}
	if fromAdapter == "" {
		return nil, usageErrorf("the adapter has no base_model_name_or_path; pass --base-model-config with the base model's directory")
	}
	if fi, err := os.Stat(fromAdapter); err == nil && fi.IsDir() {
		cfg, err := modelcfg.Load(fromAdapter)
		if err != nil {
			return nil, fmt.Errorf("base model %s (from the adapter's base_model_name_or_path): %w", fromAdapter, err)
		}
		return cfg, nil
	}
	id, rev := hub.ParseRef(fromAdapter)
	if err := hub.ValidateRepoID(id); err != nil {
		return nil, usageErrorf("the adapter's base_model_name_or_path %q is neither a local directory nor a hub repo id; pass --base-model-config", fromAdapter)
	}
	dir, err := hub.FromEnv().Snapshot(ctx, hub.Model, id, rev, func(n string) bool { return n == "config.json" })
	if err != nil {
		return nil, fmt.Errorf("fetching config.json of %s (the adapter's base model; or pass --base-model-config): %w", fromAdapter, err)
	}
	cfg, err := modelcfg.Load(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no config.json; pass --base-model-config", fromAdapter)
	}
	if err != nil {
		return nil, fmt.Errorf("base model %s: %w", fromAdapter, err)
	}
	return cfg, nil
}
