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
//   "generate": 32                     // greedy tokens to decode after the prompt
// }
// result: {
//   "tokens": [[...], ...],           // ids per text
//   "logprobs": [...],                // log-softmax of the logits after the prompt's last token
//   "greedy": [...],                  // greedy continuation (stops early only at the context's end)
//   "add_bos": true, "bos": 1, "eos": 2, "vocab": "...", "arch": "..."
// }
//
// llama.cpp gives node-llama-cpp the next-token distribution as softmax
// probabilities of the raw logits (greedy sampling keeps every candidate), so
// the logits come back as log-probabilities: the logits up to a constant.
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const req = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, usePrebuiltBinaries: true});
const model = await llama.loadModel({modelPath: req.model, gpuLayers: 0});
const out = {
    arch: model.fileInfo.metadata.general.architecture,
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
await model.dispose();
await llama.dispose();
process.stdout.write(JSON.stringify(out) + "\n");
