// Bad input: each damaged checkpoint gives one clear error naming the file and
// the tensor or field, and nothing crashes (this suite also runs under ASan +
// UBSan).
#include "TestUtil.h"

#include "formats/Checkpoint.h"
#include "formats/Gguf.h"
#include "formats/Safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace stc;
using namespace stc::test;

namespace {

class BadInput : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = scratchDir("bad");
    hf_ = synthCheckpoint(dir_, "tiny", "hf", DType::F32);
    gguf_ = synthCheckpoint(dir_, "tiny", "gguf", DType::F32);
  }
  // Opens `path` and expects failure with every `needle` in the message.
  void expectError(const std::string &path, std::vector<std::string> needles) {
    Checkpoint ck;
    Status st = Checkpoint::open(path, ck);
    ASSERT_FALSE(st.ok()) << "expected an error for " << path;
    for (const std::string &n : needles)
      EXPECT_NE(st.message().find(n), std::string::npos)
          << "message '" << st.message() << "' lacks '" << n << "'";
    EXPECT_EQ(st.message().find('\n'), std::string::npos) << "one line";
  }
  std::string damagedHF(const std::string &name) {
    return copyDir(hf_, dir_ + "/" + name);
  }
  std::string dir_, hf_, gguf_;
};

} // namespace

TEST_F(BadInput, TruncatedSafetensorsHeader) {
  std::string d = damagedHF("trunc-header");
  std::string f = d + "/model.safetensors";
  writeFile(f, readFile(f).substr(0, 5));
  expectError(d, {f, "truncated safetensors header"});
}

TEST_F(BadInput, HeaderLengthPastEndOfFile) {
  std::string d = damagedHF("header-len");
  std::string f = d + "/model.safetensors";
  std::string bytes = readFile(f);
  bytes[6] = 0x01; // header length ~2^48
  writeFile(f, bytes);
  expectError(d, {f, "header length", "past the end of the file"});
}

TEST_F(BadInput, TensorDataOutOfBounds) {
  std::string d = damagedHF("oob");
  std::string f = d + "/model.safetensors";
  std::string bytes = readFile(f);
  writeFile(
      f, bytes.substr(0, bytes.size() - 100)); // the last tensor loses its tail
  expectError(d, {f, "lm_head.weight", "outside the file"});
}

TEST_F(BadInput, MissingTensor) {
  std::string d = damagedHF("missing");
  editSafetensorsHeader(d + "/model.safetensors", [](std::string &h) {
    replaceOnce(h, "model.layers.1.block_sparse_moe.experts.5.up.weight",
                "model.layers.1.block_sparse_moe.experts.5.upx.weight");
  });
  expectError(
      d,
      {"missing tensor 'model.layers.1.block_sparse_moe.experts.5.up.weight'"});
}

