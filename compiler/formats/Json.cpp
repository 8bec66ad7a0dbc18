#include "Json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace stc {

const JsonValue *JsonValue::get(const std::string &key) const {
  if (kind != Kind::Object)
    return nullptr;
  for (const auto &kv : object)
    if (kv.first == key)
      return &kv.second;
  return nullptr;
}

const char *JsonValue::kindName(Kind k) {
  switch (k) {
  case Kind::Null:
    return "null";
  case Kind::Bool:
    return "a boolean";
  case Kind::Number:
    return "a number";
  case Kind::String:
    return "a string";
  case Kind::Array:
    return "an array";
  case Kind::Object:
    return "an object";
  }
  return "?";
}

namespace {

constexpr int kMaxDepth = 64;

class Parser {
public:
  Parser(const std::string &text, const std::string &source)
      : s_(text), source_(source) {}

  Status parseDocument(JsonValue &out) {
    skipSpace();
    STC_TRY(parseValue(out, 0));
    skipSpace();
    if (pos_ != s_.size())
      return fail("unexpected trailing characters");
    return Status::success();
  }

private:
  Status fail(const std::string &what) const {
    return Status::error(source_ + ": invalid JSON at byte " +
                         std::to_string(pos_) + ": " + what);
  }

  void skipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' ||
                                s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  bool consumeLiteral(const char *lit) {
    size_t n = std::strlen(lit);
    if (s_.compare(pos_, n, lit) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }

  Status parseValue(JsonValue &out, int depth) {
    if (depth > kMaxDepth)
      return fail("nesting deeper than " + std::to_string(kMaxDepth));
    if (pos_ >= s_.size())
      return fail("unexpected end of input");
    char c = s_[pos_];
    if (c == '{')
      return parseObject(out, depth);
    if (c == '[')
      return parseArray(out, depth);
    if (c == '"') {
      out.kind = JsonValue::Kind::String;
      return parseString(out.string);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
      return parseNumber(out);
    if (consumeLiteral("true")) {
      out.kind = JsonValue::Kind::Bool;
      out.boolean = true;
      return Status::success();
    }
    if (consumeLiteral("false")) {
      out.kind = JsonValue::Kind::Bool;
      out.boolean = false;
      return Status::success();
    }
    if (consumeLiteral("null")) {
      out.kind = JsonValue::Kind::Null;
      return Status::success();
    }
    return fail(std::string("unexpected character '") + c + "'");
  }

  Status parseObject(JsonValue &out, int depth) {
    out.kind = JsonValue::Kind::Object;
    ++pos_; // '{'
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return Status::success();
    }
    while (true) {
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"')
        return fail("expected a string key");
      std::string key;
      STC_TRY(parseString(key));
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':')
        return fail("expected ':' after key \"" + key + "\"");
      ++pos_;
      skipSpace();
      out.object.emplace_back(std::move(key), JsonValue());
      STC_TRY(parseValue(out.object.back().second, depth + 1));
      skipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return Status::success();
      }
      return fail("expected ',' or '}' in object");
    }
  }

  Status parseArray(JsonValue &out, int depth) {
    out.kind = JsonValue::Kind::Array;
    ++pos_; // '['
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return Status::success();
    }
    while (true) {
      skipSpace();
      out.array.emplace_back();
      STC_TRY(parseValue(out.array.back(), depth + 1));
      skipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return Status::success();
      }
      return fail("expected ',' or ']' in array");
    }
  }

  static void appendUtf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  Status parseHex4(uint32_t &v) {
    if (s_.size() - pos_ < 4)
      return fail("truncated \\u escape");
    v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return fail("bad hex digit in \\u escape");
    }
    return Status::success();
  }

  Status parseString(std::string &out) {
    ++pos_; // opening quote
    while (true) {
      if (pos_ >= s_.size())
        return fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"')
        return Status::success();
      if (static_cast<unsigned char>(c) < 0x20)
        return fail("control character in string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= s_.size())
        return fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        out.push_back(e);
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        uint32_t cp = 0;
        STC_TRY(parseHex4(cp));
        if (cp >= 0xD800 && cp < 0xDC00) {
          if (s_.compare(pos_, 2, "\\u") != 0)
            return fail("unpaired surrogate in \\u escape");
          pos_ += 2;
          uint32_t lo = 0;
          STC_TRY(parseHex4(lo));
          if (lo < 0xDC00 || lo >= 0xE000)
            return fail("bad low surrogate in \\u escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          return fail("unpaired low surrogate in \\u escape");
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        return fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  Status parseNumber(JsonValue &out) {
    size_t start = pos_;
    bool integral = true;
    if (s_[pos_] == '-')
      ++pos_;
    if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9'))
      return fail("bad number");
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
      ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9'))
        return fail("bad number: digits expected after '.'");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
        ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-'))
        ++pos_;
      if (pos_ >= s_.size() || !(s_[pos_] >= '0' && s_[pos_] <= '9'))
        return fail("bad number: digits expected in exponent");
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
        ++pos_;
    }
    std::string text = s_.substr(start, pos_ - start);
    out.kind = JsonValue::Kind::Number;
    out.number = std::strtod(text.c_str(), nullptr);
    if (integral) {
      errno = 0;
      long long v = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == 0) {
        out.isInteger = true;
        out.integer = v;
      }
    }
    return Status::success();
  }

  const std::string &s_;
  const std::string &source_;
  size_t pos_ = 0;
};

} // namespace

Status parseJson(const std::string &text, const std::string &source,
                 JsonValue &out) {
  out = JsonValue();
  return Parser(text, source).parseDocument(out);
}

void appendJsonString(std::string &out, const std::string &s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
  }
  out.push_back('"');
}

} // namespace stc
