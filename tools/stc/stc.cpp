// stc: the SmallThinker compiler's command-line entry point.
#include "Commands.h"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

namespace stc {
int fail(const std::string &message) {
  std::fprintf(stderr, "stc: %s\n", message.c_str());
  return 1;
}
} // namespace stc

static const char *kUsage =
    "usage: stc <command> [options]   (stc <command> --help for its options)\n"
    "commands:\n"
    "  synth       write a synthetic SmallThinker checkpoint (HF or GGUF)\n"
    "  import      import a checkpoint into st-dialect MLIR\n"
    "  ref         run the f32 reference forward pass\n"
    "  compile     compile a checkpoint for a CPU target into out/\n"
    "  targets     list the CPU targets\n"
    "  tokenize    the token ids of a text (checkpoint or out/)\n"
    "  detokenize  the text of token ids\n"
    "  chat-template  a chat template rendered on conversations (JSON)\n"
    "  json-schema    JSON Schemas as decoding grammars, texts through them\n";

int main(int argc, char **argv) {
  // Past a file-size limit (ulimit -f), write() then fails with EFBIG and stc
  // reports it, instead of the process dying of SIGXFSZ; either way no output
  // is half-written.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc < 2 || !std::strcmp(argv[1], "--help") ||
      !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "import")
    return stc::runImport(argc, argv);
  if (cmd == "synth")
    return stc::runSynth(argc, argv);
  if (cmd == "ref")
    return stc::runRef(argc, argv);
  if (cmd == "compile")
    return stc::runCompile(argc, argv);
  if (cmd == "targets")
    return stc::runTargets(argc, argv);
  if (cmd == "tokenize")
    return stc::runTokenize(argc, argv);
  if (cmd == "detokenize")
    return stc::runDetokenize(argc, argv);
  if (cmd == "chat-template")
    return stc::runChatTemplate(argc, argv);
  if (cmd == "json-schema")
    return stc::runJsonSchema(argc, argv);
  std::fprintf(stderr, "stc: unknown command '%s'\n%s", cmd.c_str(), kUsage);
  return 2;
}
