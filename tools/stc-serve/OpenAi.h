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
  std::string role; // system, user, assistant or tool ("developer" is
                    // system)
  std::string content;
};

// A tool the model may call: its name and its parameters' JSON Schema ("" if
// none given: any object).
struct Tool {
  std::string name, parameters;
};
enum class ToolChoice { None, Auto, Required, Named };
enum class ResponseFormat { Text, JsonObject, JsonSchema };

// One generation request, checked; the sampling fields a client left out are
// empty and take the model's defaults.
struct Request {
  Endpoint endpoint = Endpoint::Chat;
  std::vector<Message> messages; // chat
  // The messages as the chat template reads them (a JSON array, each message
  // with its fields in the client's order; tool-call arguments as objects).
  std::string messagesJson;
  // Tools: as the chat template reads them (a JSON array, "" for none), and
  // each one's name and parameters; tool_choice (auto by default when there
  // are tools), its function's name when named; parallel_tool_calls.
  std::string toolsJson;
  std::vector<Tool> tools;
  ToolChoice toolChoice = ToolChoice::None;
  std::string toolName;
  bool parallelToolCalls = true;
  // response_format: text, json_object, or json_schema with its schema.
  ResponseFormat format = ResponseFormat::Text;
  std::string formatSchema;
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

// A tool call the model made: in full (a response), or in a streamed piece
// (the first with its id and name, then pieces of its arguments' text).
struct ToolCall {
  int index = 0;
  std::string id, name, arguments;
};

// What every response and chunk of one request carries.
struct ResponseHead {
  Endpoint endpoint;
  std::string id, model;
  long long created = 0;
};

// `calls`: the tool calls (the message's content is null when there is no
// text beside them).
std::string completionBody(const ResponseHead &h, const std::string &text,
                           const std::string &finishReason, const Usage &u,
                           const std::vector<ToolCall> &calls = {});

// Server-sent events of a streamed answer, each "data: {...}\n\n". With
// `withUsage` (stream_options.include_usage) every chunk carries
// "usage": null and usageEvent() ends the stream with the counts.
std::string roleEvent(const ResponseHead &h, bool withUsage);
std::string textEvent(const ResponseHead &h, const std::string &text,
                      bool withUsage);
std::string finishEvent(const ResponseHead &h, const std::string &finishReason,
                        bool withUsage);
// A piece of a tool call, as OpenAI streams them: {"tool_calls": [{"index",
// "id", "type", "function": {"name", "arguments"}}]} (id, type and name on
// the call's first piece only).
std::string toolCallEvent(const ResponseHead &h, const ToolCall &piece,
                          bool withUsage);
std::string usageEvent(const ResponseHead &h, const Usage &u);
std::string errorEvent(const ApiError &e);
inline const char *doneEvent() { return "data: [DONE]\n\n"; }

} // namespace stc::serve

#endif
