// stc tokenize / stc detokenize: the tokenizer of a checkpoint or of a
// compiled out/ (the copy in its model file), through the runtime's own
// tokenizer, to debug a prompt.
#include "Args.h"
#include "Commands.h"
#include "OpenTokenizer.h"
#include "Usage.h"

#include "TokenList.h"
#include "formats/FileIO.h"
#include "formats/Json.h"

#include <chrono>
#include <cstdio>

namespace stc {

int runTokenize(int argc, char **argv) {
  Args args({"--text", "--file", "--cases"},
            {"--no-special", "--pieces", "--quiet"});
  std::string err;
  if (!args.parse(argc, argv, 2, err))
    return fail("tokenize: " + err);
  if (args.help()) {
    std::fputs(kTokenizeUsage, stdout);
    return 0;
  }
  if (args.positionals().size() != 1 ||
      args.has("--text") + args.has("--file") + args.has("--cases") != 1)
    return fail("tokenize: expected <checkpoint | out/> and one of --text T, "
                "--file F or --cases F.json");
  if (args.has("--cases")) {
    // A JSON array of texts: one line of ids each (differential tests).
    std::string json;
    JsonValue cases;
    Status st = readSmallFile(args.get("--cases"), 1ull << 30, json);
    if (st.ok())
      st = parseJson(json, args.get("--cases"), cases);
    if (!st.ok())
      return fail("tokenize: " + st.message());
    if (!cases.isArray())
      return fail("tokenize: " + args.get("--cases") +
                  ": not a JSON array of strings");
    rt::Tokenizer tok;
    if (!openTokenizer(args.positionals()[0], tok, err))
      return fail(err);
    for (size_t c = 0; c < cases.array.size(); ++c) {
      std::vector<int32_t> ids;
      if (!cases.array[c].isString())
        return fail("tokenize: " + args.get("--cases") + ": entry " +
                    std::to_string(c) + " is not a string");
      if (!tok.encode(cases.array[c].string, !args.has("--no-special"), ids,
                      err))
        return fail("tokenize: entry " + std::to_string(c) + ": " + err);
      std::string line;
      for (size_t i = 0; i < ids.size(); ++i)
        line += (i ? "," : "") + std::to_string(ids[i]);
      std::printf("%s\n", line.c_str());
    }
    return 0;
  }
  std::string text = args.get("--text");
  if (args.has("--file")) {
    Status st = readSmallFile(args.get("--file"), 1ull << 30, text);
    if (!st.ok())
      return fail("tokenize: " + st.message());
  }
  const auto t0 = std::chrono::steady_clock::now();
  rt::Tokenizer tok;
  if (!openTokenizer(args.positionals()[0], tok, err))
    return fail(err);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<int32_t> ids;
  if (!tok.encode(text, !args.has("--no-special"), ids, err))
    return fail("tokenize: " + err);
  const auto t2 = std::chrono::steady_clock::now();
  if (!args.has("--quiet")) {
    auto ms = [](auto a, auto b) {
      return std::chrono::duration<double, std::milli>(b - a).count();
    };
    std::fprintf(stderr,
                 "stc: tokenizer semantics: %s\nstc: loaded in %.1f ms; %zu "
                 "bytes into %zu tokens in %.1f ms\n",
                 rt::semanticsName(tok.data().semantics), ms(t0, t1),
                 text.size(), ids.size(), ms(t1, t2));
  }
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i)
    line += (i ? "," : "") + std::to_string(ids[i]);
  std::printf("%s\n", line.c_str());
  if (args.has("--pieces")) {
    // Each token's text, escaped so the line stays one line; a token that
    // holds part of a character shows its bytes.
    std::string pieces;
    for (size_t i = 0; i < ids.size(); ++i) {
      pieces += i ? " " : "";
      std::string p = tok.piece(ids[i]);
      std::string shown;
      for (unsigned char c : rt::toValidUtf8(p) == p ? p : std::string()) {
        if (c == '\n')
          shown += "\\n";
        else if (c == '\t')
          shown += "\\t";
        else if (c == '\r')
          shown += "\\r";
        else if (c == '\\')
          shown += "\\\\";
        else if (c == ' ')
          shown += "\xE2\x90\xA3"; // U+2423 OPEN BOX for a space
        else
          shown += static_cast<char>(c);
      }
      if (shown.empty())
        for (unsigned char c : p) {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "<%02X>", c);
          shown += hex;
        }
      pieces += shown;
    }
    std::printf("%s\n", pieces.c_str());
  }
  return 0;
}

int runDetokenize(int argc, char **argv) {
  Args args({"--ids"}, {});
  std::string err;
  if (!args.parse(argc, argv, 2, err))
    return fail("detokenize: " + err);
  if (args.help()) {
    std::fputs(kDetokenizeUsage, stdout);
    return 0;
  }
  if (args.positionals().size() != 1 || !args.has("--ids"))
    return fail("detokenize: expected <checkpoint | out/> --ids 1,2,3");
  std::vector<int64_t> ids64;
  std::string bad;
  if (!rt::parseTokenList(args.get("--ids"), ids64, bad))
    return fail("detokenize: --ids: '" + bad + "' is not an integer token id");
  rt::Tokenizer tok;
  if (!openTokenizer(args.positionals()[0], tok, err))
    return fail(err);
  std::vector<int32_t> ids;
  for (int64_t id : ids64) {
    if (id < 0 || id >= tok.size())
      return fail("detokenize: token id " + std::to_string(id) +
                  " is outside the vocabulary [0, " +
                  std::to_string(tok.size()) + ")");
    ids.push_back(static_cast<int32_t>(id));
  }
  const std::string text = tok.decode(ids.data(), ids.size());
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

} // namespace stc
