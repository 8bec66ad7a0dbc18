#include "TokenizerFile.h"

namespace stc::rt {

flatbuffers::Offset<model::Tokenizer>
buildTokenizer(flatbuffers::FlatBufferBuilder &b, const TokenizerData &d) {
  std::vector<uint8_t> bytes;
  std::vector<uint32_t> ends;
  std::vector<uint8_t> kinds;
  for (size_t i = 0; i < d.tokens.size(); ++i) {
    bytes.insert(bytes.end(), d.tokens[i].begin(), d.tokens[i].end());
    ends.push_back(static_cast<uint32_t>(bytes.size()));
    kinds.push_back(static_cast<uint8_t>(d.kinds[i]));
  }
  std::vector<int32_t> merges;
  merges.reserve(d.merges.size() * 3);
  for (const auto &m : d.merges)
    merges.insert(merges.end(), m.begin(), m.end());
  auto pre = b.CreateString(d.pre);
  auto tb = b.CreateVector(bytes);
  auto te = b.CreateVector(ends);
  auto tk = b.CreateVector(
      reinterpret_cast<const model::TokenKind *>(kinds.data()), kinds.size());
  auto mg = b.CreateVector(merges);
  auto eos = b.CreateVector(d.eos);
  auto tmpl = b.CreateString(d.chatTemplate);
  model::TokenizerBuilder t(b);
  t.add_semantics(static_cast<model::TokenizerSemantics>(d.semantics));
  t.add_nfc(d.nfc);
  t.add_pre(pre);
  t.add_ignore_merges(d.ignoreMerges);
  t.add_token_bytes(tb);
  t.add_token_ends(te);
  t.add_token_kinds(tk);
  t.add_merges(mg);
  t.add_bos(d.bos);
  t.add_pad(d.pad);
  t.add_add_bos(d.addBos);
  t.add_eos(eos);
  t.add_chat_template(tmpl);
  t.add_temperature(d.temperature);
  t.add_top_p(d.topP);
  t.add_top_k(d.topK);
  return t.Finish();
}

bool readTokenizer(const model::Tokenizer &t, TokenizerData &out,
                   const std::string &where, std::string &error) {
  auto fail = [&](const std::string &what) {
    error = where + ": the tokenizer " + what;
    return false;
  };
  if (!t.token_bytes() || !t.token_ends() || !t.token_kinds() || !t.merges() ||
      !t.pre())
    return fail("lacks its tokens, merges or pre-tokenizer");
  const auto &ends = *t.token_ends();
  if (t.token_kinds()->size() != ends.size())
    return fail("has " + std::to_string(t.token_kinds()->size()) +
                " token kinds for " + std::to_string(ends.size()) + " tokens");
  if (t.merges()->size() % 3 != 0)
    return fail("has a merge list that is not whole triples");
  const auto *bytes = reinterpret_cast<const char *>(t.token_bytes()->data());
  out = TokenizerData();
  out.semantics = t.semantics() == model::TokenizerSemantics::LlamaCpp
                      ? TokenizerSemantics::LlamaCpp
                      : TokenizerSemantics::HuggingFace;
  out.nfc = t.nfc();
  out.pre = t.pre()->str();
  out.ignoreMerges = t.ignore_merges();
  out.tokens.resize(ends.size());
  out.kinds.resize(ends.size());
  uint32_t begin = 0;
  for (uint32_t i = 0; i < ends.size(); ++i) {
    const uint32_t end = ends[i];
    if (end < begin || end > t.token_bytes()->size())
      return fail("token " + std::to_string(i) + " ends outside its bytes");
    out.tokens[i].assign(bytes + begin, end - begin);
    const auto kind = static_cast<uint8_t>(t.token_kinds()->Get(i));
    if (kind > static_cast<uint8_t>(TokenKind::Unused))
      return fail("token " + std::to_string(i) + " has the unknown kind " +
                  std::to_string(kind));
    out.kinds[i] = static_cast<TokenKind>(kind);
    begin = end;
  }
  const auto &m = *t.merges();
  out.merges.resize(m.size() / 3);
  for (size_t i = 0; i < out.merges.size(); ++i)
    out.merges[i] = {m[3 * i], m[3 * i + 1], m[3 * i + 2]};
  out.bos = t.bos();
  out.pad = t.pad();
  out.addBos = t.add_bos();
  if (t.eos())
    out.eos.assign(t.eos()->begin(), t.eos()->end());
  if (t.chat_template())
    out.chatTemplate = t.chat_template()->str();
  out.temperature = t.temperature();
  out.topP = t.top_p();
  out.topK = t.top_k();
  return true;
}

} // namespace stc::rt
