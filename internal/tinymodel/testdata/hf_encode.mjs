// Encodes sample texts with the HuggingFace tokenizers library (the Rust
// library as a Node module) and prints them as JSON lines, to check the
// built-in tokenizer. Usage, from a scratch directory outside the repository:
//   npm install @inference-net/tokenizers
//   node /path/to/hf_encode.mjs /path/to/tokenizer.json > builtin_tokenizer_golden.jsonl
import { createRequire } from "node:module";
const require = createRequire(process.cwd() + "/");
const { Tokenizer } = require("@inference-net/tokenizers");

const texts = [
  "the cat is on the mat",
  "def f(x):\n    return x + 1\n\n",
  "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n",
  "naïve café 日本語 🙂",
  "\t\tindented   spaces and_the_end",
];
const tok = Tokenizer.fromFile(process.argv[2]);
console.log(JSON.stringify({ vocab_size: tok.getVocabSize(true) }));
for (const text of texts) {
  const enc = await tok.encode(text, null, { addSpecialTokens: false });
  const ids = enc.getIds();
  const decoded = await tok.decode(ids, false);
  console.log(JSON.stringify({ text, ids, tokens: enc.getTokens(), decoded }));
}
