// OpenAi: request checking and response writing for stc-serve, with the
// field names, types and error objects of the OpenAI API.
#include "OpenAi.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace stc::serve {
namespace {

using json = nlohmann::json;
using ordered = nlohmann::ordered_json;

const char *typeName(const json &v) {
  switch (v.type()) {
  case json::value_t::null:
    return "null";
  case json::value_t::boolean:
    return "a boolean";
  case json::value_t::string:
    return "a string";
  case json::value_t::array:
    return "an array";
  case json::value_t::object:
    return "an object";
  case json::value_t::number_float:
    return "a number";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
    return "an integer";
  default:
    return "an unknown value";
  }
}

bool invalidType(ApiError &e, const std::string &param, const char *expected,
                 const json &got) {
  e.message = "Invalid type for '" + param + "': expected " + expected +
              ", but got " + typeName(got) + " instead.";
  e.param = param;
  e.code = "invalid_type";
  return false;
}

bool invalidValue(ApiError &e, const std::string &param,
                  const std::string &message) {
  e.message = "Invalid value for '" + param + "': " + message;
  e.param = param;
  e.code = "invalid_value";
  return false;
}

// A field absent or null counts as not given.
const json *field(const json &obj, const char *name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

bool readNumber(const json &obj, const char *name, double lo, double hi,
                std::optional<float> &out, ApiError &e) {
  const json *v = field(obj, name);
  if (!v)
    return true;
  if (!v->is_number())
    return invalidType(e, name, "a number", *v);
  const double d = v->get<double>();
  if (!(d >= lo && d <= hi))
    return invalidValue(e, name,
                        "expected a number from " + json(lo).dump() + " to " +
                            json(hi).dump() + ", got " + v->dump() + ".");
  out = static_cast<float>(d);
  return true;
}

bool readInteger(const json &obj, const char *name, long long lo, long long hi,
                 std::optional<long long> &out, ApiError &e) {
  const json *v = field(obj, name);
  if (!v)
    return true;
  // 3.0 is accepted as 3, as JavaScript clients may write integers.
  long long n;
  if (v->is_number_unsigned())
    n = static_cast<long long>(std::min<uint64_t>(
        v->get<uint64_t>(), std::numeric_limits<long long>::max()));
  else if (v->is_number_integer())
    n = v->get<long long>();
  else if (v->is_number_float() &&
           v->get<double>() == std::floor(v->get<double>()) &&
           std::fabs(v->get<double>()) < 9e18)
    n = static_cast<long long>(v->get<double>());
  else
    return invalidType(e, name, "an integer", *v);
  if (n < lo || n > hi)
    return invalidValue(e, name,
                        "expected an integer from " + std::to_string(lo) +
                            " to " + std::to_string(hi) + ", got " + v->dump() +
                            ".");
  out = n;
  return true;
}

bool readBool(const json &obj, const char *name, bool &out, ApiError &e) {
  const json *v = field(obj, name);
  if (!v)
    return true;
  if (!v->is_boolean())
    return invalidType(e, name, "a boolean", *v);
  out = v->get<bool>();
  return true;
}

// Features the server does not have: refused when asked for, accepted when
// a client sends their "off" value.
bool refuseUnsupported(const json &obj, ApiError &e) {
  std::optional<long long> n;
  if (!readInteger(obj, "n", 1, 128, n, e))
    return false;
  if (n && *n != 1)
    return invalidValue(e, "n", "stc-serve generates one choice (n = 1).");
  std::optional<long long> best;
  if (!readInteger(obj, "best_of", 1, 128, best, e))
    return false;
  if (best && *best != 1)
    return invalidValue(e, "best_of", "stc-serve generates one choice.");
  for (const char *name : {"logprobs", "echo"}) {
    const json *v = field(obj, name);
    if (v && !(v->is_boolean() && !v->get<bool>()))
      return invalidValue(e, name, "not supported by stc-serve.");
  }
  if (const json *v = field(obj, "functions");
      v && !(v->is_array() && v->empty()))
    return invalidValue(e, "functions",
                        "the deprecated functions API is not supported: give "
                        "tools.");
  for (const char *name : {"suffix", "top_logprobs"})
    if (field(obj, name))
      return invalidValue(e, name, "not supported by stc-serve.");
  return true;
}

bool readContent(const json &m, const std::string &at, bool allowNull,
                 std::string &out, ApiError &e) {
  const json *c = field(m, "content");
  if (!c) {
    if (allowNull)
      return true;
    e.message = "Missing required parameter: '" + at + ".content'.";
    e.param = at + ".content";
    e.code = "missing_required_parameter";
    return false;
  }
  if (c->is_string()) {
    out = c->get<std::string>();
    return true;
  }
  if (!c->is_array())
    return invalidType(e, at + ".content", "a string or an array of parts", *c);
  // Content parts: the text ones are joined; others (images, audio) are not
  // something this model reads.
  for (size_t i = 0; i < c->size(); ++i) {
    const std::string p = at + ".content[" + std::to_string(i) + "]";
    const json &part = (*c)[i];
    if (!part.is_object())
      return invalidType(e, p, "an object", part);
    const json *type = field(part, "type");
    if (!type || !type->is_string() || *type != "text")
      return invalidValue(e, p + ".type",
                          "only text parts are supported, got " +
                              (type ? type->dump() : std::string("none")) +
                              ".");
    const json *text = field(part, "text");
    if (!text || !text->is_string())
      return invalidType(e, p + ".text", "a string",
                         text ? *text : json(nullptr));
    out += text->get<std::string>();
  }
  return true;
}

bool readMessages(const json &obj, std::vector<Message> &out, ApiError &e) {
  const json *ms = field(obj, "messages");
  if (!ms) {
    e.message = "Missing required parameter: 'messages'.";
    e.param = "messages";
    e.code = "missing_required_parameter";
    return false;
  }
  if (!ms->is_array())
    return invalidType(e, "messages", "an array", *ms);
  if (ms->empty())
    return invalidValue(e, "messages", "expected at least one message.");
  for (size_t i = 0; i < ms->size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const json &m = (*ms)[i];
    if (!m.is_object())
      return invalidType(e, at, "an object", m);
    const json *role = field(m, "role");
    if (!role || !role->is_string())
      return invalidType(e, at + ".role", "a string",
                         role ? *role : json(nullptr));
    Message msg;
    msg.role = role->get<std::string>();
    if (msg.role == "developer")
      msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" &&
        msg.role != "tool")
      return invalidValue(e, at + ".role",
                          "'" + role->get<std::string>() +
                              "' is not a supported role (expected system, "
                              "developer, user, assistant or tool).");
    if (!readContent(m, at, msg.role == "assistant", msg.content, e))
      return false;
    // A tool's result answers one call by its id (as OpenAI requires).
    if (msg.role == "tool") {
      const json *id = field(m, "tool_call_id");
      if (!id) {
        e.message = "Missing required parameter: '" + at + ".tool_call_id'.";
        e.param = at + ".tool_call_id";
        e.code = "missing_required_parameter";
        return false;
      }
      if (!id->is_string())
        return invalidType(e, at + ".tool_call_id", "a string", *id);
    }
    if (const json *calls = field(m, "tool_calls")) {
      if (msg.role != "assistant")
        return invalidValue(e, at + ".tool_calls",
                            "only assistant messages carry tool calls.");
      if (!calls->is_array())
        return invalidType(e, at + ".tool_calls", "an array", *calls);
      for (size_t k = 0; k < calls->size(); ++k) {
        const std::string c = at + ".tool_calls[" + std::to_string(k) + "]";
        const json &call = (*calls)[k];
        const json *fn = call.is_object() ? field(call, "function") : nullptr;
        if (!fn || !fn->is_object())
          return invalidType(e, c + ".function", "an object",
                             fn ? *fn : json(nullptr));
        const json *name = field(*fn, "name");
        if (!name || !name->is_string())
          return invalidType(e, c + ".function.name", "a string",
                             name ? *name : json(nullptr));
        const json *args = field(*fn, "arguments");
        if (args && !args->is_string() && !args->is_object())
          return invalidType(e, c + ".function.arguments", "a string of JSON",
                             *args);
      }
    }
    out.push_back(std::move(msg));
  }
  return true;
}

// The messages for the chat template: each message's fields in the client's
// order (the body parsed again with its order kept), the role "developer" as
// "system", the content as the text read.
std::string templateMessages(const ordered &obj,
                             const std::vector<Message> &msgs) {
  ordered out = ordered::array();
  for (size_t i = 0; i < msgs.size(); ++i) {
    ordered m = obj["messages"][i];
    m["role"] = msgs[i].role;
    m["content"] = msgs[i].content;
    // A call's arguments as the object they encode, as templates read them
    // (they write it with tojson); a string that is not JSON stays a string.
    if (m.contains("tool_calls") && m["tool_calls"].is_array())
      for (ordered &call : m["tool_calls"])
        if (call.contains("function") &&
            call["function"].contains("arguments") &&
            call["function"]["arguments"].is_string()) {
          ordered args = ordered::parse(
              call["function"]["arguments"].get<std::string>(), nullptr, false);
          if (!args.is_discarded())
            call["function"]["arguments"] = std::move(args);
        }
    out.push_back(std::move(m));
  }
  return out.dump(-1, ' ', false, ordered::error_handler_t::replace);
}

// tools, tool_choice and parallel_tool_calls.
bool readTools(const ordered &obj, Request &r, ApiError &e) {
  auto it = obj.find("tools");
  if (it != obj.end() && !it->is_null()) {
    if (!it->is_array())
      return invalidType(e, "tools", "an array", json::parse(it->dump()));
    for (size_t k = 0; k < it->size(); ++k) {
      const std::string at = "tools[" + std::to_string(k) + "]";
      const ordered &t = (*it)[k];
      if (!t.is_object() || t.value("type", "") != "function" ||
          !t.contains("function") || !t["function"].is_object())
        return invalidValue(e, at,
                            "expected {\"type\": \"function\", "
                            "\"function\": {...}}.");
      const ordered &fn = t["function"];
      if (!fn.contains("name") || !fn["name"].is_string() ||
          fn["name"].get<std::string>().empty())
        return invalidValue(e, at + ".function.name",
                            "expected the function's name.");
      Tool tool;
      tool.name = fn["name"].get<std::string>();
      if (fn.contains("parameters") && !fn["parameters"].is_null()) {
        if (!fn["parameters"].is_object())
          return invalidValue(e, at + ".function.parameters",
                              "expected a JSON Schema object.");
        tool.parameters = fn["parameters"].dump();
      }
      for (const Tool &other : r.tools)
        if (other.name == tool.name)
          return invalidValue(e, at + ".function.name",
                              "'" + tool.name + "' is given twice.");
      r.tools.push_back(std::move(tool));
    }
    if (!r.tools.empty())
      r.toolsJson = it->dump(-1, ' ', false, ordered::error_handler_t::replace);
  }
  r.toolChoice = r.tools.empty() ? ToolChoice::None : ToolChoice::Auto;
  auto choice = obj.find("tool_choice");
  if (choice != obj.end() && !choice->is_null()) {
    if (choice->is_string()) {
      const std::string c = choice->get<std::string>();
      if (c == "none")
        r.toolChoice = ToolChoice::None;
      else if (c == "auto" || c == "required")
        r.toolChoice = c == "auto" ? ToolChoice::Auto : ToolChoice::Required;
      else
        return invalidValue(e, "tool_choice",
                            "expected none, auto, required or a function.");
    } else if (choice->is_object() && choice->contains("function") &&
               (*choice)["function"].is_object() &&
               (*choice)["function"].contains("name") &&
               (*choice)["function"]["name"].is_string()) {
      r.toolChoice = ToolChoice::Named;
      r.toolName = (*choice)["function"]["name"].get<std::string>();
    } else {
      return invalidValue(e, "tool_choice",
                          "expected none, auto, required or {\"type\": "
                          "\"function\", \"function\": {\"name\": ...}}.");
    }
    if (r.toolChoice != ToolChoice::None && r.tools.empty())
      return invalidValue(e, "tool_choice", "there are no tools to call.");
    if (r.toolChoice == ToolChoice::Named &&
        std::none_of(r.tools.begin(), r.tools.end(),
                     [&](const Tool &t) { return t.name == r.toolName; }))
      return invalidValue(e, "tool_choice",
                          "no tool is named '" + r.toolName + "'.");
  }
  auto parallel = obj.find("parallel_tool_calls");
  if (parallel != obj.end() && !parallel->is_null()) {
    if (!parallel->is_boolean())
      return invalidType(e, "parallel_tool_calls", "a boolean",
                         json::parse(parallel->dump()));
    r.parallelToolCalls = parallel->get<bool>();
  }
  return true;
}

// response_format: text, json_object, json_schema (its schema, strict or
// not: the output is held to it either way).
bool readResponseFormat(const ordered &obj, Request &r, ApiError &e) {
  auto f = obj.find("response_format");
  if (f == obj.end() || f->is_null())
    return true;
  const std::string type =
      f->is_object() && f->contains("type") && (*f)["type"].is_string()
          ? (*f)["type"].get<std::string>()
          : "";
  if (type == "text")
    return true;
  if (type == "json_object") {
    r.format = ResponseFormat::JsonObject;
    return true;
  }
  if (type == "json_schema") {
    const auto js = f->find("json_schema");
    if (js == f->end() || !js->is_object() || !js->contains("schema") ||
        !((*js)["schema"].is_object() || (*js)["schema"].is_boolean()))
      return invalidValue(e, "response_format.json_schema",
                          "expected {\"name\": ..., \"schema\": {...}}.");
    r.format = ResponseFormat::JsonSchema;
    r.formatSchema = (*js)["schema"].dump();
    return true;
  }
  return invalidValue(e, "response_format",
                      "expected a type of text, json_object or json_schema.");
}

bool readPrompt(const json &obj, Request &r, ApiError &e) {
  const json *p = field(obj, "prompt");
  if (!p) {
    e.message = "Missing required parameter: 'prompt'.";
    e.param = "prompt";
    e.code = "missing_required_parameter";
    return false;
  }
  // A string, or one prompt given as a list of one string, token ids, or a
  // list of one list of token ids (a batch of several is refused).
  const json *one = p;
  if (p->is_array() && p->size() == 1 &&
      ((*p)[0].is_string() || (*p)[0].is_array()))
    one = &(*p)[0];
  else if (p->is_array() && !p->empty() && !(*p)[0].is_number())
    return invalidValue(e, "prompt", "stc-serve takes one prompt per request.");
  if (one->is_string()) {
    r.prompt = one->get<std::string>();
    if (r.prompt.empty())
      return invalidValue(e, "prompt", "the prompt is empty.");
    return true;
  }
  if (!one->is_array())
    return invalidType(e, "prompt", "a string or an array of token ids", *one);
  if (one->empty())
    return invalidValue(e, "prompt", "the prompt is empty.");
  for (const json &id : *one) {
    if (!id.is_number_integer() && !id.is_number_unsigned())
      return invalidType(e, "prompt", "a string or an array of token ids", id);
    const long long v = id.is_number_unsigned()
                            ? static_cast<long long>(std::min<uint64_t>(
                                  id.get<uint64_t>(), 1ull << 40))
                            : id.get<long long>();
    if (v < 0 || v > std::numeric_limits<int32_t>::max())
      return invalidValue(e, "prompt", id.dump() + " is not a token id.");
    r.promptIds.push_back(static_cast<int32_t>(v));
  }
  r.promptIsIds = true;
  return true;
}

bool readStop(const json &obj, std::vector<std::string> &out, ApiError &e) {
  const json *s = field(obj, "stop");
  if (!s)
    return true;
  if (s->is_string()) {
    if (!s->get<std::string>().empty())
      out.push_back(s->get<std::string>());
    return true;
  }
  if (!s->is_array())
    return invalidType(e, "stop", "a string or an array of strings", *s);
  if (s->size() > 16)
    return invalidValue(e, "stop", "at most 16 stop strings.");
  for (const json &one : *s) {
    if (!one.is_string())
      return invalidType(e, "stop", "a string or an array of strings", one);
    if (!one.get<std::string>().empty())
      out.push_back(one.get<std::string>());
  }
  return true;
}

// {"token id": bias from -100 to 100}, as OpenAI's logit_bias.
bool readLogitBias(const json &obj, Request &r, ApiError &e) {
  const json *b = field(obj, "logit_bias");
  if (!b)
    return true;
  if (!b->is_object())
    return invalidType(e, "logit_bias", "an object", *b);
  for (auto it = b->begin(); it != b->end(); ++it) {
    const std::string &key = it.key();
    char *end = nullptr;
    const long id = std::strtol(key.c_str(), &end, 10);
    if (key.empty() || *end || id < 0 ||
        id > std::numeric_limits<int32_t>::max())
      return invalidValue(e, "logit_bias", "'" + key + "' is not a token id.");
    if (!it->is_number())
      return invalidType(e, "logit_bias", "numbers", *it);
    const double v = it->get<double>();
    if (!(v >= -100 && v <= 100))
      return invalidValue(e, "logit_bias",
                          "biases go from -100 to 100, got " + it->dump() +
                              ".");
    r.logitBias.emplace_back(static_cast<int32_t>(id), static_cast<float>(v));
  }
  return true;
}

std::string dump(const json &j) {
  // Generated text is whole UTF-8 characters; anything else is replaced
  // rather than thrown over.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json head(const ResponseHead &h, bool chunk) {
  const bool chat = h.endpoint == Endpoint::Chat;
  return json{
      {"id", h.id},
      {"object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                      : "text_completion"},
      {"created", h.created},
      {"model", h.model},
      {"system_fingerprint", "stc"}};
}

json usageJson(const Usage &u) {
  return json{{"prompt_tokens", u.promptTokens},
              {"completion_tokens", u.completionTokens},
              {"total_tokens", u.promptTokens + u.completionTokens},
              {"prompt_tokens_details", {{"cached_tokens", u.cachedTokens}}}};
}

json reason(const std::string &finishReason) {
  return finishReason.empty() ? json(nullptr) : json(finishReason);
}

// One chunk whose first choice carries `delta` (chat) or `text`.
std::string choiceEvent(const ResponseHead &h, const json &delta,
                        const std::string &text,
                        const std::string &finishReason, bool withUsage) {
  json j = head(h, true);
  json choice = {{"index", 0},
                 {"logprobs", nullptr},
                 {"finish_reason", reason(finishReason)}};
  if (h.endpoint == Endpoint::Chat)
    choice["delta"] = delta;
  else
    choice["text"] = text;
  j["choices"] = json::array({choice});
  if (withUsage)
    j["usage"] = nullptr;
  return "data: " + dump(j) + "\n\n";
}

} // namespace

bool parseRequest(Endpoint endpoint, const std::string &body, Request &r,
                  ApiError &e) {
  r = Request{};
  r.endpoint = endpoint;
  json obj;
  try {
    obj = json::parse(body);
  } catch (const json::parse_error &err) {
    // "[json.exception.parse_error.101] parse error at line 1, column 9: ..."
    std::string what = err.what();
    const size_t at = what.find("parse error");
    e.message = "The request body is not valid JSON: " +
                (at == std::string::npos ? what : what.substr(at));
    e.code = "invalid_json";
    return false;
  }
  if (!obj.is_object()) {
    e.message = "The request body must be a JSON object, got " +
                std::string(typeName(obj)) + ".";
    e.code = "invalid_json";
    return false;
  }
  if (const json *model = field(obj, "model"); model && !model->is_string())
    return invalidType(e, "model", "a string", *model);
  if (!refuseUnsupported(obj, e))
    return false;
  if (endpoint == Endpoint::Chat ? !readMessages(obj, r.messages, e)
                                 : !readPrompt(obj, r, e))
    return false;
  // The body again with its keys in order (the template writes tools and
  // arguments as the client gave them).
  const ordered inOrder = ordered::parse(body, nullptr, false);
  if (endpoint == Endpoint::Chat) {
    r.messagesJson = templateMessages(inOrder, r.messages);
    if (!readTools(inOrder, r, e))
      return false;
  } else if (field(obj, "tools")) {
    return invalidValue(e, "tools", "tools are for /v1/chat/completions.");
  }
  if (!readResponseFormat(inOrder, r, e))
    return false;
  std::optional<long long> maxTokens, topK, seed;
  const char *maxName = field(obj, "max_completion_tokens")
                            ? "max_completion_tokens"
                            : "max_tokens";
  if (!readInteger(obj, maxName, 1, std::numeric_limits<int32_t>::max(),
                   maxTokens, e) ||
      !readInteger(obj, "top_k", 0, std::numeric_limits<int32_t>::max(), topK,
                   e) ||
      !readInteger(obj, "seed", std::numeric_limits<long long>::min(),
                   std::numeric_limits<long long>::max(), seed, e) ||
      !readNumber(obj, "temperature", 0, 2, r.temperature, e) ||
      !readNumber(obj, "top_p", 0, 1, r.topP, e) || !readStop(obj, r.stop, e) ||
      !readLogitBias(obj, r, e) || !readBool(obj, "stream", r.stream, e))
    return false;
  if (r.topP && *r.topP <= 0)
    return invalidValue(e, "top_p", "expected a number above 0, up to 1.");
  if (maxTokens)
    r.maxTokens = static_cast<int>(*maxTokens);
  if (topK)
    r.topK = static_cast<int>(*topK);
  if (seed)
    r.seed = static_cast<uint64_t>(*seed);
  if (const json *so = field(obj, "stream_options")) {
    if (!so->is_object())
      return invalidType(e, "stream_options", "an object", *so);
    if (!readBool(*so, "include_usage", r.includeUsage, e)) {
      e.param = "stream_options.include_usage";
      return false;
    }
  }
  return true;
}

std::string errorBody(const ApiError &e) {
  json j = {{"error",
             {{"message", e.message},
              {"type", e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
  return dump(j);
}

std::string completionBody(const ResponseHead &h, const std::string &text,
                           const std::string &finishReason, const Usage &u,
                           const std::vector<ToolCall> &calls) {
  json j = head(h, false);
  json choice = {{"index", 0},
                 {"logprobs", nullptr},
                 {"finish_reason", reason(finishReason)}};
  if (h.endpoint == Endpoint::Chat) {
    choice["message"] = {{"role", "assistant"},
                         {"content", calls.empty() || !text.empty()
                                         ? json(text)
                                         : json(nullptr)}};
    if (!calls.empty()) {
      json list = json::array();
      for (const ToolCall &c : calls)
        list.push_back(
            {{"id", c.id},
             {"type", "function"},
             {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
      choice["message"]["tool_calls"] = list;
    }
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  j["usage"] = usageJson(u);
  return dump(j);
}

std::string roleEvent(const ResponseHead &h, bool withUsage) {
  return choiceEvent(h, {{"role", "assistant"}, {"content", ""}}, "", "",
                     withUsage);
}

std::string textEvent(const ResponseHead &h, const std::string &text,
                      bool withUsage) {
  return choiceEvent(h, {{"content", text}}, text, "", withUsage);
}

std::string finishEvent(const ResponseHead &h, const std::string &finishReason,
                        bool withUsage) {
  return choiceEvent(h, json::object(), "", finishReason, withUsage);
}

std::string toolCallEvent(const ResponseHead &h, const ToolCall &piece,
                          bool withUsage) {
  json call = {{"index", piece.index}};
  json fn = {{"arguments", piece.arguments}};
  if (!piece.id.empty()) {
    call["id"] = piece.id;
    call["type"] = "function";
    fn["name"] = piece.name;
  }
  call["function"] = fn;
  return choiceEvent(h, {{"tool_calls", json::array({call})}}, "", "",
                     withUsage);
}

std::string usageEvent(const ResponseHead &h, const Usage &u) {
  json j = head(h, true);
  j["choices"] = json::array();
  j["usage"] = usageJson(u);
  return "data: " + dump(j) + "\n\n";
}

std::string errorEvent(const ApiError &e) {
  return "data: " + errorBody(e) + "\n\n";
}

} // namespace stc::serve
