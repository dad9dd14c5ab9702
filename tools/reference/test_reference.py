"""Checks of the reference itself. Run: /usr/bin/python3 -m unittest tools/reference/test_reference.py -v"""

import json
import math
import os
import sys
import tempfile
import unittest

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared")


def tiny(model_type="llama", tied=True, rope_scaling=None):
    cfg = R.Config(model_type=model_type, hidden_size=8, intermediate_size=6, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, head_dim=2, vocab_size=7, rms_norm_eps=1e-5,
                   rope_theta=10000.0, rope_scaling=rope_scaling, tie_word_embeddings=tied)
    g = torch.Generator().manual_seed(7)
    w = {"model.embed_tokens.weight": torch.randn(7, 8, generator=g, dtype=torch.float64)}
    for i in range(2):
        for p in R.PROJECTIONS:
            o, n = cfg.proj_shape(p)
            w[R.proj_prefix(i, p) + ".weight"] = torch.randn(o, n, generator=g, dtype=torch.float64) / math.sqrt(n)
            if model_type == "qwen2" and p in ("q_proj", "k_proj", "v_proj"):
                w[R.proj_prefix(i, p) + ".bias"] = torch.randn(o, generator=g, dtype=torch.float64) * 0.3
        w[f"model.layers.{i}.input_layernorm.weight"] = 1 + 0.1 * torch.randn(8, generator=g, dtype=torch.float64)
        w[f"model.layers.{i}.post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(8, generator=g, dtype=torch.float64)
    w["model.norm.weight"] = 1 + 0.1 * torch.randn(8, generator=g, dtype=torch.float64)
    if not tied:
        w["lm_head.weight"] = torch.randn(7, 8, generator=g, dtype=torch.float64) / math.sqrt(8)
    return cfg, w, g


def rand_adapter(cfg, w, g, targets, dora, r=2, scale=1.5):
    ad = R.Adapter()
    for i in range(cfg.num_hidden_layers):
        for p in targets:
            o, n = cfg.proj_shape(p)
            A = torch.randn(r, n, generator=g, dtype=torch.float64) * 0.3
            B = torch.randn(o, r, generator=g, dtype=torch.float64) * 0.3
            m = None
            if dora:
                m = torch.linalg.norm(w[R.proj_prefix(i, p) + ".weight"], dim=1) * (1 + 0.2 * torch.rand(o, generator=g, dtype=torch.float64))
            ad.layers[(i, p)] = R.AdapterLayer(A=A, B=B, scale=scale, m=m)
    return ad


BATCH_IDS = torch.tensor([[1, 3, 4, 5, 6], [1, 2, 6, 0, 0]])
BATCH_MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
BATCH_LABELS = torch.tensor([[-100, -100, 4, 5, 6], [1, 2, 6, -100, -100]])


class SafetensorsTest(unittest.TestCase):
    def test_roundtrip_all_dtypes(self):
        ts = {
            "f64": torch.randn(3, 2, dtype=torch.float64),
            "f32": torch.randn(5, dtype=torch.float32),
            "bf16": torch.randn(2, 3).to(torch.bfloat16),
            "f16": torch.randn(4).half(),
            "i64": torch.arange(6).reshape(2, 3),
            "empty": torch.zeros(0, dtype=torch.float32),
        }
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.safetensors")
            R.write_safetensors(p, ts, {"k": "v"})
            back = R.read_safetensors(p)
            with open(p, "rb") as f:
                hlen = int.from_bytes(f.read(8), "little")
            self.assertEqual(hlen % 8, 0)
        self.assertEqual(set(back), set(ts))
        for k, t in ts.items():
            self.assertEqual(back[k].dtype, t.dtype, k)
            self.assertEqual(list(back[k].shape), list(t.shape), k)
            self.assertTrue(torch.equal(back[k], t), k)

    def test_bf16_bits(self):
        # 1.0 is 0x3F80 in bf16; check the byte layout matches the format (little endian).
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.safetensors")
            R.write_safetensors(p, {"a": torch.tensor([1.0, -2.0]).to(torch.bfloat16)})
            with open(p, "rb") as f:
                raw = f.read()
        self.assertEqual(raw[-4:], bytes([0x80, 0x3F, 0x00, 0xC0]))


class FormulaTest(unittest.TestCase):
    def test_loss_matches_cross_entropy(self):
        logits = torch.randn(2, 5, 7, dtype=torch.float64)
        loss, n = R.causal_lm_loss(logits, BATCH_LABELS)
        ref = F.cross_entropy(logits[:, :-1].reshape(-1, 7), BATCH_LABELS[:, 1:].reshape(-1), ignore_index=-100)
        self.assertEqual(n, 5)
        self.assertAlmostEqual(float(loss), float(ref), places=12)

    def test_right_padding_does_not_change_real_positions(self):
        for mt in ("llama", "qwen2"):
            cfg, w, g = tiny(mt)
            ad = rand_adapter(cfg, w, g, R.PROJECTIONS, dora=True)
            full = R.forward(cfg, w, BATCH_IDS, BATCH_MASK, ad)
            alone = R.forward(cfg, w, BATCH_IDS[1:, :3], None, ad)
            self.assertTrue(torch.allclose(full[1, :3], alone[0], atol=1e-12, rtol=0), mt)
            # and the padded row's pad tokens do not influence anything real
            other = BATCH_IDS.clone()
            other[1, 3:] = 5
            full2 = R.forward(cfg, w, other, BATCH_MASK, ad)
            self.assertTrue(torch.allclose(full[:, :3], full2[:, :3], atol=1e-12, rtol=0))

    def test_causal(self):
        cfg, w, _ = tiny()
        a = R.forward(cfg, w, BATCH_IDS[:1])
        ids = BATCH_IDS[:1].clone()
        ids[0, 4] = 2
        b = R.forward(cfg, w, ids)
        self.assertTrue(torch.allclose(a[0, :4], b[0, :4], atol=1e-12, rtol=0))
        self.assertFalse(torch.allclose(a[0, 4], b[0, 4]))

    def test_sliding_window(self):
        cfg, w, _ = tiny(model_type="mistral")
        full = R.forward(cfg, w, BATCH_IDS[:1])
        for W in (5, 9):  # a window as long as the sequence changes nothing
            wide = R.Config(**{**cfg.__dict__, "layer_windows": [W, W]})
            self.assertTrue(torch.allclose(R.forward(wide, w, BATCH_IDS[:1]), full, atol=1e-12, rtol=0))
        win = R.Config(**{**cfg.__dict__, "layer_windows": [2, 2]})
        a = R.forward(win, w, BATCH_IDS[:1])
        self.assertTrue(torch.allclose(a[0, :2], full[0, :2], atol=1e-12, rtol=0))  # i < W: all keys seen
        self.assertFalse(torch.allclose(a[0, 2:], full[0, 2:]))
        # token 0 is outside the window of positions >= 2 in both layers... and of 3, 4
        # in the second layer too: changing it leaves positions 3 and 4 unchanged
        ids = BATCH_IDS[:1].clone()
        ids[0, 0] = 2
        b = R.forward(win, w, ids)
        self.assertTrue(torch.allclose(a[0, 3:], b[0, 3:], atol=1e-12, rtol=0))
        self.assertFalse(torch.allclose(a[0, 2], b[0, 2]))

    def test_layer_windows_as_transformers(self):
        d = {"model_type": "mistral", "num_hidden_layers": 3}
        self.assertEqual(R.layer_windows(d), [4096] * 3)
        self.assertIsNone(R.layer_windows({**d, "sliding_window": None}))
        q = {"model_type": "qwen2", "num_hidden_layers": 3, "sliding_window": 5, "max_window_layers": 1}
        self.assertIsNone(R.layer_windows(q))
        self.assertEqual(R.layer_windows({**q, "use_sliding_window": True}), [None, 5, 5])
        self.assertIsNone(R.layer_windows({"model_type": "llama", "num_hidden_layers": 3, "sliding_window": 5}))

    def test_gqa_equals_mha_with_duplicated_kv(self):
        cfg, w, _ = tiny()
        mha = R.Config(**{**cfg.__dict__, "num_key_value_heads": 4})
        w2 = dict(w)
        hd = cfg.head_dim
        for i in range(cfg.num_hidden_layers):
            for p in ("k_proj", "v_proj"):
                W = w[R.proj_prefix(i, p) + ".weight"].view(2, hd, -1)
                # query heads 0,1 share kv head 0; 2,3 share kv head 1 (HF repeat_kv)
                w2[R.proj_prefix(i, p) + ".weight"] = W.repeat_interleave(2, dim=0).reshape(4 * hd, -1)
        a = R.forward(cfg, w, BATCH_IDS, BATCH_MASK)
        b = R.forward(mha, w2, BATCH_IDS, BATCH_MASK)
        self.assertTrue(torch.allclose(a, b, atol=1e-12, rtol=0))

    def test_llama3_rope_bands(self):
        cfg = R.Config(model_type="llama", hidden_size=32, intermediate_size=4, num_hidden_layers=1,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=8, vocab_size=3, rms_norm_eps=1e-5,
                       rope_theta=10000.0, tie_word_embeddings=True,
                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
        inv = R.rope_inv_freq(cfg)
        base = torch.tensor([1.0, 0.1, 0.01, 0.001], dtype=torch.float64)
        # wavelengths 2pi (< 16: kept), 62.8 (between 16 and 64: blended), 628 and 6283 (> 64: divided by 8)
        self.assertAlmostEqual(float(inv[0]), 1.0, places=15)
        smooth = (64 / (2 * math.pi / 0.1) - 1) / 3
        self.assertAlmostEqual(float(inv[1]), (1 - smooth) * 0.1 / 8 + smooth * 0.1, places=15)
        self.assertTrue(torch.allclose(inv[2:], base[2:] / 8, rtol=1e-14, atol=0))

    def test_zero_b_equals_base(self):
        for mt in ("llama", "qwen2"):
            cfg, w, g = tiny(mt, tied=False)
            base = R.forward(cfg, w, BATCH_IDS, BATCH_MASK)
            for dora in (False, True):
                ad = rand_adapter(cfg, w, g, R.PROJECTIONS, dora=dora)
                for (i, p), a in ad.layers.items():
                    a.B = torch.zeros_like(a.B)
                    if dora:  # m initialised to the row norms of W (+ s*BA, which is 0)
                        a.m = torch.linalg.norm(w[R.proj_prefix(i, p) + ".weight"], dim=1)
                out = R.forward(cfg, w, BATCH_IDS, BATCH_MASK, ad)
                self.assertTrue(torch.allclose(out, base, atol=1e-12, rtol=0), (mt, dora))

    def test_dora_init_like_peft_equals_base_but_changes_with_b(self):
        cfg, w, g = tiny("qwen2")
        ad = R.init_adapter_like_peft(cfg, w, R.PROJECTIONS, r=2, alpha=4, rslora=True, dora=True, gen=g)
        base = R.forward(cfg, w, BATCH_IDS, BATCH_MASK)
        self.assertTrue(torch.allclose(R.forward(cfg, w, BATCH_IDS, BATCH_MASK, ad), base, atol=1e-12, rtol=0))
        ad.layers[(0, "q_proj")].B += 0.1
        self.assertFalse(torch.allclose(R.forward(cfg, w, BATCH_IDS, BATCH_MASK, ad), base, atol=1e-6, rtol=0))

    def test_dora_merge_equals_forward(self):
        # Merged weight (m/||W+sBA||) (W + sBA) must give the same logits (eval, no dropout).
        cfg, w, g = tiny("qwen2")
        ad = rand_adapter(cfg, w, g, R.PROJECTIONS, dora=True)
        out = R.forward(cfg, w, BATCH_IDS, BATCH_MASK, ad)
        merged = dict(w)
        for (i, p), a in ad.layers.items():
            Wp = w[R.proj_prefix(i, p) + ".weight"] + a.scale * a.B @ a.A
            merged[R.proj_prefix(i, p) + ".weight"] = (a.m / torch.linalg.norm(Wp, dim=1))[:, None] * Wp
        self.assertTrue(torch.allclose(R.forward(cfg, merged, BATCH_IDS, BATCH_MASK), out, atol=1e-10, rtol=0))

    def test_dora_dropout_follows_peft(self):
        # With dropout active, PEFT's DoRA uses W(drop(x)) (no bias) for the (m/n - 1) term.
        g = torch.Generator().manual_seed(3)
        W = torch.randn(5, 4, generator=g, dtype=torch.float64)
        b = torch.randn(5, generator=g, dtype=torch.float64)
        a = R.AdapterLayer(A=torch.randn(2, 4, generator=g, dtype=torch.float64),
                           B=torch.randn(5, 2, generator=g, dtype=torch.float64), scale=2.0,
                           m=torch.rand(5, generator=g, dtype=torch.float64) + 1, dropout=0.5)
        x = torch.randn(3, 4, generator=g, dtype=torch.float64)
        y = R.adapted_linear(x, W, b, a, training=True, dropout_gen=torch.Generator().manual_seed(9))
        keep = (torch.rand(x.shape, generator=torch.Generator().manual_seed(9), dtype=x.dtype) >= 0.5).double()
        xd = x * keep * 2
        n = torch.linalg.norm(W + 2.0 * a.B @ a.A, dim=1)
        gsc = a.m / n
        want = x @ W.t() + b + (gsc - 1) * (xd @ W.t()) + gsc * 2.0 * (xd @ a.A.t() @ a.B.t())
        self.assertTrue(torch.allclose(y, want, atol=1e-12, rtol=0))


class GradcheckTest(unittest.TestCase):
    def _check(self, model_type, tied, targets, dora, rope_scaling=None):
        cfg, w, g = tiny(model_type, tied, rope_scaling)
        ad = rand_adapter(cfg, w, g, targets, dora)
        keys = sorted(ad.layers)
        # DoRA: PEFT differentiates with the norm n held constant (detached). To compare
        # with finite differences, n is fixed at its value at the evaluation point.
        norms = None
        if dora:
            norms = {k: torch.linalg.norm(w[R.proj_prefix(*k) + ".weight"] + a.scale * a.B @ a.A, dim=1).detach()
                     for k, a in ad.layers.items()}
        flat = []
        for k in keys:
            a = ad.layers[k]
            flat += [a.A, a.B] + ([a.m] if dora else [])
        flat = [t.clone().requires_grad_(True) for t in flat]

        def fn(*ts):
            it = iter(ts)
            for k in keys:
                a = ad.layers[k]
                a.A, a.B = next(it), next(it)
                if dora:
                    a.m = next(it)
            logits = R.forward(cfg, w, BATCH_IDS, BATCH_MASK, ad, dora_norms=norms)
            return R.causal_lm_loss(logits, BATCH_LABELS)[0]

        self.assertTrue(torch.autograd.gradcheck(fn, flat, eps=1e-6, atol=1e-8, rtol=1e-6))

    def test_lora_llama_all(self):
        self._check("llama", True, R.PROJECTIONS, False)

    def test_lora_qwen2_untied_llama3_rope(self):
        self._check("qwen2", False, ("q_proj", "v_proj", "down_proj"), False,
                    {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 16})

    def test_dora_fixed_norm(self):
        self._check("qwen2", True, R.PROJECTIONS, True)

    def test_dora_norm_is_detached(self):
        # The autograd gradient of A/B with the computed (detached) norm equals the fixed-norm gradient.
        cfg, w, g = tiny("llama")
        ad = rand_adapter(cfg, w, g, ("q_proj", "down_proj"), dora=True)
        for a in ad.layers.values():
            a.A.requires_grad_(True)
            a.B.requires_grad_(True)
            a.m.requires_grad_(True)
        params = [t for a in ad.layers.values() for t in (a.A, a.B, a.m)]
        g1 = torch.autograd.grad(R.causal_lm_loss(R.forward(cfg, w, BATCH_IDS, BATCH_MASK, ad), BATCH_LABELS)[0], params)
        norms = {k: torch.linalg.norm(w[R.proj_prefix(*k) + ".weight"] + a.scale * (a.B @ a.A).detach(), dim=1).detach()
                 for k, a in ad.layers.items()}
        g2 = torch.autograd.grad(R.causal_lm_loss(R.forward(cfg, w, BATCH_IDS, BATCH_MASK, ad, dora_norms=norms), BATCH_LABELS)[0], params)
        for x, y in zip(g1, g2):
            self.assertTrue(torch.allclose(x, y, atol=1e-14, rtol=0))


class Code14mTest(unittest.TestCase):
    def test_real_model_is_sane(self):
        d = os.path.join(SHARED, "models", "code14m")
        if not os.path.isdir(d):
            self.skipTest("../shared/models/code14m not present")
        cfg, w = R.load_model(d)
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "code14m_ids.json")) as f:
            rows = json.load(f)

        def mean_loss():
            tot, n = 0.0, 0
            for r in rows:
                ids = torch.tensor([r])
                loss, k = R.causal_lm_loss(R.forward(cfg, w, ids), ids)
                tot, n = tot + float(loss) * k, n + k
            return tot / n

        loss = mean_loss()
        # A trained code model: far below the uniform ln(32000) = 10.4 (README: 3.4 on held-out Python).
        self.assertLess(loss, 3.2)
        # interleaved (GPT-J) RoPE instead of rotate_half must be clearly worse
        orig = R.rotate_half
        try:
            R.rotate_half = lambda x: torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).flatten(-2)
            cs_orig = R.rope_cos_sin

            def cs(cfg_, T, dtype=torch.float64):
                c, s = cs_orig(cfg_, T, dtype)
                h = c.shape[-1] // 2
                return c[..., :h].repeat_interleave(2, -1), s[..., :h].repeat_interleave(2, -1)
            R.rope_cos_sin = cs
            bad = mean_loss()
        finally:
            R.rotate_half = orig
            R.rope_cos_sin = cs_orig
        self.assertGreater(bad, loss + 0.2)


GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "model", "testdata", "golden")


class GoldensTest(unittest.TestCase):
    """The committed goldens agree with the reference as it is now (catches stale files)."""

    def test_cases(self):
        cases = [c for c in sorted(os.listdir(GOLDEN)) if os.path.exists(os.path.join(GOLDEN, c, "expected.safetensors"))]
        self.assertGreaterEqual(len(cases), 6)
        for c in cases:
            d = os.path.join(GOLDEN, c)
            cfg, w = R.load_model(d)
            _, ad = R.load_adapter(os.path.join(d, "adapter"))
            with open(os.path.join(d, "batch.json")) as f:
                b = json.load(f)
            exp = R.read_safetensors(os.path.join(d, "expected.safetensors"))
            params = [t.requires_grad_(True) for _, t in ad.parameters()]
            logits = R.forward(cfg, w, torch.tensor(b["input_ids"]), torch.tensor(b["attention_mask"]), ad)
            loss, _ = R.causal_lm_loss(logits, torch.tensor(b["labels"]))
            grads = torch.autograd.grad(loss, params)
            self.assertAlmostEqual(float(loss), float(exp["loss"][0]), places=12, msg=c)
            self.assertTrue(torch.allclose(logits, exp["logits"], atol=1e-12, rtol=0), c)
            for (k, _), g in zip(ad.parameters(), grads):
                self.assertTrue(torch.allclose(g, exp["grad/" + k], atol=1e-12, rtol=0), (c, k))
            sgd = os.path.join(d, "sgd_step.safetensors")
            if os.path.exists(sgd):
                st = R.read_safetensors(sgd)
                for (k, p), g in zip(ad.parameters(), grads):
                    self.assertTrue(torch.allclose(st[k], p.detach() - 0.1 * g, atol=1e-14, rtol=0), (c, k))


if __name__ == "__main__":
    unittest.main()
