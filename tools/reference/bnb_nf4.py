"""A small port of bitsandbytes' reference NF4 / double-quantisation / INT8 algorithms,
used to write the golden file the Go package quant tests against
(quant/testdata/bnb_golden.safetensors). Not part of the product.

    /usr/bin/python3 tools/reference/bnb_nf4.py            # rewrites the golden
    /usr/bin/python3 tools/reference/bnb_nf4.py --check    # recomputes and compares

What is ported (bitsandbytes, read through its sources; written anew here):

- The NF4 code table of get_4bit_type("nf4") (16 f32 values, divided by their max |.|).
- quantize_4bit as bitsandbytes' pure-PyTorch backend ("default" ops, which is also
  what runs on CPU): flatten row-major, blocks of 64; per block absmax = max |x|;
  a full block is scaled by x * (1 / max(absmax, 1e-38)) and stores the unclamped
  absmax; the ragged last block is scaled by x / am with am = max(absmax, 1e-38) and
  stores am; scaled values are clamped to [-1, 1] and coded by bucketize against the
  f32 midpoints of the sorted table (a value equal to a midpoint takes the lower code);
  an odd count is padded with one 0.0; two codes per byte, the first in the high nibble.
- create_dynamic_map(signed=True): the 256-entry signed 8-bit dynamic map.
- Double quantisation (compress_statistics): offset = mean(absmax);
  quantize_blockwise(absmax - offset, dynamic map, block 256), same scaling and
  bucketize rules as above with the 255 midpoints of the map.
- Dequantisation: code[q] * absmax in f32; nested: absmax = code8[q8] * nested_absmax + offset.
- The serialised QuantState (as_dict(packed=True)): weight (U8 [(n+1)/2, 1]),
  weight.absmax, weight.quant_map, weight.nested_absmax, weight.nested_quant_map and
  weight.quant_state.bitsandbytes__nf4 (U8 bytes of json.dumps of the non-tensor items).

One deliberate pin: bitsandbytes takes the offset as torch.mean over the f32 absmax,
whose last bit depends on the backend's reduction order (CUDA tree, CPU cascade). Here
it is the f64 sum of the f32 values in index order, divided by n and rounded to f32,
so that Go reproduces it exactly (it agrees with torch.mean to within 1 ulp).

INT8 (docs/architecture.md, "Formulas"): per output row scale = max |row| / 127 (f32), q = round(w / scale)
with torch.round (half to even), clamped to [-127, 127]; an all-zero row has scale 0, q 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import read_safetensors, write_safetensors  # noqa: E402

NF4_VALUES = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]

TINY = 1e-38  # bitsandbytes clamps absmax from below by this before dividing


def nf4_code() -> torch.Tensor:
    t = torch.tensor(NF4_VALUES, dtype=torch.float32)
    return t / t.abs().max()


def dynamic_map_signed() -> torch.Tensor:
    """The signed 8-bit dynamic map (max_exponent_bits 7, total_bits 8)."""
    vals = []
    for i in range(7):
        items = 2 ** i + 1
        edges = torch.linspace(0.1, 1, items, dtype=torch.float32)
        mids = (edges[:-1] + edges[1:]) / 2.0
        scale = 10 ** (-6 + i)
        vals += (scale * mids).tolist()
        vals += (-scale * mids).tolist()
    vals += [0, 1.0]
    assert len(vals) == 256
    vals.sort()
    return torch.tensor(vals, dtype=torch.float32)


def midpoints(code: torch.Tensor) -> torch.Tensor:
    return (code[:-1] + code[1:]) / 2


def blockwise_scale(x: torch.Tensor, blocksize: int):
    """Returns (scaled values in [-1, 1], per-block absmax) as bitsandbytes' default backend."""
    n = x.numel()
    rem = n % blocksize
    full = n - rem
    blocks = full // blocksize
    head = x[:full].reshape(blocks, blocksize)
    absmax = head.abs().max(dim=-1)[0] if blocks else torch.empty(0, dtype=torch.float32)
    scaled = torch.clamp(head * (1.0 / absmax.clamp(min=TINY).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = x[full:].abs().max().clamp(min=TINY)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(x[full:] / am, -1, 1)])
    return scaled, absmax


def quantize_nf4(w: torch.Tensor, blocksize: int = 64):
    x = w.reshape(-1).float()
    scaled, absmax = blockwise_scale(x, blocksize)
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    q = torch.bucketize(scaled, midpoints(nf4_code()), out_int32=True).to(torch.uint8)
    packed = ((q[::2] << 4) | q[1::2]).unsqueeze(1)
    return packed, absmax


def quantize_blockwise(x: torch.Tensor, code: torch.Tensor, blocksize: int):
    scaled, absmax = blockwise_scale(x.reshape(-1).float(), blocksize)
    q = torch.bucketize(scaled, midpoints(code), out_int32=True).to(torch.uint8)
    return q, absmax


def pinned_mean(v: torch.Tensor) -> torch.Tensor:
    s = 0.0
    for a in v.tolist():  # f64 accumulation in index order (see module doc)
        s += a
    return torch.tensor(np.float32(s / v.numel()))


def double_quant(absmax: torch.Tensor, blocksize: int = 256):
    offset = pinned_mean(absmax)
    q, nested = quantize_blockwise(absmax - offset, dynamic_map_signed(), blocksize)
    return q, nested, offset


def dequant_absmax(q, nested, offset, blocksize=256):
    code = dynamic_map_signed()
    n = q.numel()
    vals = code[q.long()]
    idx = torch.arange(n) // blocksize
    return vals * nested[idx] + offset


