// ChatML, the chat format of Qwen-family models (SmallThinker's):
//   <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace stc::rt {

// Whether a stored chat template is ChatML (it writes both markers); an empty
// template counts as ChatML for a tokenizer that has the markers.
bool isChatMlTemplate(const std::string &chatTemplate);

// The ChatML text of (role, content) messages; false with `error` for a role
// other than system, user and assistant.
bool formatChatMl(const std::vector<std::pair<std::string, std::string>> &msgs,
                  bool addGenerationPrompt, std::string &out,
                  std::string &error);

} // namespace stc::rt
