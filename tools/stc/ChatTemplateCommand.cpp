// stc chat-template: a chat template rendered as the runtime renders it
// (runtime/ChatTemplate: Jinja as transformers' apply_chat_template), on
// conversations given as JSON: to see what a model's prompts look like, and
// for the differential tests against Python's jinja2.
#include "Args.h"
#include "Commands.h"
#include "OpenTokenizer.h"
#include "Usage.h"

#include "ChatTemplate.h"
#include "formats/FileIO.h"
#include "template/Value.h"

#include <cstdio>

namespace stc {

namespace tmpl = rt::tmpl;

int runChatTemplate(int argc, char **argv) {
  Args args({"--template", "--cases"}, {"--tokens"});
  std::string err;
  if (!args.parse(argc, argv, 2, err))
    return fail("chat-template: " + err);
  if (args.help()) {
    std::fputs(kChatTemplateUsage, stdout);
    return 0;
  }
  if (args.positionals().size() > 1 || !args.has("--cases") ||
      (args.positionals().empty() && !args.has("--template")))
    return fail("chat-template: expected <checkpoint | out/> and/or "
                "--template FILE, and --cases FILE.json (see --help)");
  rt::Tokenizer tok;
  const bool haveTokenizer = !args.positionals().empty();
  if (haveTokenizer && !openTokenizer(args.positionals()[0], tok, err))
    return fail("chat-template: " + err);
  if (args.has("--tokens") && !haveTokenizer)
    return fail("chat-template: --tokens needs a checkpoint or out/ (the "
                "tokenizer)");
  std::string source = haveTokenizer ? tok.data().chatTemplate : "";
  if (args.has("--template")) {
    Status st = readSmallFile(args.get("--template"), 1 << 20, source);
    if (!st.ok())
      return fail("chat-template: " + st.message());
  }
  std::string text;
  Status st = readSmallFile(args.get("--cases"), 1ull << 30, text);
  tmpl::Value cases;
  if (!st.ok())
    return fail("chat-template: " + st.message());
  if (!tmpl::parseJson(text, cases, err) || cases.kind != tmpl::Kind::List)
    return fail("chat-template: " + args.get("--cases") + ": " +
                (err.empty() ? "not a JSON array" : err));
  // A template that does not parse is every case's error.
  rt::ChatTemplate chat;
  std::string parseError;
  const bool parsed = chat.init(source, parseError);
  tmpl::JsonStyle compact;
  compact.itemSeparator = ",";
  compact.keySeparator = ":";
  for (size_t c = 0; c < cases.list->size(); ++c) {
    const tmpl::Value &k = (*cases.list)[c];
    if (k.kind != tmpl::Kind::Dict)
      return fail("chat-template: case " + std::to_string(c) +
                  " is not an object");
    const tmpl::Value *msgs = k.dict->find("messages");
    const tmpl::Value *tools = k.dict->find("tools");
    const tmpl::Value *gen = k.dict->find("add_generation_prompt");
    tmpl::Value result = tmpl::Value::newDict();
    std::string out, why = parseError;
    std::vector<int32_t> ids;
    const tmpl::Value none = tmpl::Value::undefined();
    const tmpl::Value &t =
        tools && tools->kind != tmpl::Kind::None ? *tools : none;
    const bool g = gen && tmpl::truthy(*gen);
    bool ok = parsed && msgs;
    if (ok)
      ok = args.has("--tokens")
               ? chat.tokens(*msgs, t, g, tok, ids, why)
               : chat.render(*msgs, t, g, haveTokenizer ? &tok : nullptr, out,
                             nullptr, why);
    if (!ok) {
      result.dict->set("error",
                       tmpl::Value::string(msgs ? why : "no messages"));
    } else if (args.has("--tokens")) {
      tmpl::Value list = tmpl::Value::newList();
      for (int32_t id : ids)
        list.list->push_back(tmpl::Value::integer(id));
      result.dict->set("ids", list);
    } else {
      result.dict->set("text", tmpl::Value::string(out));
    }
    std::string line;
    if (!tmpl::dumpJson(result, compact, line, err))
      return fail("chat-template: " + err);
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

} // namespace stc
