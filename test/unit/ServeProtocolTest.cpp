// stc-serve's protocol half: OpenAI request checking (the errors a client
// gets for each kind of bad field), the response and chunk shapes, and stop
// strings over streamed pieces.
#include "OpenAi.h"
#include "StopFilter.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace stc::serve {
namespace {

using nlohmann::json;

ApiError refused(Endpoint e, const std::string &body) {
  Request r;
  ApiError err;
  EXPECT_FALSE(parseRequest(e, body, r, err)) << body;
  return err;
}

TEST(ServeRequest, ChatFieldsAndDefaults) {
  Request r;
  ApiError e;
  ASSERT_TRUE(parseRequest(
      Endpoint::Chat,
      R"({"model":"x","messages":[{"role":"developer","content":"Be brief."},
          {"role":"user","content":[{"type":"text","text":"Hi "},
                                    {"type":"text","text":"there"}]},
          {"role":"assistant","content":null}],
          "max_tokens":12,"temperature":0.5,"top_p":0.9,"top_k":5,
          "seed":-3,"stop":["\n\n","END"],"stream":true,
          "stream_options":{"include_usage":true},"n":1,"user":"ignored",
          "logprobs":false,"tools":[],"logit_bias":{"509":-100,"7":2.5}})",
      r, e))
      << e.message;
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "Hi there");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.maxTokens, 12);
  EXPECT_FLOAT_EQ(*r.temperature, 0.5f);
  EXPECT_FLOAT_EQ(*r.topP, 0.9f);
  EXPECT_EQ(*r.topK, 5);
  EXPECT_EQ(*r.seed, static_cast<uint64_t>(-3));
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.includeUsage);
  std::sort(r.logitBias.begin(), r.logitBias.end());
  EXPECT_EQ(r.logitBias, (std::vector<std::pair<int32_t, float>>{
                             {7, 2.5f}, {509, -100.0f}}));

  // Omitted: the model's defaults (empty), until eos (-1).
  ASSERT_TRUE(parseRequest(Endpoint::Chat,
                           R"({"messages":[{"role":"user","content":"a"}],
                               "temperature":null,"max_completion_tokens":3})",
                           r, e));
  EXPECT_FALSE(r.temperature || r.topP || r.topK || r.seed);
  EXPECT_EQ(r.maxTokens, 3);
  EXPECT_FALSE(r.stream);
  ASSERT_TRUE(parseRequest(Endpoint::Chat,
                           R"({"messages":[{"role":"user","content":"a"}],
                               "max_tokens":4.0})",
                           r, e));
  EXPECT_EQ(r.maxTokens, 4);
}

TEST(ServeRequest, CompletionPrompts) {
  Request r;
  ApiError e;
  ASSERT_TRUE(parseRequest(Endpoint::Completion, R"({"prompt":"Once"})", r, e));
  EXPECT_EQ(r.prompt, "Once");
  ASSERT_TRUE(
      parseRequest(Endpoint::Completion, R"({"prompt":["Once"]})", r, e));
  EXPECT_EQ(r.prompt, "Once");
  ASSERT_TRUE(
      parseRequest(Endpoint::Completion, R"({"prompt":[1,2,3]})", r, e));
  EXPECT_TRUE(r.promptIsIds);
  EXPECT_EQ(r.promptIds, (std::vector<int32_t>{1, 2, 3}));
  ASSERT_TRUE(
      parseRequest(Endpoint::Completion, R"({"prompt":[[7,8]]})", r, e));
  EXPECT_EQ(r.promptIds, (std::vector<int32_t>{7, 8}));
}

