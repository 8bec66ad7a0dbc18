// OpenAi: the OpenAI HTTP API's requests (parsed and checked into Request)
// and its responses, chunks and error objects, as stc-serve speaks them.
#ifndef STC_SERVE_OPENAI_H
#define STC_SERVE_OPENAI_H

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace stc::serve {

enum class Endpoint { Chat, Completion };

struct Message {
  std::string role; // system, user or assistant ("developer" is system)
  std::string content;
};

// One generation request, checked; the sampling fields a client left out are
// empty and take the model's defaults.
struct Request {
  Endpoint endpoint = Endpoint::Chat;
  std::vector<Message> messages; // chat
  // The messages as the chat template reads them (a JSON array, each message
  // with its fields in the client's order; tool-call arguments as objects).
  std::string messagesJson;
  std::string prompt; // completion: text ...
  std::vector<int32_t> promptIds;
  bool promptIsIds = false; // ... or token ids
  int maxTokens = -1;       // -1: until eos or a full context
  std::optional<float> temperature, topP;
  std::optional<int> topK;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::vector<std::pair<int32_t, float>> logitBias; // -100 bans
  bool stream = false, includeUsage = false;
};

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param, code; // empty: null
};

// Parses a POST body of /v1/chat/completions or /v1/completions. Fields the
// server does not use (user, frequency_penalty, ...) are accepted and
// ignored; features it does not have (n > 1, logprobs, echo) are refused
// rather than silently dropped.
bool parseRequest(Endpoint endpoint, const std::string &body, Request &out,
                  ApiError &error);

std::string errorBody(const ApiError &e);

struct Usage {
  int promptTokens = 0, cachedTokens = 0, completionTokens = 0;
};

// What every response and chunk of one request carries.
struct ResponseHead {
  Endpoint endpoint;
  std::string id, model;
  long long created = 0;
};

std::string completionBody(const ResponseHead &h, const std::string &text,
                           const std::string &finishReason, const Usage &u);

// Server-sent events of a streamed answer, each "data: {...}\n\n". With
// `withUsage` (stream_options.include_usage) every chunk carries
// "usage": null and usageEvent() ends the stream with the counts.
std::string roleEvent(const ResponseHead &h, bool withUsage);
std::string textEvent(const ResponseHead &h, const std::string &text,
                      bool withUsage);
std::string finishEvent(const ResponseHead &h, const std::string &finishReason,
                        bool withUsage);
std::string usageEvent(const ResponseHead &h, const Usage &u);
std::string errorEvent(const ApiError &e);
inline const char *doneEvent() { return "data: [DONE]\n\n"; }

} // namespace stc::serve

#endif
