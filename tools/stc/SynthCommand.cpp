// stc synth: writes a synthetic checkpoint (see compiler/synth).
#include "Args.h"
#include "Commands.h"
#include "Usage.h"

#include <cstdio>
#include <string>

#include "synth/Synth.h"

namespace stc {

int runSynth(int argc, char **argv) {
  Args args({"--preset", "--format", "--dtype", "--mix", "--seed", "--layers",
             "--shards", "--activation-sparsity", "-o"},
            {"--omit-layout-keys", "--tokenizer-only", "--transpose-down"});
  std::string err;
  if (!args.parse(argc, argv, 2, err))
    return fail("synth: " + err);
  if (args.help()) {
    std::fputs(kSynthUsage, stdout);
    return 0;
  }
  if (!args.positionals().empty())
    return fail("synth: unexpected argument '" + args.positionals()[0] + "'");
  SynthOptions o;
  o.preset = args.get("--preset", "tiny");
  o.format = args.get("--format", "hf");
  o.output = args.get("-o");
  o.omitLayoutKeys = args.has("--omit-layout-keys");
  o.tokenizerOnly = args.has("--tokenizer-only");
  o.transposeDown = args.has("--transpose-down");
  if (o.transposeDown && o.format != "gguf")
    return fail("synth: --transpose-down applies to --format gguf only");
  std::string dtype = args.get("--dtype", "f32");
  if (!parseDTypeName(dtype, o.dtype))
    return fail("synth: unknown --dtype '" + dtype +
                "' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, "
                "q4_k, q5_k, q6_k, iq4_nl, iq4_xs)");
  o.mix = args.get("--mix");
  o.activationSparsity = args.get("--activation-sparsity");
  if (args.has("--activation-sparsity") && o.activationSparsity.empty())
    return fail("synth: --activation-sparsity expects 'paper' or a fraction");
  if (!o.mix.empty() && args.has("--dtype"))
    return fail("synth: --mix sets every tensor's type; give it or --dtype");
  o.note = [](const std::string &n) {
    std::fprintf(stderr, "stc: synth: %s\n", n.c_str());
  };
  int64_t seed = 0, layers = 0, shards = 1;
  if (!args.getInt("--seed", 0, seed, err) ||
      !args.getInt("--layers", 0, layers, err) ||
      !args.getInt("--shards", 1, shards, err))
    return fail("synth: " + err);
  o.seed = static_cast<uint64_t>(seed);
  o.layers = layers;
  o.shards = static_cast<int>(shards);
  if (o.format == "gguf" && args.has("--shards"))
    return fail("synth: --shards applies to --format hf only");
  Status st = writeSynthCheckpoint(o);
  if (!st.ok())
    return fail(st.message());
  return 0;
}

} // namespace stc
