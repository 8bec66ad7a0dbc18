#include "ChatFormat.h"

namespace stc::rt {

bool isChatMlTemplate(const std::string &t) {
  return t.empty() || (t.find("<|im_start|>") != std::string::npos &&
                       t.find("<|im_end|>") != std::string::npos);
}

bool formatChatMl(const std::vector<std::pair<std::string, std::string>> &msgs,
                  bool addGenerationPrompt, std::string &out,
                  std::string &error) {
  out.clear();
  for (const auto &m : msgs) {
    if (m.first != "system" && m.first != "user" && m.first != "assistant") {
      error = "unknown chat role '" + m.first +
              "' (expected system, user or assistant)";
      return false;
    }
    out += "<|im_start|>" + m.first + "\n" + m.second + "<|im_end|>\n";
  }
  if (addGenerationPrompt)
    out += "<|im_start|>assistant\n";
  return true;
}

} // namespace stc::rt
