// check.mjs loads a GGUF model with llama.cpp (through node-llama-cpp's
// prebuilt CPU binaries, offline) and reports what llama.cpp makes of it, so
// that bidora's tests can compare it with bidora's own tokenizer and forward.
//
// Usage: node check.mjs request.json > result.json
//
// request: {
//   "model": "model.gguf",            // the GGUF to load
//   "lora": "adapter.gguf",           // optional GGUF LoRA adapter (scale 1)
//   "texts": ["def f(x):", ...],      // tokenised with special tokens parsed, no BOS added
//   "prompt": [1, 22, 333],           // token ids to evaluate
//   "generate": 32,                    // greedy tokens to decode after the prompt
//   "score": [1, 22, ...],            // token ids to score (perplexity) ...
//   "reference": "model-f16.gguf"     // ... and to compare with this model (KL divergence)
// }
// result: {
//   "tokens": [[...], ...],           // ids per text
//   "logprobs": [...],                // log-softmax of the logits after the prompt's last token
//   "greedy": [...],                  // greedy continuation (stops early only at the context's end)
//   "add_bos": true, "bos": 1, "eos": 2, "vocab": "...", "arch": "...",
//   "type": "llama ?B Q4_K - Medium",  // llama.cpp's description of the model
//   "score": {"tokens": n, "ppl": ..., "ref_ppl": ..., "kl": ..., "kl_max": ..., "top1": ...}
// }
//
// score is what llama-perplexity --kl-divergence reports: over the n−1
// predictions of the scored text, the perplexity exp(mean −log p(next)) of
// the model and of the reference, the mean and largest KL(reference ‖ model)
// of the next-token distributions, and the share of positions whose most
// likely token is the same.
//
// llama.cpp gives node-llama-cpp the next-token distribution as softmax
// probabilities of the raw logits (greedy sampling keeps every candidate), so
// the logits come back as log-probabilities: the logits up to a constant.
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

// logProbs evaluates tokens on a fresh context of m and returns, per
// position, the log-probabilities of the next token (a Float64Array each),
// in chunks so that only one chunk's maps are alive at a time.
async function* logProbs(m, tokens) {
    const context = await m.createContext({contextSize: Math.max(64, tokens.length + 8), batchSize: 128, sequences: 1, threads: 2});
    const seq = context.getSequence();
    const opts = {generateNext: {probabilities: true, options: {temperature: 0}}};
    try {
        for (let at = 0; at < tokens.length; at += 128) {
            const chunk = tokens.slice(at, at + 128);
            const res = await seq.controlledEvaluate(chunk.map((t) => [t, opts]));
            for (const r of res) {
                const lp = new Float64Array(r.next.probabilities.size).fill(-Infinity);
                for (const [tok, p] of r.next.probabilities)
                    lp[tok] = Math.log(p);
                yield lp;
            }
        }
    } finally {
        await context.dispose();
    }
}

async function score(tokens, referencePath) {
    const ref = referencePath ? await llama.loadModel({modelPath: referencePath, gpuLayers: 0}) : null;
    const a = logProbs(model, tokens);
    const b = ref ? logProbs(ref, tokens) : null;
    let nll = 0, refNll = 0, kl = 0, klMax = 0, top1 = 0, n = 0;
    const argmax = (v) => v.reduce((bi, x, i) => x > v[bi] ? i : bi, 0);
    for (let i = 0; i < tokens.length; i++) {
        const p = (await a.next()).value;
        const q = b ? (await b.next()).value : null;
        if (i === tokens.length - 1)
            break;
        n++;
        nll -= p[tokens[i + 1]];
        if (q) {
            refNll -= q[tokens[i + 1]];
            let d = 0;
            for (let t = 0; t < q.length; t++)
                if (q[t] > -Infinity)
                    d += Math.exp(q[t]) * (q[t] - Math.max(p[t], -1e30));
            kl += d;
            klMax = Math.max(klMax, d);
            if (argmax(p) === argmax(q))
                top1++;
        }
    }
    await a.return();
    if (b) {
        await b.return();
        await ref.dispose();
    }
    const res = {tokens: tokens.length, ppl: Math.exp(nll / n)};
    if (ref)
        Object.assign(res, {ref_ppl: Math.exp(refNll / n), kl: kl / n, kl_max: klMax, top1: top1 / n});
    return res;
}

const req = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, usePrebuiltBinaries: true});
const model = await llama.loadModel({modelPath: req.model, gpuLayers: 0});
const out = {
    arch: model.fileInfo.metadata.general.architecture,
    type: model.typeDescription,
    vocab: String(model.vocabularyType),
    add_bos: model.tokens.shouldPrependBosToken,
    bos: model.tokens.bos,
    eos: model.tokens.eos,
    tokens: []
};
for (const text of req.texts ?? [])
    out.tokens.push(Array.from(model.tokenize(text, true)));

if (req.prompt != null) {
    const n = req.prompt.length + (req.generate ?? 0) + 8;
    const context = await model.createContext({
        contextSize: Math.max(64, n),
        batchSize: Math.max(64, n),
        sequences: 1,
        threads: 2,
        lora: req.lora ? {adapters: [{filePath: req.lora, scale: 1}]} : undefined
    });
    const seq = context.getSequence();
    const input = req.prompt.map((t, i) => i === req.prompt.length - 1
        ? [t, {generateNext: {token: true, probabilities: true, options: {temperature: 0}}}]
        : t);
    const res = await seq.controlledEvaluate(input);
    const last = res[res.length - 1].next;
    const logprobs = [];
    for (const [tok, p] of last.probabilities)
        logprobs[tok] = p > 0 ? Math.log(p) : null;
    out.logprobs = Array.from(logprobs, (v) => v ?? null);
    out.greedy = [];
    if (req.generate > 0) {
        // Decode from a fresh sequence so that the greedy run is one
        // ordinary llama.cpp generation of the whole prompt.
        await seq.clearHistory();
        for await (const tok of seq.evaluate(req.prompt, {temperature: 0, yieldEogToken: true})) {
            out.greedy.push(tok);
            if (out.greedy.length >= req.generate)
                break;
        }
    }
    await context.dispose();
}
if (req.score != null)
    out.score = await score(req.score, req.reference);
await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify(out) + "\n");
