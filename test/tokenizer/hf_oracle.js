// The Hugging Face `tokenizers` oracle (npm package tokenizers, the Rust
// library): prints, for each string of a JSON array, its ids (comma
// separated) on one line, as `stc tokenize --cases` does.
//   node hf_oracle.js TOKENIZER_JSON CASES_JSON
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

async function main() {
  const [tokenizerPath, casesPath] = process.argv.slice(2);
  const tokenizer = Tokenizer.fromFile(tokenizerPath);
  const cases = JSON.parse(fs.readFileSync(casesPath, 'utf8'));
  const lines = [];
  for (const text of cases) {
    const enc = await tokenizer.encode(text, null, { addSpecialTokens: true });
    lines.push(enc.getIds().join(','));
  }
  process.stdout.write(lines.join('\n') + '\n');
}
main().catch((e) => { console.error(e); process.exit(1); });
