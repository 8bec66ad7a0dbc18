// The usage text of each stc subcommand (`stc <command> --help`), and the
// overview `stc --help` prints.
#pragma once

namespace stc {

inline const char *const kSynthUsage =
    "usage: stc synth --preset P [--format hf|gguf] [--dtype T | --mix M]\n"
    "                 [--seed N] [--activation-sparsity paper|F]\n"
    "                 [--layers N] [--shards N] [--omit-layout-keys]\n"
    "                 [--transpose-down] [--tokenizer-only] -o PATH\n"
    "Writes a synthetic SmallThinker checkpoint with seeded random weights "
    "and\n"
    "a real tokenizer.\n"
    "  --preset tiny|tiny-swa|tiny-k|tiny-long|4b|21b  shapes (tiny-k: rows\n"
    "                          of 256; tiny-long: the 21B's attention plan,\n"
    "                          a 4096 window, 8192 positions)\n"
    "  --format hf|gguf        HF folder (config.json, safetensors, tokenizer\n"
    "                          files) or one GGUF file (default hf)\n"
    "  --dtype T               f32, f16, bf16; for gguf also ggml's q8_0,\n"
    "                          q4_0, q4_1, q5_0, q5_1, q2_k-q6_k, iq4_nl, "
    "iq4_xs; a row a 256-block type cannot encode is stored in\n"
    "                          llama-quantize's fallback type (said on "
    "stderr)\n"
    "  --mix q4_k_m|q3_k_m|q4_0  GGUF: llama-quantize's per-tensor types for\n"
    "                          that file type (Q6_K head, Q6_K/Q5_K attn_v "
    "and\n"
    "                          ffn_down in some layers; q4_0: a Q6_K head)\n"
    "  --seed N                the weights' seed (both formats agree)\n"
    "  --activation-sparsity paper|F  expert neurons dead (relu(gate) = 0) at\n"
    "                          the paper's per-layer rates (0.95 in the first\n"
    "                          quarter, 0.6 mid-depth, 0.5 last) or fraction "
    "F,\n"
    "                          each neuron with its own skewed firing rate\n"
    "                          (calibrated on 64 tokens through the "
    "reference;\n"
    "                          measure with stc ref --stats)\n"
    "  --layers N              only the first N layers\n"
    "  --shards N              HF: split the safetensors into N files\n"
    "  --omit-layout-keys      GGUF: no smallthinker.rope_layout /\n"
    "                          sliding_window_layout (as third-party files)\n"
    "  --transpose-down        GGUF: expert down projections transposed, as\n"
    "                          PowerInfer's converter writes them\n"
    "  --tokenizer-only        only the tokenizer (HF files, or a GGUF of\n"
    "                          metadata)\n";

inline const char *const kImportUsage =
    "usage: stc import <checkpoint> [-o FILE.mlir]\n"
    "Imports an HF folder or a .gguf into st-dialect MLIR (weights referenced\n"
    "by file extents, never copied); stdout without -o.\n";

inline const char *const kRefUsage =
    "usage: stc ref <checkpoint> --tokens 1,2,3 [--top-k N] [--dump-logits F]\n"
    "               [--q8-activations] [--convention hf|llama.cpp]\n"
    "               [--generate N] [--stats] [--kv-type T]\n"
    "The f32 reference forward pass (the oracle of the tests): the top-k\n"
    "logits of every position and the next token.\n"
    "  --dump-logits F     every position's logits as raw float32\n"
    "  --q8-activations    round matmul inputs to Q8_0 where the compiled\n"
    "                      model's int8 kernels do\n"
    "  --convention C      HF's or llama.cpp's rules (default: the file's)\n"
    "  --kv-type T         round keys and values as a KV cache of type T\n"
    "                      stores them: f32 (default), f16, q8_0\n"
    "  --generate N        N greedy tokens after the prompt (ids)\n"
    "  --stats             per layer: the share of routed expert neurons that\n"
    "                      are dead (relu(gate) = 0) and the mean Jaccard\n"
    "                      overlap of two tokens' live sets in one expert\n";

inline const char *const kCompileUsage =
    "usage: stc compile <checkpoint | model.mlir> [--target T] [-o DIR]\n"
    "                   [--quant Q] [--quant-rule GLOB=Q]...\n"
    "                   [--quant-rules FILE] [--sparse-reglu=auto|on|off]\n"
    "                   [--calibrate FILE] [--live-row-cost X]\n"
    "                   [--sparse-down-layout transposed|neuron_rows]\n"
    "                   [--memory-budget SIZE] [--max-batch N] [--report]\n"
    "                   [--kv-type T] [--emit=mlir] "
    "[--dump-ir-after=PASS|all]\n"
    "                   [--pass-pipeline=PIPELINE] [--kernel-cache DIR]\n"
    "                   [--no-kernel-cache] [-q]\n"
    "Compiles a checkpoint (HF folder or .gguf; or edited IR) for one CPU\n"
    "target into DIR: model.stcm (plan, weights, tokenizer), the kernels,\n"
    "stc-run, stc-bench, stc-serve and stc_runtime.h.\n"
    "  --target T        host (default), x86-64-avx2, x86-64-avx512,\n"
    "                    x86-64-avx512vnni, arm64 (stc targets)\n"
    "  --quant Q         scheme for float weights: q4_0 (default), q8_0,\n"
    "                    q4_k, q5_k, q6_k, q3_k, f16, f32; weights already\n"
    "                    q4_0, q8_0 or a K-quant pass through, other ggml\n"
    "                    types become their exact image\n"
    "  --quant-rule G=Q  per-tensor scheme by glob, first match wins\n"
    "  --sparse-reglu=M  auto (default): per layer, read only live neurons'\n"
    "                    up/down rows where the calibrated dead share pays\n"
    "                    for the target's cost of a live row; on: every\n"
    "                    layer (--sparse-reglu alone); off (st-sparse-reglu)\n"
    "  --sparse-down-layout L  transposed or neuron_rows (PowerInfer's): the\n"
    "                    sparse down of a float checkpoint stc quantizes\n"
    "                    (default: the target's, stc targets; a quantized\n"
    "                    file's down keeps its own blocks)\n"
    "  --live-row-cost X auto's cost of a live row's byte against a\n"
    "                    streamed one (default: the target's, stc targets)\n"
    "  --calibrate FILE  the sparsity profile's tokens: ids (one sequence per\n"
    "                    line) or text; default 8 seeded random sequences of\n"
    "                    32, run through the calibration pass (the\n"
    "                    reference's semantics, batched; st-neuron-layout)\n"
    "  --memory-budget   dense weights resident, experts streamed (e.g. 1GiB)\n"
    "  --kv-type T       the KV cache's element type: f16, q8_0 (int8 with an\n"
    "                    fp16 scale per 32, as ggml), f32; auto (default): "
    "f32\n"
    "                    when every weight is f32, else f16 (st-kv-plan)\n"
    "  --chat-template T the chat template the model carries: chatml, or a\n"
    "                    file of Jinja text (default: the checkpoint's,\n"
    "                    refused with its line if it uses what stc does not\n"
    "                    render exactly)\n"
    "  --report          kernels, bytes per token, roofline (report.txt)\n"
    "  --kernel-cache D  keep generated kernels in D between compiles\n"
    "                    (default $XDG_CACHE_HOME/stc/kernels, else\n"
    "                    ~/.cache/stc/kernels); --no-kernel-cache: none\n"
    "  -q, --quiet       errors only: no notes, no summary, no progress "
    "(which\n"
    "                    is shown only when stderr is a terminal)\n";

inline const char *const kTargetsUsage =
    "usage: stc targets\n"
    "Lists the CPU targets, their Halide target strings and the CPU features\n"
    "they need, and what `host` resolves to here.\n";

inline const char *const kTokenizeUsage =
    "usage: stc tokenize <checkpoint | out/> (--text T | --file F | --cases "
    "F)\n"
    "                    [--no-special] [--pieces] [--quiet]\n"
    "The token ids of a text, comma separated, by the tokenizer of a\n"
    "checkpoint or of a compiled out/ (HF files: Hugging Face's rules, NFC;\n"
    "GGUF: llama.cpp's). Invalid UTF-8 is refused with its byte offset.\n"
    "  --no-special   control tokens written in the text are text\n"
    "  --pieces       a second line with each token's text\n"
    "  --cases F      a JSON array of texts: one line of ids each\n";

inline const char *const kChatTemplateUsage =
    "usage: stc chat-template [<checkpoint | out/>] [--template FILE] --cases "
    "F.json\n"
    "                         [--tokens]\n"
    "A chat template rendered as the runtime renders it (Jinja as\n"
    "transformers' apply_chat_template), one JSON line per case of F.json (an\n"
    "array of {\"messages\": [...], \"tools\": [...] or null,\n"
    "\"add_generation_prompt\": bool}): {\"text\": ...} or {\"error\":\n"
    "...}. The template is the checkpoint's (or out/'s) unless --template\n"
    "gives a file; the tokenizer gives bos_token and eos_token.\n"
    "  --tokens   the prompt's ids instead ({\"ids\": [...]}): control ids\n"
    "             only where the template wrote them\n";

inline const char *const kJsonSchemaUsage =
    "usage: stc json-schema <checkpoint | out/> --cases F.json\n"
    "JSON Schemas compiled to the grammars constrained decoding holds the\n"
    "output to (stc-run --json-schema, stc-serve's response_format), and\n"
    "texts run through the token automaton (each tokenized by the model's\n"
    "tokenizer, its tokens fed one by one). F.json: an array of\n"
    "{\"schema\": ..., \"texts\": [...]}; one JSON line per case:\n"
    "{\"ms\": compile time, \"rules\": n, \"accepted\": [bool per text]} or\n"
    "{\"error\": the keyword refused}. The texts are compact JSON (no\n"
    "whitespace outside strings), an object's properties in the schema's\n"
    "order, as the grammar writes them.\n";

inline const char *const kDetokenizeUsage =
    "usage: stc detokenize <checkpoint | out/> --ids 1,2,3\n"
    "The text of token ids (invalid UTF-8 becomes U+FFFD).\n";

} // namespace stc
