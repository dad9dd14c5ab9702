"""Writes the golden files under model/testdata/golden/ (deterministic: fixed seeds).

Usage (from the repo root, with Debian's torch):
    /usr/bin/python3 tools/reference/make_goldens.py [--out model/testdata/golden] [--shared ../shared]

Each case directory holds config.json, model.safetensors, adapter/ (PEFT),
batch.json, expected.safetensors (F64) and case.json; see the README.md that is
written next to them. code14m_eval/ needs ../shared/models/code14m and the
token ids in CODE14M_ROWS (made once with tokenize_llama2.js).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402

TINY = dict(hidden_size=32, intermediate_size=22, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, vocab_size=61)

CASES = [
    dict(name="llama_lora", model_type="llama", tied=True, rope_scaling=None, dtype="F32",
         targets=["q_proj", "k_proj", "v_proj", "o_proj"], r=4, alpha=8, rslora=False, dora=False, batch=2,
         base_seed=1, seed=1, sgd=True,
         desc="Llama, GQA 4/2 heads, tied embeddings, LoRA r=4 alpha=8 (s=2) on q,k,v,o; B=2 with right padding"),
    dict(name="llama_rslora_all", model_type="llama", tied=False,
         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 64},
         dtype="F32", targets=list(R.PROJECTIONS), r=2, alpha=6, rslora=True, dora=False, batch=3, base_seed=2, seed=2,
         desc="Llama, untied lm_head, llama3 rope_scaling (all three frequency bands hit), rsLoRA r=2 alpha=6 (s=6/sqrt2) on all seven projections; B=3"),
    dict(name="llama_dora", model_type="llama", tied=True, rope_scaling=None, dtype="F32",
         targets=["q_proj", "v_proj", "down_proj"], r=4, alpha=8, rslora=False, dora=True, batch=2, base_seed=1, seed=3,
         desc="Llama, tied (same base as llama_lora), DoRA r=4 alpha=8 (s=2) on q,v,down; magnitude != row norms; B=2"),
    dict(name="qwen2_lora_all", model_type="qwen2", tied=True, rope_scaling=None, dtype="F32",
         targets=list(R.PROJECTIONS), r=2, alpha=8, rslora=False, dora=False, batch=3, base_seed=4, seed=4,
         desc="Qwen2 (q/k/v biases), tied, LoRA r=2 alpha=8 (s=4) on all seven projections; B=3"),
    dict(name="qwen2_dora_all", model_type="qwen2", tied=True, rope_scaling=None, dtype="F32",
         targets=list(R.PROJECTIONS), r=2, alpha=4, rslora=True, dora=True, batch=2, base_seed=4, seed=5,
         desc="Qwen2 (q/k/v biases), tied (same base as qwen2_lora_all), DoRA + rsLoRA r=2 alpha=4 (s=2*sqrt2) on all seven projections; magnitude != row norms; B=2"),
    dict(name="llama_lora_bf16", model_type="llama", tied=True, rope_scaling=None, dtype="BF16",
         targets=["q_proj", "k_proj", "v_proj", "o_proj"], r=4, alpha=8, rslora=False, dora=False, batch=2, base_seed=1, seed=1,
         desc="llama_lora with its base weights rounded to BF16 (reference computes from the bf16 values widened to f64); same adapter (F32) and batch"),
    dict(name="mistral_window", model_type="mistral", tied=True, rope_scaling=None, dtype="F32",
         targets=list(R.PROJECTIONS), r=2, alpha=4, rslora=False, dora=False, batch=2, base_seed=6, seed=6,
         sliding_window=4, T=10,
         dims=dict(hidden_size=16, intermediate_size=12, num_hidden_layers=2, num_attention_heads=2,
                   num_key_value_heads=1, head_dim=8, vocab_size=29),
         desc="Mistral, sliding_window 4 < T = 10 (query i sees keys i-3..i), GQA 2/1 heads, tied, LoRA r=2 alpha=4 (s=2) on all seven projections; B=2 with right padding"),
]

SGD_LR = 0.1

# code14m_eval: Rust / Python / OpenSCAD snippets, tokenised with the model's own
# tokenizer (HF tokenizers, add_special_tokens=True so <s>=1 comes first).
CODE14M_SNIPPETS = [
    "fn main() {\n    let v: Vec<u32> = (1..10).map(|x| x * x).collect();\n    let total: u32 = v.iter().sum();\n    println!(\"sum of squares = {}\", total);\n}\n",
    "import bpy\n\n\ndef add_cube(name, size=2.0):\n    bpy.ops.mesh.primitive_cube_add(size=size)\n    obj = bpy.context.active_object\n    obj.name = name\n    return obj\n",
    "// a hollow box with a lid\nwall = 2;\ndifference() {\n    cube([40, 30, 20]);\n    translate([wall, wall, wall]) cube([40 - 2*wall, 30 - 2*wall, 20]);\n}\n",
    "impl Point {\n    pub fn distance(&self, other: &Point) -> f64 {\n        let dx = self.x - other.x;\n        let dy = self.y - other.y;\n        (dx * dx + dy * dy).sqrt()\n    }\n}\n",
]


def rows_batch(gen: torch.Generator, batch: int, T: int, vocab: int):
    """Right-padded batch: row 0 full length with a 3-token masked prompt; the others shorter."""
    lengths = [T, T - 3, T - 1][:batch]
    prompt = [3, 2, 0][:batch]
    ids, mask, labels = [], [], []
    for b in range(batch):
        L = lengths[b]
        row = [1] + torch.randint(2, vocab, (L - 1,), generator=gen).tolist()
        pad = T - L
        ids.append(row + [0] * pad)
        mask.append([1] * L + [0] * pad)
        lab = list(row)
        for t in range(prompt[b]):
            lab[t] = R.IGNORE_INDEX
        labels.append(lab + [R.IGNORE_INDEX] * pad)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def rand_model(cfg: R.Config, case: dict, gen: torch.Generator):
    """Random weights scaled so activations are O(1) and the logits far from uniform."""
    w = {}

    def normal(*shape, std=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * std

    # RMSNorm rescales the input anyway; std 0.3 keeps tied logits around std 1.7.
    w["model.embed_tokens.weight"] = normal(cfg.vocab_size, cfg.hidden_size, std=0.3)
    for i in range(cfg.num_hidden_layers):
        for p in R.PROJECTIONS:
            out, inn = cfg.proj_shape(p)
            w[R.proj_prefix(i, p) + ".weight"] = normal(out, inn, std=1.0 / math.sqrt(inn))
            if case["model_type"] == "qwen2" and p in ("q_proj", "k_proj", "v_proj"):
                w[R.proj_prefix(i, p) + ".bias"] = normal(out, std=0.5)
        w[f"model.layers.{i}.input_layernorm.weight"] = 1 + normal(cfg.hidden_size, std=0.2)
        w[f"model.layers.{i}.post_attention_layernorm.weight"] = 1 + normal(cfg.hidden_size, std=0.2)
    w["model.norm.weight"] = 1 + normal(cfg.hidden_size, std=0.2)
    if not cfg.tie_word_embeddings:
        w["lm_head.weight"] = normal(cfg.vocab_size, cfg.hidden_size, std=1.7 / math.sqrt(cfg.hidden_size))
    return w


def rand_adapter(cfg: R.Config, case: dict, w: dict, gen: torch.Generator) -> R.Adapter:
    """Nonzero A and B; DoRA magnitude = row norms of W + s*BA times (1 + 0.3 N(0,1))."""
    ad = R.Adapter()
    s = R.lora_scale(case["alpha"], case["r"], case["rslora"])
    r = case["r"]
    for i in range(cfg.num_hidden_layers):
        for p in case["targets"]:
            out, inn = cfg.proj_shape(p)
            A = (torch.rand(r, inn, generator=gen, dtype=torch.float64) * 2 - 1) / math.sqrt(inn)
            B = torch.randn(out, r, generator=gen, dtype=torch.float64) * (0.3 / s)
            A, B = A.float().double(), B.float().double()  # stored as F32
            m = None
            if case["dora"]:
                W = w[R.proj_prefix(i, p) + ".weight"]
                n = torch.linalg.norm(W + s * (B @ A), dim=1)
                m = (n * (1 + 0.3 * torch.randn(out, generator=gen, dtype=torch.float64))).float().double()
            ad.layers[(i, p)] = R.AdapterLayer(A=A, B=B, scale=s, m=m)
    return ad


def hf_config(cfg: R.Config, case: dict) -> dict:
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}[case["model_type"]]
    d = {
        "architectures": [arch],
        "model_type": case["model_type"],
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": cfg.rope_scaling,
        "max_position_embeddings": 128,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "torch_dtype": "bfloat16" if case["dtype"] == "BF16" else "float32",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
    }
    if case["model_type"] == "qwen2":
        del d["attention_bias"]  # Qwen2 always has q/k/v biases; the field does not exist there
        d["use_sliding_window"] = False
        d["sliding_window"] = None
    if case["model_type"] == "mistral":
        del d["attention_bias"], d["mlp_bias"]  # MistralConfig has neither; Mistral has no biases
        d["sliding_window"] = case.get("sliding_window")
    return d


def peft_config(case: dict) -> dict:
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": case["r"],
        "lora_alpha": case["alpha"],
        "lora_dropout": 0.0,
        "target_modules": list(case["targets"]),
        "use_dora": case["dora"],
        "use_rslora": case["rslora"],
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "base_model_name_or_path": "golden/" + case["name"],
        "inference_mode": True,
        "rank_pattern": {},
        "alpha_pattern": {},
        "modules_to_save": None,
    }


def write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def write_batch(path: str, batch: dict) -> None:
    # one row per line: compact but diff-friendly
    lines = ["{"]
    keys = ["input_ids", "attention_mask", "labels"]
    for k_i, k in enumerate(keys):
        rows = ",\n  ".join(json.dumps(r, separators=(",", ":")) for r in batch[k])
        lines.append(f' "{k}": [\n  {rows}\n ]' + ("," if k_i < len(keys) - 1 else ""))
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def make_case(out_root: str, case: dict) -> None:
    base_gen = torch.Generator().manual_seed(100 + case["base_seed"])
    gen = torch.Generator().manual_seed(1000 + case["seed"])
    theta = 1_000_000.0 if case["model_type"] == "qwen2" else 10000.0
    cfg = R.Config(model_type=case["model_type"], rms_norm_eps=1e-6 if case["model_type"] == "qwen2" else 1e-5,
                   rope_theta=theta, rope_scaling=case["rope_scaling"], tie_word_embeddings=case["tied"],
                   **case.get("dims", TINY))
    w = rand_model(cfg, case, base_gen)  # cases with the same base_seed share byte-identical bases
    st_dtype = torch.bfloat16 if case["dtype"] == "BF16" else torch.float32
    stored = {k: v.to(st_dtype) for k, v in w.items()}
    w = {k: v.to(torch.float64) for k, v in stored.items()}  # reference uses exactly the stored values
    ad = rand_adapter(cfg, case, w, gen)
    batch = rows_batch(gen, case["batch"], case.get("T", 9), cfg.vocab_size)

    d = os.path.join(out_root, case["name"])
    os.makedirs(os.path.join(d, "adapter"), exist_ok=True)
    write_json(os.path.join(d, "config.json"), hf_config(cfg, case))
    R.write_safetensors(os.path.join(d, "model.safetensors"), stored, {"format": "pt"})
    write_json(os.path.join(d, "adapter", "adapter_config.json"), peft_config(case))
    R.write_safetensors(os.path.join(d, "adapter", "adapter_model.safetensors"),
                        {k: v.float() for k, v in ad.parameters()}, {"format": "pt"})
    write_batch(os.path.join(d, "batch.json"), batch)

    # Re-read everything through the file readers so the goldens are computed from the files.
    cfg2, w2 = R.load_model(d)
    _, ad2 = R.load_adapter(os.path.join(d, "adapter"))
    ids = torch.tensor(batch["input_ids"])
    am = torch.tensor(batch["attention_mask"])
    labels = torch.tensor(batch["labels"])
    params = []
    for _, t in ad2.parameters():
        t.requires_grad_(True)
        params.append(t)
    logits = R.forward(cfg2, w2, ids, am, ad2)
    loss, ntok = R.causal_lm_loss(logits, labels)
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        base_loss, _ = R.causal_lm_loss(R.forward(cfg2, w2, ids, am, None), labels)
    expected = {"loss": loss.detach().reshape(1), "base_loss": base_loss.reshape(1), "logits": logits.detach()}
    keys = [k for k, _ in ad2.parameters()]
    for k, g in zip(keys, grads):
        expected["grad/" + k] = g
    R.write_safetensors(os.path.join(d, "expected.safetensors"), expected,
                        {"tokens": str(ntok), "generator": "tools/reference/make_goldens.py"})
    info = {"description": case["desc"], "tokens": ntok, "loss": float(loss), "base_loss": float(base_loss)}
    if case.get("sgd"):
        step = {k: (p.detach() - SGD_LR * g) for k, p, g in zip(keys, params, grads)}
        R.write_safetensors(os.path.join(d, "sgd_step.safetensors"), step,
                            {"optimizer": "sgd", "lr": str(SGD_LR), "weight_decay": "0"})
        info["sgd_step"] = {"optimizer": "sgd", "lr": SGD_LR, "weight_decay": 0.0, "momentum": 0.0}
    write_json(os.path.join(d, "case.json"), info)
    print(f"{case['name']}: loss {float(loss):.6f} base {float(base_loss):.6f} tokens {ntok}")


# Token ids of CODE14M_SNIPPETS (tokenize_llama2.js); kept here so regeneration needs no Node.
CODE14M_IDS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "code14m_ids.json")


def make_code14m(out_root: str, shared: str) -> None:
    mdir = os.path.join(shared, "models", "code14m")
    if not os.path.isdir(mdir):
        print(f"skipping code14m_eval: {mdir} not found")
        return
    with open(CODE14M_IDS_FILE) as f:
        all_ids = json.load(f)
    if len(all_ids) != len(CODE14M_SNIPPETS):
        raise SystemExit(f"{CODE14M_IDS_FILE}: {len(all_ids)} rows, expected {len(CODE14M_SNIPPETS)}; rerun tokenize_llama2.js")
    cfg, w = R.load_model(mdir)
    rows = []
    total_nll, total_tok = 0.0, 0
    per_row = []
    for i, ids in enumerate(all_ids):
        if not (30 <= len(ids) <= 80) or ids[0] != 1:
            raise SystemExit(f"code14m row {i}: {len(ids)} tokens (want 30..80, BOS first)")
        row = {"input_ids": ids}
        labels = list(ids)
        if i % 2 == 1:  # rows 1 and 3: explicit labels with the first 8 tokens masked (a "prompt")
            labels = [R.IGNORE_INDEX] * 8 + ids[8:]
            row["labels"] = labels
        rows.append(row)
        with torch.no_grad():
            logits = R.forward(cfg, w, torch.tensor([ids]))
            loss, n = R.causal_lm_loss(logits, torch.tensor([labels]))
        total_nll += float(loss) * n
        total_tok += n
        per_row.append({"tokens": n, "loss": float(loss)})
    d = os.path.join(out_root, "code14m_eval")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "rows.jsonl"), "w") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
    mean = total_nll / total_tok
    write_json(os.path.join(d, "expected.json"),
               {"loss": mean, "perplexity": math.exp(mean), "tokens": total_tok, "rows": per_row,
                "model": "../shared/models/code14m (bf16 widened to f64)"})
    write_json(os.path.join(d, "case.json"), {"description": "code14m (real model) token-weighted mean loss over rows.jsonl; Rust, Blender Python, OpenSCAD snippets"})
    print(f"code14m_eval: loss {mean:.6f} ppl {math.exp(mean):.4f} tokens {total_tok}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(root, "model", "testdata", "golden"))
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    ap.add_argument("--write-snippets", metavar="FILE", help="write CODE14M_SNIPPETS as JSON (input of tokenize_llama2.js) and exit")
    args = ap.parse_args()
    if args.write_snippets:
        with open(args.write_snippets, "w") as f:
            json.dump(CODE14M_SNIPPETS, f)
        return
    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    for case in CASES:
        make_case(args.out, case)
    make_code14m(args.out, args.shared)


if __name__ == "__main__":
    main()
