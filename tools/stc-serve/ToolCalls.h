// ToolCalls: the model's tool calls in the text it generates, in the Hermes
// syntax of Qwen-family templates (SmallThinker's):
//   <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
// read as the text streams: the text outside calls is content; a call's name
// is known once its head is read and its arguments stream as they come (the
// pieces OpenAI streams), the end of the arguments found by tracking the
// JSON's nesting. Whitespace between calls is not content.
#ifndef STC_SERVE_TOOLCALLS_H
#define STC_SERVE_TOOLCALLS_H

#include "OpenAi.h"

#include <string>
#include <vector>

namespace stc::serve {

// One piece of the response: content text, or a piece of a tool call.
struct Delta {
  bool isCall = false;
  std::string text;
  ToolCall call;
};

class ToolCallStream {
public:
  static constexpr const char *kOpen = "<tool_call>";
  static constexpr const char *kClose = "</tool_call>";
  // Appends generated text; what is certain now goes to `out`.
  void push(const std::string &text, std::vector<Delta> &out);
  // The end of the generation: held-back text as content (an unfinished
  // call's text too: it is not a call).
  void finish(std::vector<Delta> &out);
  // The calls read so far, whole.
  const std::vector<ToolCall> &calls() const { return calls_; }

private:
  enum class State { Content, Head, Arguments, Tail };
  State state_ = State::Content;
  std::string held_;     // content that may begin "<tool_call>", or
                         // whitespace; a call's text not yet decided
  std::string callText_; // the whole text of the call being read
  // The arguments' JSON: nesting depth, inside a string, after '\'.
  int depth_ = 0;
  bool inString_ = false, escaped_ = false, started_ = false;
  std::vector<ToolCall> calls_;
  void content(std::vector<Delta> &out);
};

} // namespace stc::serve

#endif
