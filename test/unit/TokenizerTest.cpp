// The tokenizer's parts on their own: the Qwen2 split, NFC, UTF-8 streaming and
// repair, the data checks, and both forms of merges. (The whole tokenizer is
// checked against Hugging Face's and llama.cpp's in test/tokenizer/.)
#include "TestUtil.h"

#include "PreTokenizer.h"
#include "Tokenizer.h"
#include "Unicode.h"
#include "formats/Checkpoint.h"
#include "formats/FileIO.h"
#include "formats/Json.h"
#include "formats/TokenizerImport.h"
#include "synth/Synth.h"
#include "synth/SynthTokenizer.h"

#include <gtest/gtest.h>

namespace stc {
namespace {

std::vector<std::string> split(const std::string &text) {
  std::vector<uint32_t> cps, offsets;
  size_t bad = 0;
  EXPECT_TRUE(rt::unicode::decodeUtf8(text, cps, offsets, bad));
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  rt::splitQwen2(cps, pieces);
  std::vector<std::string> out;
  for (const auto &p : pieces)
    out.push_back(
        text.substr(offsets[p.first], offsets[p.second] - offsets[p.first]));
  return out;
}

using V = std::vector<std::string>;

TEST(PreTokenizer, Qwen2SplitRules) {
  // Contractions, any case, before the letter rule takes the apostrophe.
  EXPECT_EQ(split("it's"), (V{"it", "'s"}));
  EXPECT_EQ(split("WE'RE"), (V{"WE", "'RE"}));
  // Not a contraction: the apostrophe leads the next letters.
  EXPECT_EQ(split("o'clock"), (V{"o", "'clock"}));
  // One non-letter, non-digit, non-newline character may lead a letter run.
  EXPECT_EQ(split(" hello\tworld"), (V{" hello", "\tworld"}));
  // A newline may not: it goes to the newline rule.
  EXPECT_EQ(split("\nhi"), (V{"\n", "hi"}));
  // Digits one at a time (Llama 3 takes three).
  EXPECT_EQ(split("1314"), (V{"1", "3", "1", "4"}));
  // Punctuation with an optional space before it and newlines after it.
  EXPECT_EQ(split("a ...\n\nb"), (V{"a", " ...\n\n", "b"}));
  // \s*[\r\n]+ : white space up to the last newline of a run.
  EXPECT_EQ(split("a \n \n b"), (V{"a", " \n \n", " b"}));
  // \s+(?!\S) : a run before a word leaves its last space to the word.
  EXPECT_EQ(split("a   b"), (V{"a", "  ", " b"}));
  // \s+ : a run at the end stays whole.
  EXPECT_EQ(split("a   "), (V{"a", "   "}));
  // Letters of any script; an ideographic space is white space.
  EXPECT_EQ(split("编译\u3000器"), (V{"编译", "\u3000器"}));
}

TEST(Unicode, Nfc) {
  using rt::unicode::toNfc;
  EXPECT_EQ(toNfc("cafe\u0301"), "caf\u00e9");       // composes
  EXPECT_EQ(toNfc("\u212b"), "\u00c5");              // singleton Angstrom
  EXPECT_EQ(toNfc("a\u0323\u0307"), "\u1ea1\u0307"); // a + dot below first
  EXPECT_EQ(toNfc("a\u0307\u0323"), "\u1ea1\u0307"); // reordered by class
  EXPECT_EQ(toNfc("\u1100\u1161\u11a8"), "\uac01");  // Hangul L V T
  EXPECT_EQ(toNfc("\u0915\u093c"), "\u0915\u093c");  // composition exclusion
  EXPECT_EQ(toNfc("a\u0301\u0301"), "\u00e1\u0301"); // the second is blocked
  EXPECT_EQ(toNfc("plain ascii"), "plain ascii");
}

TEST(Unicode, StreamingAndRepair) {
  rt::Utf8Stream s;
  // A two-byte character split across two tokens comes out whole.
  EXPECT_EQ(s.push("a\xC3"), "a");
  EXPECT_EQ(s.push("\xA9"), "\xC3\xA9");
  // A byte that cannot start a character is U+FFFD at once.
  EXPECT_EQ(s.push("\xFF"), "\xEF\xBF\xBD");
  // An unfinished character at the end is U+FFFD.
  EXPECT_EQ(s.push("\xE2\x82"), "");
  EXPECT_EQ(s.finish(), "\xEF\xBF\xBD");
  // Each maximal invalid subpart becomes one U+FFFD (as Rust and HF do).
  EXPECT_EQ(rt::toValidUtf8("\xE2\x82x"), "\xEF\xBF\xBDx");
  EXPECT_EQ(rt::toValidUtf8("\xF0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(rt::toValidUtf8("\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); // a surrogate
}

rt::TokenizerData tinyData() {
  ModelConfig c;
  EXPECT_TRUE(synthPresetConfig("tiny", c).ok());
  rt::TokenizerData d;
  Status st = synthTokenizer(c, d);
  EXPECT_TRUE(st.ok()) << st.message();
  return d;
}

TEST(Tokenizer, DataChecks) {
  std::string error;
  {
    rt::TokenizerData d = tinyData();
    d.merges[0][2] = d.merges[1][2]; // a merge whose result is another token
    rt::Tokenizer t;
    EXPECT_FALSE(t.init(d, "x", error));
    EXPECT_NE(error.find("merge 0 does not join its two tokens"),
              std::string::npos)
        << error;
  }
  {
    rt::TokenizerData d = tinyData();
    d.eos.push_back(9999);
    rt::Tokenizer t;
    EXPECT_FALSE(t.init(d, "x", error));
    EXPECT_NE(error.find("eos token id 9999 is past the vocabulary of 512"),
              std::string::npos)
        << error;
  }
  {
    rt::TokenizerData d = tinyData();
    d.kinds[0] = rt::TokenKind::Unused; // the byte '!' has no token now
    rt::Tokenizer t;
    EXPECT_FALSE(t.init(d, "x", error));
    EXPECT_NE(error.find("no token for the byte 0x21"), std::string::npos)
        << error;
  }
}

TEST(Tokenizer, RoundTripsEveryScript) {
  ModelConfig c;
  ASSERT_TRUE(synthPresetConfig("4b", c).ok());
  rt::TokenizerData d;
  ASSERT_TRUE(synthTokenizer(c, d).ok());
  rt::Tokenizer t;
  std::string error;
  ASSERT_TRUE(t.init(d, "4b", error)) << error;
  for (const std::string text :
       {"The compiler reads a checkpoint.", "Größe, élève, mañana, łódź",
        "Привет, мир! Київ", "编译器读取模型，日本語、한국어",
        "0123456789 3.14", "def f(x):\n    return x\n\n\t\ttabs  ",
        "👨‍👩‍👧‍👦 🇫🇷 ❤️",
        "<|im_start|>user\nhi<|im_end|>"}) {
    std::vector<int32_t> ids;
    ASSERT_TRUE(t.encode(text, true, ids, error)) << error;
    EXPECT_EQ(t.decode(ids.data(), ids.size()), text);
  }
  // Special parsing off: the control token is text.
  std::vector<int32_t> on, off;
  ASSERT_TRUE(t.encode("<|im_end|>", true, on, error));
  ASSERT_TRUE(t.encode("<|im_end|>", false, off, error));
  EXPECT_EQ(on, (std::vector<int32_t>{151645}));
  EXPECT_GT(off.size(), 1u);
}

// The tiny preset's tokenizer files in `dir`/json; `root` gets tokenizer.json.
void writeTinyTokenizer(const std::string &dir, std::string &folder,
                        std::string &json, JsonValue &root) {
  SynthOptions o;
  o.preset = "tiny";
  o.format = "hf";
  o.tokenizerOnly = true;
  o.output = folder = joinPath(dir, "json");
  ASSERT_TRUE(writeSynthCheckpoint(o).ok());
  json = test::readFile(joinPath(folder, "tokenizer.json"));
  ASSERT_TRUE(parseJson(json, "tokenizer.json", root).ok());
}

TEST(TokenizerImport, MergesAsPairsEqualMergesAsStrings) {
  // tokenizer.json of newer files writes each merge as ["a", "b"].
  std::string dir = test::scratchDir("tok-pairs"), folder, json;
  JsonValue root;
  writeTinyTokenizer(dir, folder, json, root);
  const size_t at = json.find("\"merges\": [");
  ASSERT_NE(at, std::string::npos);
  std::string head = json.substr(0, at), tail = "\"merges\": [";
  const JsonValue &merges = *root.get("model")->get("merges");
  for (size_t i = 0; i < merges.array.size(); ++i) {
    const std::string &m = merges.array[i].string;
    const size_t sp = m.find(' ');
    tail += i ? ", [" : "[";
    appendJsonString(tail, m.substr(0, sp));
    tail += ", ";
    appendJsonString(tail, m.substr(sp + 1));
    tail += "]";
  }
  tail += "]}\n}\n";
  const std::string pairs = joinPath(dir, "pairs");
  ASSERT_TRUE(makeDirectories(pairs).ok());
  test::writeFile(joinPath(pairs, "tokenizer.json"), head + tail);
  rt::TokenizerData a, b;
  bool found = false;
  ASSERT_TRUE(importTokenizerAlone(folder, a, found).ok() && found);
  Status st = importTokenizerAlone(pairs, b, found);
  ASSERT_TRUE(st.ok() && found) << st.message();
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_EQ(a.tokens.size(), b.tokens.size());
}

TEST(TokenizerImport, VocabAndMergesFilesEqualTokenizerJson) {
  // The slow tokenizer's files: vocab.json (token -> id) and merges.txt.
  std::string dir = test::scratchDir("tok-vocab"), folder, json;
  JsonValue root;
  writeTinyTokenizer(dir, folder, json, root);
  const JsonValue &model = *root.get("model");
  std::string vocab = "{", merges = "#version: 0.2\n";
  for (const auto &kv : model.get("vocab")->object) {
    vocab += vocab.size() > 1 ? ", " : "";
    appendJsonString(vocab, kv.first);
    vocab += ": " + std::to_string(kv.second.integer);
  }
  vocab += "}";
  for (const JsonValue &m : model.get("merges")->array)
    merges += m.string + "\n";
  const std::string files = joinPath(dir, "files");
  ASSERT_TRUE(makeDirectories(files).ok());
  test::writeFile(joinPath(files, "vocab.json"), vocab);
  test::writeFile(joinPath(files, "merges.txt"), merges);
  test::writeFile(joinPath(files, "tokenizer_config.json"),
                  test::readFile(joinPath(folder, "tokenizer_config.json")));
  rt::TokenizerData a, b;
  bool found = false;
  ASSERT_TRUE(importTokenizerAlone(folder, a, found).ok() && found);
  Status st = importTokenizerAlone(files, b, found);
  ASSERT_TRUE(st.ok() && found) << st.message();
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_EQ(a.nfc, b.nfc);
  EXPECT_EQ(a.eos, b.eos);
}

} // namespace
} // namespace stc