TEST_F(BadInput, WrongShape) {
  std::string d = damagedHF("shape");
  std::string cfg = readFile(d + "/config.json");
  replaceOnce(cfg, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 4");
  writeFile(d + "/config.json", cfg);
  expectError(d, {"model.layers.0.self_attn.k_proj.weight",
                  "has shape [64, 128]", "expected [128, 128]"});
}

TEST_F(BadInput, ShapeDisagreesWithDataOffsets) {
  std::string d = damagedHF("span");
  editSafetensorsHeader(d + "/model.safetensors", [](std::string &h) {
    replaceOnce(h, "\"shape\":[512,128]", "\"shape\":[512,129]");
  });
  expectError(d, {"model.embed_tokens.weight", "data_offsets span"});
}

TEST_F(BadInput, UnknownDType) {
  std::string d = damagedHF("dtype");
  editSafetensorsHeader(d + "/model.safetensors", [](std::string &h) {
    replaceOnce(h, "\"dtype\":\"F32\"", "\"dtype\":\"F8_E4M3\"");
  });
  expectError(d, {"model.embed_tokens.weight", "unsupported dtype 'F8_E4M3'"});
}

TEST_F(BadInput, ConfigMissingRequiredField) {
  std::string d = damagedHF("config");
  std::string cfg = readFile(d + "/config.json");
  replaceOnce(cfg, "\"hidden_size\": 128,\n", "");
  writeFile(d + "/config.json", cfg);
  expectError(d, {d + "/config.json", "missing required field 'hidden_size'"});
}

TEST_F(BadInput, ConfigInconsistentHeads) {
  std::string d = damagedHF("heads");
  std::string cfg = readFile(d + "/config.json");
  replaceOnce(cfg, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
  writeFile(d + "/config.json", cfg);
  expectError(
      d,
      {"num_attention_heads (4) is not a multiple of num_key_value_heads (3)"});
}

TEST_F(BadInput, MissingConfig) {
  std::string d = damagedHF("noconfig");
  std::remove((d + "/config.json").c_str());
  expectError(d, {"missing config.json"});
}

TEST_F(BadInput, BadGgufMagic) {
  std::string f = dir_ + "/magic.gguf";
  std::string bytes = readFile(gguf_);
  bytes[0] = 'X';
  writeFile(f, bytes);
  expectError(f, {f, "bad GGUF magic"});
}

TEST_F(BadInput, BadGgufVersion) {
  std::string f = dir_ + "/version.gguf";
  std::string bytes = readFile(gguf_);
  bytes[4] = 9;
  writeFile(f, bytes);
  expectError(f, {f, "unsupported GGUF version 9"});
}

TEST_F(BadInput, TruncatedGguf) {
  std::string f = dir_ + "/trunc.gguf";
  std::string bytes = readFile(gguf_);
  writeFile(f, bytes.substr(0, bytes.size() / 2));
  expectError(f, {f, "lies outside the file"});
  writeFile(f, bytes.substr(0, 2500)); // cut inside the tensor infos
  expectError(f, {f, "truncated"});
  writeFile(f, bytes.substr(0, 200)); // too short for the declared tensor count
  expectError(f, {f, "tensor count 33 cannot fit"});
}

TEST_F(BadInput, GgufAbsurdCounts) {
  std::string f = dir_ + "/counts.gguf";
  std::string bytes = readFile(gguf_);
  for (int i = 8; i < 16; ++i)
    bytes[i] = '\x7f'; // tensor count ~ 9e18
  writeFile(f, bytes);
  expectError(f, {f, "tensor count", "cannot fit"});
}

TEST_F(BadInput, GgufWrongTensorShape) {
  // A GGUF whose attn_k claims 4 kv heads' worth of rows.
  std::string f = dir_ + "/shape.gguf";
  GgufFile g;
  ASSERT_TRUE(readGgufHeader(gguf_, g).ok());
  std::string bytes = readFile(gguf_);
  // Patch the ne[1] of blk.0.attn_k.weight (64 -> 128) in the tensor-info
  // table.
  std::string name = "blk.0.attn_k.weight";
  size_t p = bytes.find(name);
  ASSERT_NE(p, std::string::npos);
  size_t ne1 = p + name.size() + 4 + 8; // after n_dims and ne[0]
  ASSERT_EQ(static_cast<uint8_t>(bytes[ne1]), 64);
  bytes[ne1] = static_cast<char>(128);
  writeFile(f, bytes);
  expectError(f, {f, "blk.0.attn_k.weight"});
}

// Sets the ggml type id of tensor `name` (rank 2) in GGUF bytes.
void setGgmlType(std::string &bytes, const std::string &name, uint32_t type) {
  size_t p = bytes.find(name);
  ASSERT_NE(p, std::string::npos);
  const size_t at = p + name.size() + 4 + 2 * 8; // n_dims, ne[0], ne[1]
  std::memcpy(&bytes[at], &type, 4);
}

TEST_F(BadInput, GgufTypesStcDoesNotRead) {
  // IQ2_XXS (16) by its ggml name; an id ggml never had by its number.
  std::string f = dir_ + "/iq2.gguf";
  std::string bytes = readFile(gguf_);
  setGgmlType(bytes, "token_embd.weight", 16);
  writeFile(f, bytes);
  expectError(f, {f, "token_embd.weight", "unsupported ggml type IQ2_XXS"});
  bytes = readFile(gguf_);
  setGgmlType(bytes, "token_embd.weight", 77);
  writeFile(f, bytes);
  expectError(f, {f, "unsupported ggml type type 77"});
}

TEST_F(BadInput, GgufRowsNotWholeBlocks) {
  // tiny's rows are 128 elements: not one 256-element Q4_K super-block.
  std::string f = dir_ + "/q4k.gguf";
  std::string bytes = readFile(gguf_);
  setGgmlType(bytes, "blk.0.attn_q.weight", 12);
  writeFile(f, bytes);
  expectError(f, {f, "blk.0.attn_q.weight",
                  "Q4_K rows of 128 elements are not a multiple of its "
                  "256-element block"});
}

TEST_F(BadInput, GgufTypeThatNeedsMoreBytesThanItsData) {
  // An f32 tensor declared Q8_0 needs fewer bytes, which passes; one declared
  // f32 where the file holds Q4_0 needs more and runs into the next tensor.
  std::string q4 = synthCheckpoint(dir_, "tiny", "gguf", DType::Q4_0, 8);
  std::string f = dir_ + "/lying.gguf";
  std::string bytes = readFile(q4);
  setGgmlType(bytes, "blk.0.attn_q.weight", 0);
  writeFile(f, bytes);
  expectError(f, {f, "tensor 'blk.0.attn_q.weight' needs 65536 bytes as f32",
                  "its shape or type does not match its data"});
}

TEST_F(BadInput, NotACheckpoint) {
  expectError(dir_ + "/nope", {"no such file or directory"});
  std::string f = dir_ + "/empty.gguf";
  writeFile(f, "");
  expectError(f, {f, "not a GGUF file"});
}

// Absurd sizes are refused from the header alone, before anything is allocated
// for them (under ASan a multi-terabyte allocation would abort the test).
TEST_F(BadInput, AbsurdTensorSizeInGguf) {
  std::string f = dir_ + "/huge.gguf";
  std::string bytes = readFile(gguf_);
  std::string name = "token_embd.weight";
  size_t p = bytes.find(name);
  ASSERT_NE(p, std::string::npos);
  size_t ne1 = p + name.size() + 4 + 8; // n_dims, ne[0], then ne[1]
  uint64_t huge = uint64_t(1) << 33;    // 128 x 2^33 = 2^40 elements
  std::memcpy(&bytes[ne1], &huge, 8);
  writeFile(f, bytes);
  expectError(f, {f, "token_embd.weight"});
}

TEST_F(BadInput, AbsurdTensorSizeInSafetensors) {
  std::string d = damagedHF("huge");
  editSafetensorsHeader(d + "/model.safetensors", [](std::string &h) {
    replaceOnce(h, "\"shape\":[512,128]", "\"shape\":[1099511627776,128]");
  });
  expectError(d, {"model.embed_tokens.weight"});
}

TEST_F(BadInput, AbsurdLayerCount) {
  std::string d = damagedHF("layers");
  std::string cfg = readFile(d + "/config.json");
  replaceOnce(cfg, "\"num_hidden_layers\": 3",
              "\"num_hidden_layers\": 1000000000");
  writeFile(d + "/config.json", cfg);
  expectError(d, {"num_hidden_layers = 1000000000"});
  std::string f = dir_ + "/layers.gguf";
  std::string bytes = readFile(gguf_);
  std::string key = "smallthinker.block_count";
  size_t p = bytes.find(key);
  ASSERT_NE(p, std::string::npos);
  uint32_t n = 1000000000;
  std::memcpy(&bytes[p + key.size() + 4], &n, 4); // after the u32 value type
  writeFile(f, bytes);
  expectError(f, {f, "num_hidden_layers = 1000000000"});
}

TEST_F(BadInput, GgufStringLongerThanTheFile) {
  std::string f = dir_ + "/string.gguf";
  std::string bytes = readFile(gguf_);
  uint64_t len = uint64_t(1) << 40; // the first metadata key's length
  std::memcpy(&bytes[24], &len, 8);
  writeFile(f, bytes);
  expectError(f,
              {f, "declares length 1099511627776, more than the file holds"});
}