TEST(ServeRequest, BadRequestsNameTheField) {
  ApiError e = refused(Endpoint::Chat, R"({"messages": [)");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "invalid_json");
  EXPECT_NE(e.message.find("parse error at line 1, column 15"),
            std::string::npos)
      << e.message;
  EXPECT_EQ(refused(Endpoint::Chat, "[1]").code, "invalid_json");
  e = refused(Endpoint::Chat, "{}");
  EXPECT_EQ(e.code, "missing_required_parameter");
  EXPECT_EQ(e.param, "messages");
  e = refused(Endpoint::Chat,
              R"({"messages":[{"role":"function","content":"x"}]})");
  EXPECT_EQ(e.param, "messages[0].role");
  EXPECT_NE(e.message.find("'function' is not a supported role"),
            std::string::npos);
  e = refused(Endpoint::Chat,
              R"({"messages":[{"role":"tool","content":"x"}]})");
  EXPECT_EQ(e.code, "missing_required_parameter");
  EXPECT_EQ(e.param, "messages[0].tool_call_id");
  e = refused(
      Endpoint::Chat,
      R"({"messages":[{"role":"tool","content":"x","tool_call_id":3}]})");
  EXPECT_EQ(e.code, "invalid_type");
  EXPECT_EQ(e.param, "messages[0].tool_call_id");
  e = refused(Endpoint::Chat, R"({"messages":[{"role":"user"}]})");
  EXPECT_EQ(e.param, "messages[0].content");
  e = refused(Endpoint::Chat, R"({"messages":[{"role":"user","content":5}]})");
  EXPECT_EQ(e.code, "invalid_type");
  e = refused(
      Endpoint::Chat,
      R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})");
  EXPECT_EQ(e.param, "messages[0].content[0].type");
  e = refused(Endpoint::Chat, R"({"messages":[]})");
  EXPECT_EQ(e.code, "invalid_value");

  const std::string m = R"("messages":[{"role":"user","content":"a"}])";
  struct Case {
    const char *field, *code;
  } cases[] = {
      {R"("temperature":"hot")", "invalid_type"},
      {R"("temperature":3)", "invalid_value"},
      {R"("top_p":0)", "invalid_value"},
      {R"("top_k":-1)", "invalid_value"},
      {R"("top_k":1.5)", "invalid_type"},
      {R"("max_tokens":0)", "invalid_value"},
      {R"("max_tokens":"10")", "invalid_type"},
      {R"("seed":"1")", "invalid_type"},
      {R"("stop":3)", "invalid_type"},
      {R"("stop":["a",1])", "invalid_type"},
      {R"("stream":"yes")", "invalid_type"},
      {R"("stream_options":{"include_usage":1})", "invalid_type"},
      {R"("n":2)", "invalid_value"},
      {R"("logprobs":true)", "invalid_value"},
      {R"("tools":[{"type":"function"}])", "invalid_value"},
      {R"("model":7)", "invalid_type"},
      {R"("logit_bias":[1])", "invalid_type"},
      {R"("logit_bias":{"x":1})", "invalid_value"},
      {R"("logit_bias":{"5":101})", "invalid_value"},
      {R"("logit_bias":{"5":"1"})", "invalid_type"},
  };
  for (const Case &c : cases) {
    e = refused(Endpoint::Chat, "{" + m + "," + c.field + "}");
    EXPECT_EQ(e.status, 400) << c.field;
    EXPECT_EQ(e.code, c.code) << c.field << ": " << e.message;
    EXPECT_FALSE(e.param.empty()) << c.field;
  }
  EXPECT_EQ(refused(Endpoint::Completion, R"({"prompt":["a","b"]})").code,
            "invalid_value");
  EXPECT_EQ(refused(Endpoint::Completion, R"({"prompt":[1,-2]})").code,
            "invalid_value");
  EXPECT_EQ(refused(Endpoint::Completion, R"({"prompt":""})").code,
            "invalid_value");
  EXPECT_EQ(refused(Endpoint::Completion, R"({"prompt":"a","echo":true})").code,
            "invalid_value");

  // The error object is OpenAI's.
  json j = json::parse(errorBody(refused(Endpoint::Chat, "{}")));
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "messages");
  EXPECT_TRUE(j["error"]["message"].is_string());
}

TEST(ServeResponse, Shapes) {
  ResponseHead h{Endpoint::Chat, "chatcmpl-1", "tiny", 1700000000};
  Usage u{10, 4, 3};
  json body = json::parse(completionBody(h, "Hello", "stop", u));
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["total_tokens"], 13);
  EXPECT_EQ(body["usage"]["prompt_tokens_details"]["cached_tokens"], 4);

  auto event = [](const std::string &e) {
    EXPECT_EQ(e.rfind("data: ", 0), 0u);
    EXPECT_EQ(e.substr(e.size() - 2), "\n\n");
    return json::parse(e.substr(6));
  };
  json role = event(roleEvent(h, true));
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(role["usage"].is_null());
  json text = event(textEvent(h, "Hel", false));
  EXPECT_EQ(text["choices"][0]["delta"]["content"], "Hel");
  EXPECT_TRUE(text["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(text.contains("usage"));
  json fin = event(finishEvent(h, "length", true));
  EXPECT_EQ(fin["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(fin["choices"][0]["delta"].empty());
  json usage = event(usageEvent(h, u));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 3);

  ResponseHead c{Endpoint::Completion, "cmpl-1", "tiny", 1};
  EXPECT_EQ(
      json::parse(completionBody(c, "x", "stop", u))["choices"][0]["text"],
      "x");
  EXPECT_EQ(event(textEvent(c, "y", false))["object"], "text_completion");
  // Invalid UTF-8 never throws out of a response.
  EXPECT_NO_THROW(completionBody(h, "\xff", "stop", u));
}

std::string feed(StopFilter &f, const std::vector<std::string> &pieces) {
  std::string out;
  for (const std::string &p : pieces) {
    out += f.push(p);
    if (f.stopped())
      break;
  }
  return out + f.flush();
}

TEST(ServeStop, AcrossPieces) {
  StopFilter none({});
  EXPECT_EQ(feed(none, {"a", "b"}), "ab");

  StopFilter f({"END", "\n\n"});
  EXPECT_EQ(f.push("Hello E"), "Hello ");
  EXPECT_EQ(f.push("N"), "");
  EXPECT_EQ(f.push("X"), "ENX"); // not a stop string after all
  EXPECT_EQ(f.push("a\n"), "a");
  EXPECT_EQ(f.push("\nrest"), "");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.push("more"), "");
  EXPECT_EQ(f.flush(), "");

  StopFilter g({"stop"});
  EXPECT_EQ(feed(g, {"no st", "op here"}), "no ");
  StopFilter h({"abc"});
  EXPECT_EQ(feed(h, {"xab"}), "xab"); // held back, then flushed at the end
  StopFilter i({"b", "abc"}); // the one that starts first in the text wins
  EXPECT_EQ(feed(i, {"xa", "bc"}), "x");
  StopFilter j({"日本"}); // held back by whole characters
  EXPECT_EQ(j.push("今日"), "今");
  EXPECT_EQ(j.push("日"), "日");
  EXPECT_EQ(j.push("本語"), "");
  EXPECT_TRUE(j.stopped());
}

} // namespace
} // namespace stc::serve
