// ToolCalls: the streaming reader of Hermes tool calls.
#include "ToolCalls.h"

#include <cctype>
#include <cstring>
#include <initializer_list>
#include <random>

namespace stc::serve {

namespace {

bool isSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// The head of a call, `{"name": "NAME", "arguments":` with any whitespace:
// 1 when read (`end`: where the arguments start), 0 when more text is
// needed, -1 when the text is not a call's head.
int readHead(const std::string &t, std::string &name, size_t &end) {
  size_t p = 0;
  auto space = [&] {
    while (p < t.size() && isSpace(t[p]))
      ++p;
  };
  auto word = [&](const char *w) {
    const size_t n = std::strlen(w);
    const size_t have = std::min(n, t.size() - p);
    if (t.compare(p, have, w, have) != 0)
      return -1;
    if (have < n)
      return 0;
    p += n;
    return 1;
  };
  // Each word of the head after any whitespace: 1 when all were read.
  auto words = [&](std::initializer_list<const char *> ws) {
    for (const char *w : ws) {
      space();
      if (const int r = word(w); r <= 0)
        return r;
    }
    return 1;
  };
  if (const int r = words({"{", "\"name\"", ":", "\""}); r <= 0)
    return r;
  name.clear();
  while (true) { // the name (escapes kept as written: names are plain)
    if (p >= t.size())
      return 0;
    if (t[p] == '"')
      break;
    if (t[p] == '\\' && ++p >= t.size())
      return 0;
    name += t[p++];
  }
  ++p;
  if (const int r = words({",", "\"arguments\"", ":"}); r <= 0)
    return r;
  space();
  if (p >= t.size())
    return 0;
  end = p;
  return 1;
}

std::string newCallId() {
  static std::mt19937_64 rng{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof(buf), "call_%016llx",
                static_cast<unsigned long long>(rng()));
  return buf;
}

} // namespace

void ToolCallStream::content(std::vector<Delta> &out) {
  // Content up to what may still turn out to begin a call (a prefix of
  // "<tool_call>") or be whitespace before one.
  size_t keep = held_.size();
  const size_t open = std::strlen(kOpen);
  for (size_t n = std::min(open - 1, held_.size()); n > 0; --n)
    if (held_.compare(held_.size() - n, n, kOpen, n) == 0) {
      keep = held_.size() - n;
      break;
    }
  size_t ws = keep;
  while (ws > 0 && isSpace(held_[ws - 1]))
    --ws;
  if (ws > 0) {
    Delta d;
    d.text = held_.substr(0, ws);
    out.push_back(std::move(d));
    held_.erase(0, ws);
  }
}

void ToolCallStream::push(const std::string &text, std::vector<Delta> &out) {
  std::string args; // this push's piece of the current call's arguments
  auto flushArgs = [&] {
    if (args.empty())
      return;
    Delta d;
    d.isCall = true;
    d.call.index = static_cast<int>(calls_.size()) - 1;
    d.call.arguments = args;
    out.push_back(std::move(d));
    args.clear();
  };
  for (char c : text) {
    switch (state_) {
    case State::Content: {
      held_ += c;
      const size_t at = held_.find(kOpen);
      if (at == std::string::npos) {
        content(out);
        break;
      }
      // A call begins: the text before it is content (but whitespace).
      size_t ws = at;
      while (ws > 0 && isSpace(held_[ws - 1]))
        --ws;
      if (ws > 0) {
        Delta d;
        d.text = held_.substr(0, ws);
        out.push_back(std::move(d));
      }
      held_.clear();
      callText_.clear();
      state_ = State::Head;
      break;
    }
    case State::Head: {
      callText_ += c;
      std::string name;
      size_t start = 0;
      const int r = readHead(callText_, name, start);
      if (r < 0) { // not a call: its text is content
        held_ = kOpen + callText_;
        state_ = State::Content;
        content(out);
      } else if (r > 0) {
        ToolCall call;
        call.index = static_cast<int>(calls_.size());
        call.id = newCallId();
        call.name = name;
        calls_.push_back(call);
        Delta d;
        d.isCall = true;
        d.call = call;
        out.push_back(std::move(d));
        depth_ = 0;
        inString_ = escaped_ = started_ = false;
        state_ = State::Arguments;
        // The first character of the arguments is this one.
        const std::string first = callText_.substr(start);
        callText_.clear();
        for (char a : first) {
          started_ = true;
          if (a == '"')
            inString_ = true;
          else if (a == '{' || a == '[')
            ++depth_;
          calls_.back().arguments += a;
          args += a;
        }
      }
      break;
    }
    case State::Arguments: {
      bool done = false;
      if (inString_) {
        if (escaped_)
          escaped_ = false;
        else if (c == '\\')
          escaped_ = true;
        else if (c == '"') {
          inString_ = false;
          done = depth_ == 0; // a string value, whole
        }
      } else if (c == '"') {
        inString_ = true;
      } else if (c == '{' || c == '[') {
        ++depth_;
      } else if (c == '}' || c == ']') {
        if (depth_ == 0) { // the call object's own brace: the value ended
          state_ = State::Tail;
          callText_ = c;
          break;
        }
        done = --depth_ == 0;
      } else if (depth_ == 0 && (c == ',' || isSpace(c))) {
        state_ = State::Tail; // after a number, true, false or null
        callText_ = c;
        break;
      }
      calls_.back().arguments += c;
      args += c;
      if (done) {
        state_ = State::Tail;
        callText_.clear();
      }
      break;
    }
    case State::Tail:
      // "}" and "</tool_call>" with whitespace; then content again.
      callText_ += c;
      if (callText_.find(kClose) != std::string::npos) {
        state_ = State::Content;
        callText_.clear();
      } else if (callText_.size() > 64) { // not the end of a call: content
        held_ = callText_;
        callText_.clear();
        state_ = State::Content;
        flushArgs();
        content(out);
      }
      break;
    }
  }
  flushArgs();
}

void ToolCallStream::finish(std::vector<Delta> &out) {
  if (state_ == State::Head) // an unfinished call head: content
    held_ = kOpen + callText_;
  // Whitespace at the end is content only in a response without calls.
  if (!held_.empty() && (calls_.empty() || held_.find_first_not_of(" \t\r\n") !=
                                               std::string::npos)) {
    Delta d;
    d.text = held_;
    out.push_back(std::move(d));
  }
  held_.clear();
  state_ = State::Content;
}

} // namespace stc::serve
