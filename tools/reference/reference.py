"""A small, readable PyTorch reference of HF Llama / Qwen2 decoders with
LoRA, rsLoRA and DoRA adapters (PEFT semantics), used to write golden files.

Everything is computed in float64 by default; weights read from F32/BF16
files are widened exactly, so the only differences to HF transformers in
float32 are HF's own rounding errors.

Conventions (each matches HF transformers / PEFT; see README.md):
  * RMSNorm: x * rsqrt(mean(x^2) + eps) * w.
  * RoPE: rotate_half layout (first half / second half of each head),
    inv_freq[i] = theta^(-2i/d), position ids 0..T-1 for every row
    (right padding), optional "llama3" / "linear" rope_scaling.
  * Attention: grouped-query, kv head h // (H/KV) serves query head h,
    scale 1/sqrt(head_dim), causal and key-padding mask, softmax. Layers
    with a sliding window W (Mistral's sliding_window, 4096 when absent;
    Qwen2's with use_sliding_window in the layers layer_types or
    max_window_layers name) also mask keys j <= i - W.
  * MLP: down(silu(gate(x)) * up(x)).
  * Adapters on any of q,k,v,o,gate,up,down:
      LoRA:  y = W x + b + s * B(A(drop(x)))
      DoRA:  n = ||W + s*B@A||_row (B@A and n detached), g = m / n
             y = W x + b + (g - 1) * (W x') + g * s * B(A(x'))
             where x' = drop(x) when dropout is active (training), else x
             (PEFT then recomputes W x' without bias; in eval W x' = W x).
    s = alpha / r, or alpha / sqrt(r) for rsLoRA.
  * Loss: logits at t predict labels[t+1]; -100 is ignored; mean over all
    non-ignored tokens of the batch (token-weighted).

No external safetensors package: read_safetensors / write_safetensors are
implemented here (8-byte little-endian header length, JSON header, raw data).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ATTN_PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")
IGNORE_INDEX = -100

# ---------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------

_ST_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """Reads every tensor of a .safetensors file into CPU tensors of the stored dtype."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors header")
    (hlen,) = struct.unpack("<Q", raw[:8])
    if 8 + hlen > len(raw):
        raise ValueError(f"{path}: header length {hlen} exceeds file size {len(raw)}")
    header = json.loads(raw[8 : 8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        shape = list(info["shape"])
        buf = bytearray(raw[base + start : base + end])
        if dtype == torch.bfloat16:
            # numpy has no bfloat16: read the bit patterns and reinterpret.
            bits = torch.from_numpy(np.frombuffer(buf, dtype="<i2").copy())
            t = bits.view(torch.bfloat16)
        elif len(buf) == 0:
            t = torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(buf, dtype=dtype)
        n = 1
        for d in shape:
            n *= d
        if t.numel() != n:
            raise ValueError(f"{path}: tensor {name}: {t.numel()} elements for shape {shape}")
        out[name] = t.reshape(shape)
    return out


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes tensors (names sorted, data contiguous in that order) to path atomically."""
    names = sorted(tensors)
    header = {}
    chunks = []
    offset = 0
    for name in names:
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in _ST_NAMES:
            raise ValueError(f"tensor {name}: unsupported dtype {t.dtype}")
        if t.dtype == torch.bfloat16:
            data = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            data = t.numpy().tobytes()
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = dict(metadata)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)  # pad so data starts 8-aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------


@dataclass
class Config:
    model_type: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: Optional[dict]
    tie_word_embeddings: bool
    # per-layer sliding window (None: full attention), as transformers builds it
    layer_windows: Optional[List[Optional[int]]] = None

    def window(self, layer: int) -> Optional[int]:
        return self.layer_windows[layer] if self.layer_windows else None

    @staticmethod
    def from_dict(d: dict) -> "Config":
        mt = d["model_type"]
        if mt not in ("llama", "qwen2", "mistral"):
            raise ValueError(f"config.json: model_type {mt!r}: expected llama, qwen2 or mistral")
        heads = d["num_attention_heads"]
        return Config(
            model_type=mt,
            hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"],
            num_hidden_layers=d["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=d.get("num_key_value_heads") or heads,
            head_dim=d.get("head_dim") or d["hidden_size"] // heads,
            vocab_size=d["vocab_size"],
            rms_norm_eps=d.get("rms_norm_eps", 1e-6),
            rope_theta=d.get("rope_theta", 10000.0),
            rope_scaling=d.get("rope_scaling"),
            tie_word_embeddings=d.get("tie_word_embeddings", False),
            layer_windows=layer_windows(d),
        )

    @staticmethod
    def load(model_dir: str) -> "Config":
        with open(os.path.join(model_dir, "config.json")) as f:
            return Config.from_dict(json.load(f))

    def proj_shape(self, proj: str) -> Tuple[int, int]:
        """(out, in) of a projection's weight."""
        h, i, hd = self.hidden_size, self.intermediate_size, self.head_dim
        return {
            "q_proj": (self.num_attention_heads * hd, h),
            "k_proj": (self.num_key_value_heads * hd, h),
            "v_proj": (self.num_key_value_heads * hd, h),
            "o_proj": (h, self.num_attention_heads * hd),
            "gate_proj": (i, h),
            "up_proj": (i, h),
            "down_proj": (h, i),
        }[proj]


def layer_windows(d: dict) -> Optional[List[Optional[int]]]:
    """Per-layer sliding windows of a config.json dict (transformers' MistralConfig and
    Qwen2Config), or None when every layer attends fully."""
    n = d["num_hidden_layers"]
    if d["model_type"] == "mistral":
        w = d.get("sliding_window", 4096)
        return [w] * n if w is not None else None
    if d["model_type"] == "qwen2" and d.get("use_sliding_window", False):
        w = d.get("sliding_window", 4096)
        if w is None:
            return None
        types = d.get("layer_types") or ["sliding_attention" if i >= d.get("max_window_layers", 28) else "full_attention"
                                         for i in range(n)]
        return [w if t == "sliding_attention" else None for t in types]
    return None


def proj_prefix(layer: int, proj: str) -> str:
    """HF module path of a projection, e.g. model.layers.0.self_attn.q_proj."""
    block = "self_attn" if proj in ATTN_PROJ else "mlp"
    return f"model.layers.{layer}.{block}.{proj}"


def load_model(model_dir: str, dtype=torch.float64) -> Tuple[Config, Dict[str, torch.Tensor]]:
    """Loads config.json and model.safetensors; weights are widened to dtype."""
    cfg = Config.load(model_dir)
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    return cfg, {k: v.to(dtype) for k, v in w.items()}


# ---------------------------------------------------------------------------
# adapters (PEFT format)
# ---------------------------------------------------------------------------


def peft_key(layer: int, proj: str, kind: str) -> str:
    """PEFT tensor name; kind is lora_A, lora_B or magnitude."""
    base = "base_model.model." + proj_prefix(layer, proj)
    if kind == "magnitude":
        return base + ".lora_magnitude_vector"
    return f"{base}.{kind}.weight"


_PEFT_RE = re.compile(
    r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.(lora_A\.weight|lora_B\.weight|lora_magnitude_vector)$"
)


@dataclass
class AdapterLayer:
    """One adapted projection: A [r, in], B [out, r], optional DoRA magnitude m [out]."""

    A: torch.Tensor
    B: torch.Tensor
    scale: float
    m: Optional[torch.Tensor] = None
    dropout: float = 0.0


@dataclass
class Adapter:
    layers: Dict[Tuple[int, str], AdapterLayer] = field(default_factory=dict)

    def parameters(self):
        """(peft key, tensor) for every trainable tensor, in a fixed order."""
        for (layer, proj) in sorted(self.layers, key=lambda k: (k[0], PROJECTIONS.index(k[1]))):
            a = self.layers[(layer, proj)]
            yield peft_key(layer, proj, "lora_A"), a.A
            yield peft_key(layer, proj, "lora_B"), a.B
            if a.m is not None:
                yield peft_key(layer, proj, "magnitude"), a.m


def lora_scale(alpha: float, r: int, rslora: bool) -> float:
    return alpha / math.sqrt(r) if rslora else alpha / r


def _pattern_lookup(pattern: dict, module: str):
    """rank_pattern / alpha_pattern lookup: a key matches a module whose name equals it or ends with '.'+key."""
    for key, val in (pattern or {}).items():
        if module == key or module.endswith("." + key) or re.fullmatch(r"(.*\.)?" + key, module):
            return val
    return None


def load_adapter(adapter_dir: str, dtype=torch.float64) -> Tuple[dict, Adapter]:
    """Reads adapter_config.json + adapter_model.safetensors (PEFT LoRA format)."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    tensors = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    parts: Dict[Tuple[int, str], dict] = {}
    for name, t in tensors.items():
        mm = _PEFT_RE.match(name)
        if not mm:
            raise ValueError(f"{adapter_dir}: unexpected tensor {name}")
        layer, proj, kind = int(mm.group(1)), mm.group(3), mm.group(4)
        parts.setdefault((layer, proj), {})[kind] = t.to(dtype)
    ad = Adapter()
    for (layer, proj), p in parts.items():
        module = proj_prefix(layer, proj)
        A, B = p["lora_A.weight"], p["lora_B.weight"]
        r = A.shape[0]
        alpha = _pattern_lookup(acfg.get("alpha_pattern"), module) or acfg["lora_alpha"]
        m = p.get("lora_magnitude_vector")
        if acfg.get("use_dora") and m is None:
            raise ValueError(f"{adapter_dir}: use_dora but no magnitude for {module}")
        ad.layers[(layer, proj)] = AdapterLayer(
            A=A, B=B, scale=lora_scale(alpha, r, bool(acfg.get("use_rslora"))), m=m,
            dropout=float(acfg.get("lora_dropout", 0.0)),
        )
    return acfg, ad


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_inv_freq(cfg: Config, dtype=torch.float64) -> torch.Tensor:
    """inv_freq[i] = theta^(-2i/d), i < d/2, with HF's rope_scaling variants."""
    d = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    rs = cfg.rope_scaling
    if rs:
        kind = rs.get("rope_type", rs.get("type", "default"))
        if kind == "default":
            pass
        elif kind == "linear":
            inv = inv / rs["factor"]
        elif kind == "llama3":
            factor = rs["factor"]
            lo, hi = rs["low_freq_factor"], rs["high_freq_factor"]
            old = rs["original_max_position_embeddings"]
            low_wl, high_wl = old / lo, old / hi
            wl = 2 * math.pi / inv
            # long wavelengths: divide by factor; short: keep; in between: blend.
            out = torch.where(wl > low_wl, inv / factor, inv)
            smooth = (old / wl - lo) / (hi - lo)
            blended = (1 - smooth) * out / factor + smooth * out
            medium = (wl >= high_wl) & (wl <= low_wl)
            inv = torch.where(medium, blended, out)
        else:
            raise ValueError(f"rope_scaling type {kind!r} not supported by the reference")
    return inv.to(dtype)


def rope_cos_sin(cfg: Config, T: int, dtype=torch.float64):
    inv = rope_inv_freq(cfg, torch.float64)
    pos = torch.arange(T, dtype=torch.float64)
    freqs = pos[:, None] * inv[None, :]  # [T, d/2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [T, d]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def adapted_linear(x, W, bias, ad: Optional[AdapterLayer], training: bool = False, dropout_gen=None,
                   dora_norm: Optional[torch.Tensor] = None):
    """One projection y = W x (+ bias) with an optional LoRA/DoRA adapter.

    dora_norm, if given, replaces the computed (detached) row norm; gradcheck uses
    it to differentiate the exact function PEFT differentiates.
    """
    base = x @ W.t()
    if ad is None:
        return base if bias is None else base + bias
    xd = x
    dropped = training and ad.dropout > 0
    if dropped:
        keep = (torch.rand(x.shape, generator=dropout_gen, dtype=x.dtype) >= ad.dropout).to(x.dtype)
        xd = x * keep / (1 - ad.dropout)
    lora = (xd @ ad.A.t()) @ ad.B.t()
    if ad.m is None:
        y = base + ad.scale * lora
    else:
        if dora_norm is None:
            delta = (ad.B @ ad.A).detach()
            n = torch.linalg.norm(W + ad.scale * delta, dim=1).detach()
        else:
            n = dora_norm
        g = ad.m / n
        base_d = (xd @ W.t()) if dropped else base
        y = base + (g - 1) * base_d + g * ad.scale * lora
    return y if bias is None else y + bias


def forward(cfg: Config, w: Dict[str, torch.Tensor], input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
            adapter: Optional[Adapter] = None, training: bool = False, dropout_gen=None, dora_norms=None) -> torch.Tensor:
    """Logits [B, T, V] of a Llama/Qwen2 decoder for right-padded input_ids [B, T]."""
    Bsz, T = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    am = attention_mask.bool()
    if not bool(am[:, 0].all()):
        raise ValueError("reference supports right padding only: attention_mask[:, 0] must be 1")
    dtype = w["model.embed_tokens.weight"].dtype
    H, KV, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    cos, sin = rope_cos_sin(cfg, T, dtype)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    allowed = causal[None, None, :, :] & am[:, None, None, :]  # [B,1,T(q),T(k)]
    qi, kj = torch.arange(T)[:, None], torch.arange(T)[None, :]

    def lin(x, layer, proj):
        pre = proj_prefix(layer, proj)
        ad = adapter.layers.get((layer, proj)) if adapter else None
        dn = dora_norms.get((layer, proj)) if dora_norms else None
        return adapted_linear(x, w[pre + ".weight"], w.get(pre + ".bias"), ad, training, dropout_gen, dn)

    h = w["model.embed_tokens.weight"][input_ids]
    for i in range(cfg.num_hidden_layers):
        pre = f"model.layers.{i}"
        x = rms_norm(h, w[pre + ".input_layernorm.weight"], cfg.rms_norm_eps)
        q = lin(x, i, "q_proj").view(Bsz, T, H, hd).transpose(1, 2)
        k = lin(x, i, "k_proj").view(Bsz, T, KV, hd).transpose(1, 2)
        v = lin(x, i, "v_proj").view(Bsz, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        ok = allowed
        if cfg.window(i) is not None:
            ok = allowed & (kj > qi - cfg.window(i))[None, None, :, :]  # i - W < j <= i
        if not bool(ok.any(dim=-1).all()):
            raise ValueError(f"layer {i}: a query row sees no key (padding past the window); use a wider window")
        scores = scores.masked_fill(~ok, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        att = (probs @ v).transpose(1, 2).reshape(Bsz, T, H * hd)
        h = h + lin(att, i, "o_proj")
        x = rms_norm(h, w[pre + ".post_attention_layernorm.weight"], cfg.rms_norm_eps)
        h = h + lin(F.silu(lin(x, i, "gate_proj")) * lin(x, i, "up_proj"), i, "down_proj")
    h = rms_norm(h, w["model.norm.weight"], cfg.rms_norm_eps)
    head = w["model.embed_tokens.weight"] if cfg.tie_word_embeddings else w["lm_head.weight"]
    return h @ head.t()


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """Token-weighted mean cross-entropy: logits[:, t] predicts labels[:, t+1]; -100 ignored."""
    # Like HF's ForCausalLMLoss: shift the labels left (pad with -100) instead of slicing the logits.
    shifted = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE_INDEX)], dim=1)
    n = int((shifted != IGNORE_INDEX).sum())
    if n == 0:
        raise ValueError("no label tokens to score")
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), shifted.reshape(-1),
                            ignore_index=IGNORE_INDEX, reduction="sum")
    return total / n, n


def init_adapter_like_peft(cfg: Config, w: Dict[str, torch.Tensor], targets, r: int, alpha: float, rslora: bool,
                           dora: bool, gen: torch.Generator, dtype=torch.float64) -> Adapter:
    """PEFT's default init: A Kaiming-uniform (a=sqrt 5, bound 1/sqrt(in)), B = 0, m = row norms of W."""
    ad = Adapter()
    s = lora_scale(alpha, r, rslora)
    for i in range(cfg.num_hidden_layers):
        for p in targets:
            out, inn = cfg.proj_shape(p)
            bound = 1.0 / math.sqrt(inn)
            A = (torch.rand(r, inn, generator=gen, dtype=torch.float64) * 2 - 1) * bound
            B = torch.zeros(out, r, dtype=torch.float64)
            m = None
            if dora:
                m = torch.linalg.norm(w[proj_prefix(i, p) + ".weight"].to(torch.float64), dim=1)
            ad.layers[(i, p)] = AdapterLayer(A=A.to(dtype), B=B.to(dtype), scale=s, m=None if m is None else m.to(dtype))
    return ad
