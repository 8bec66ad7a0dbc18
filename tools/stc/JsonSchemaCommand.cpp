// stc json-schema: JSON Schemas compiled to the grammars constrained decoding
// holds the output to (runtime/grammar), and texts run through the token
// automaton: each text tokenized by the model's tokenizer and its tokens fed
// one by one, as the sampler would draw them. For the differential tests
// against the JSON-Schema-Test-Suite, and to see what a schema compiles to.
#include "Args.h"
#include "Commands.h"
#include "OpenTokenizer.h"
#include "Usage.h"

#include "formats/FileIO.h"
#include "grammar/Matcher.h"
#include "template/Value.h"

#include <chrono>
#include <cstdio>

namespace stc {

namespace tmpl = rt::tmpl;
namespace gr = rt::grammar;

int runJsonSchema(int argc, char **argv) {
  Args args({"--cases"}, {});
  std::string err;
  if (!args.parse(argc, argv, 2, err))
    return fail("json-schema: " + err);
  if (args.help()) {
    std::fputs(kJsonSchemaUsage, stdout);
    return 0;
  }
  if (args.positionals().size() != 1 || !args.has("--cases"))
    return fail("json-schema: expected <checkpoint | out/> and --cases "
                "F.json (see --help)");
  rt::Tokenizer tok;
  if (!openTokenizer(args.positionals()[0], tok, err))
    return fail("json-schema: " + err);
  std::string text;
  Status st = readSmallFile(args.get("--cases"), 1ull << 30, text);
  if (!st.ok())
    return fail("json-schema: " + st.message());
  tmpl::Value cases;
  if (!tmpl::parseJson(text, cases, err) || cases.kind != tmpl::Kind::List)
    return fail("json-schema: " + args.get("--cases") + ": " +
                (err.empty() ? "not a JSON array" : err));
  auto trie = std::make_shared<gr::TokenTrie>(tok);
  tmpl::JsonStyle compact;
  compact.itemSeparator = ",";
  compact.keySeparator = ":";
  for (size_t c = 0; c < cases.list->size(); ++c) {
    const tmpl::Value &k = (*cases.list)[c];
    const tmpl::Value *schema =
        k.kind == tmpl::Kind::Dict ? k.dict->find("schema") : nullptr;
    const tmpl::Value *texts =
        k.kind == tmpl::Kind::Dict ? k.dict->find("texts") : nullptr;
    if (!schema || !texts || texts->kind != tmpl::Kind::List)
      return fail("json-schema: case " + std::to_string(c) +
                  " needs \"schema\" and \"texts\"");
    std::string schemaText;
    if (!tmpl::dumpJson(*schema, tmpl::JsonStyle(), schemaText, err))
      return fail("json-schema: " + err);
    tmpl::Value result = tmpl::Value::newDict();
    gr::Grammar g;
    std::string why;
    const auto t0 = std::chrono::steady_clock::now();
    const bool ok = gr::schemaGrammar(schemaText, g, why);
    const double ms = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - t0)
                          .count();
    if (!ok) {
      result.dict->set("error", tmpl::Value::string(why));
    } else {
      result.dict->set("ms", tmpl::Value::number(ms));
      result.dict->set(
          "rules", tmpl::Value::integer(static_cast<int64_t>(g.rules.size())));
      auto compiled = std::make_shared<gr::CompiledGrammar>(g, trie);
      tmpl::Value accepted = tmpl::Value::newList();
      for (const tmpl::Value &t : *texts->list) {
        // The text's tokens one by one, then whether it may end there.
        gr::GrammarMatcher m(compiled);
        std::vector<int32_t> ids;
        bool yes =
            t.kind == tmpl::Kind::String && tok.encode(t.s, false, ids, why);
        if (yes && tok.data().addBos && !ids.empty() &&
            ids[0] == tok.data().bos) // (text only: no bos)
          ids.erase(ids.begin());
        for (size_t i = 0; yes && i < ids.size(); ++i)
          yes = m.accept(ids[i]);
        accepted.list->push_back(tmpl::Value::boolean(yes && m.canEnd()));
      }
      result.dict->set("accepted", accepted);
    }
    std::string line;
    if (!tmpl::dumpJson(result, compact, line, err))
      return fail("json-schema: " + err);
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

} // namespace stc
