// Fuzzes the chat template (a model file's or a checkpoint's Jinja text): the
// parser, and for what it accepts, a render over a conversation with a system
// prompt, tools, an assistant's tool call and its result. Errors are fine;
// crashes, hangs and unbounded memory are not (the parser bounds nesting, the
// renderer its output and its statements).
#include "template/Template.h"
#include "template/Value.h"

#include <string>

namespace {

const char *const kContext = R"({
  "messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris? <|im_end|>"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
      "type": "function", "function": {"name": "get_weather",
      "arguments": {"city": "Paris", "days": [1, 2]}}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"t\": 21.5}"},
    {"role": "user", "content": [{"type": "text", "text": "Thanks"}]}
  ],
  "tools": [{"type": "function", "function": {"name": "get_weather",
    "description": "The weather.", "parameters": {"type": "object",
    "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
  "add_generation_prompt": true,
  "bos_token": "<|endoftext|>",
  "eos_token": "<|im_end|>"
})";

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace stc::rt::tmpl;
  static Value context = [] {
    Value v;
    std::string error;
    parseJson(kContext, v, error);
    return v;
  }();
  Template t;
  std::string error, out;
  if (!t.parse(std::string(reinterpret_cast<const char *>(data), size), error))
    return 0;
  (void)t.render(context, out, error);
  return 0;
}
