// The stc subcommands; each returns the process exit code.
#pragma once

#include <string>

namespace stc {
int runImport(int argc, char **argv);
int runSynth(int argc, char **argv);
int runRef(int argc, char **argv);
int runCompile(int argc, char **argv);
int runTargets(int argc, char **argv);
int runTokenize(int argc, char **argv);
int runDetokenize(int argc, char **argv);
int runChatTemplate(int argc, char **argv);
int runJsonSchema(int argc, char **argv);
// Prints "stc: <message>" to stderr and returns 1.
int fail(const std::string &message);
} // namespace stc