def dequantize_nf4(packed, absmax, n, blocksize=64):
    codes = torch.empty(packed.numel() * 2, dtype=torch.long)
    flat = packed.reshape(-1).long()
    codes[0::2] = flat >> 4
    codes[1::2] = flat & 15
    vals = nf4_code()[codes[:n]]
    return vals * absmax[torch.arange(n) // blocksize]


def quantize_int8(w: torch.Tensor):
    w = w.float()
    scale = w.abs().max(dim=1)[0] / 127.0
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.clamp(torch.round(w / safe.view(-1, 1)), -127, 127)
    q = torch.where(scale.view(-1, 1) == 0, torch.zeros_like(q), q)
    return q.to(torch.int8), scale


def quant_state_json(shape, dtype: str, nested: bool, offset: float | None) -> bytes:
    d = {"quant_type": "nf4", "blocksize": 64, "dtype": dtype, "shape": list(shape)}
    if nested:
        d.update({"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": offset})
    return json.dumps(d).encode("utf-8")


def bnb_tensors(name: str, w: torch.Tensor, dtype: str, nested: bool):
    """The tensors bitsandbytes writes for one Linear4bit weight (as_dict(packed=True))."""
    packed, absmax = quantize_nf4(w)
    out = {name: packed, name + ".quant_map": nf4_code()}
    offset = None
    if nested:
        q, nab, off = double_quant(absmax)
        offset = off.item()
        out[name + ".absmax"] = q
        out[name + ".nested_absmax"] = nab
        out[name + ".nested_quant_map"] = dynamic_map_signed()
    else:
        out[name + ".absmax"] = absmax
    js = quant_state_json(w.shape, dtype, nested, offset)
    out[name + ".quant_state.bitsandbytes__nf4"] = torch.tensor(list(js), dtype=torch.uint8)
    return out


def tie_matrix() -> torch.Tensor:
    """Blocks that hit the boundaries: exact midpoints (absmax 1), all-zero blocks (full and
    tail), a negative absmax, values just either side of midpoints."""
    code = nf4_code()
    mids = midpoints(code)
    rows = []
    a = torch.zeros(64)
    a[0] = 1.0
    a[1:16] = mids
    a[16:31] = -mids
    a[31:46] = torch.nextafter(mids, torch.full_like(mids, 2.0))
    a[46:61] = torch.nextafter(mids, torch.full_like(mids, -2.0))
    rows.append(a)
    rows.append(torch.zeros(64))  # an all-zero full block
    b = torch.linspace(-3, 2.5, 64)
    b[5] = -3.5  # negative absmax
    rows.append(b)
    c = torch.zeros(64)
    c[:33] = torch.tensor(np.float32(0.3) * np.arange(-16, 17, dtype=np.float32))
    rows.append(c)
    t = torch.cat(rows + [torch.zeros(9)])  # 265 values: an all-zero 9-value tail block
    return t.reshape(5, 53)


def cases():
    g = torch.Generator().manual_seed(7)

    def normal(r, c, std=0.02):
        # rounded to bf16 so the bf16 input is exact
        return (torch.randn(r, c, generator=g) * std).to(torch.bfloat16)

    out = []
    for (r, c) in [(1, 1), (3, 17), (17, 63), (7, 65), (5, 257), (130, 130)]:
        out.append((f"n{r}x{c}", normal(r, c), "bfloat16"))
    big = normal(33, 100, std=1.0).float()
    big[3, :] *= 40  # a row with large values
    big[5, 7] = 0.0
    out.append(("wide33x100", big.to(torch.bfloat16), "bfloat16"))
    out.append(("ties5x53", tie_matrix(), "float32"))
    return out


def build() -> dict:
    tensors = {}
    for name, w, dtype in cases():
        tensors[f"{name}.input"] = w
        tensors.update(bnb_tensors(f"{name}.dq.weight", w, dtype, nested=True))
        tensors.update(bnb_tensors(f"{name}.plain.weight", w, dtype, nested=False))
        packed, absmax = quantize_nf4(w)
        q, nab, off = double_quant(absmax)
        tensors[f"{name}.dq.absmax_dequant"] = dequant_absmax(q, nab, off)
        qi, si = quantize_int8(w)
        tensors[f"{name}.int8.q"] = qi
        tensors[f"{name}.int8.scale"] = si
    return tensors


def self_check():
    # round trip of the ties matrix reproduces the code table exactly on the first block
    w = tie_matrix()
    packed, absmax = quantize_nf4(w)
    deq = dequantize_nf4(packed, absmax, w.numel())
    assert torch.equal(deq[:1], torch.tensor([1.0]))
    dm = dynamic_map_signed()
    assert dm.numel() == 256 and torch.all(dm[1:] > dm[:-1])
    # the pinned offset is within one ulp of torch.mean
    a = torch.rand(1000, dtype=torch.float32) * 0.05
    m1, m2 = pinned_mean(a).item(), a.mean().item()
    assert abs(m1 - m2) <= abs(np.spacing(np.float32(m1))), (m1, m2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "quant", "testdata", "bnb_golden.safetensors"))
    ap.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    args = ap.parse_args()
    self_check()
    tensors = build()
    if args.check:
        have = read_safetensors(args.out)
        bad = [k for k in tensors if k not in have or not torch.equal(have[k], tensors[k].reshape(have[k].shape))]
        if bad or set(have) != set(tensors):
            print("golden differs:", bad or sorted(set(have) ^ set(tensors)))
            sys.exit(1)
        print("golden is current")
        return
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    write_safetensors(args.out, tensors, {"generator": "tools/reference/bnb_nf4.py"})
    print(f"wrote {args.out}: {len(tensors)} tensors, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
