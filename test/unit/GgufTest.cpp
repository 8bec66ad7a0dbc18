// GGUF: metadata and tensor-info round trips, alignment, and llama.cpp's layer
// rules.
#include "TestUtil.h"

#include "formats/Checkpoint.h"
#include "formats/Gguf.h"

#include <gtest/gtest.h>

using namespace stc;
using namespace stc::test;

TEST(Gguf, WriterAndReaderAgree) {
  std::string dir = scratchDir("gguf-rw");
  std::string path = dir + "/a.gguf";
  GgufWriter w;
  w.addMetadata("general.architecture", GgufValue::ofString("smallthinker"));
  w.addMetadata("k.u32", GgufValue::ofU32(7));
  w.addMetadata("k.f32", GgufValue::ofF32(1.5f));
  w.addMetadata("k.bool", GgufValue::ofBool(true));
  w.addMetadata("k.arr", GgufValue::ofI32Array({1, -2, 3}));
  w.declare("t0", DType::F32, {3});
  w.declare("t1", DType::Q4_0, {64, 2});
  ASSERT_TRUE(w.open(path).ok());
  float t0[3] = {1, 2, 3};
  ASSERT_TRUE(w.beginTensor(0).ok());
  ASSERT_TRUE(w.write(t0, sizeof(t0)).ok());
  ASSERT_TRUE(w.beginTensor(1).ok());
  std::string q(4 * kQ4_0BlockBytes, '\x11');
  ASSERT_TRUE(w.write(q.data(), q.size()).ok());
  ASSERT_TRUE(w.commit().ok());

  GgufFile f;
  Status st = readGgufHeader(path, f);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(f.version, 3u);
  int64_t v;
  ASSERT_TRUE(f.find("k.u32")->asInt(v));
  EXPECT_EQ(v, 7);
  EXPECT_EQ(f.find("k.f32")->f, 1.5);
  EXPECT_EQ(f.find("k.bool")->u, 1u);
  ASSERT_EQ(f.find("k.arr")->array.size(), 3u);
  EXPECT_EQ(f.find("k.arr")->array[1].i, -2);
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[1].dtype, DType::Q4_0);
  EXPECT_EQ(f.tensors[1].ne, (std::vector<uint64_t>{64, 2}));
  EXPECT_EQ(f.tensors[1].nbytes, 4 * kQ4_0BlockBytes);
  EXPECT_EQ(f.tensors[0].offset % 32, 0u);
  EXPECT_EQ(f.tensors[1].offset % 32, 0u);
  EXPECT_EQ(f.fileSize, f.tensors[1].offset + f.tensors[1].nbytes);
}

TEST(Gguf, SynthMatchesHFWeightsExactly) {
  std::string dir = scratchDir("gguf-same");
  Checkpoint hf, gg;
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny", "hf", DType::F32), hf)
          .ok());
  Status st =
      Checkpoint::open(synthCheckpoint(dir, "tiny", "gguf", DType::F32), gg);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(gg.config.convention, Convention::LlamaCpp);
  EXPECT_EQ(gg.config.weighting, RouterWeighting::Sigmoid);
  ASSERT_EQ(hf.weights.size(), gg.weights.size());
  for (const WeightInfo &w : hf.weights) {
    const WeightInfo *o = gg.find(w.name);
    ASSERT_NE(o, nullptr) << w.name;
    ASSERT_EQ(w.shape, o->shape) << w.name;
    std::vector<float> a(w.numElements()), b(w.numElements());
    ASSERT_TRUE(hf.readF32(w, 0, a.size(), a.data()).ok());
    ASSERT_TRUE(gg.readF32(*o, 0, b.size(), b.data()).ok());
    ASSERT_EQ(a, b) << w.name;
  }
}

TEST(Gguf, QuantizedTensorsStayQuantizedAndRouterStaysF32) {
  std::string dir = scratchDir("gguf-q");
  for (DType q : {DType::Q4_0, DType::Q8_0}) {
    Checkpoint ck;
    ASSERT_TRUE(
        Checkpoint::open(synthCheckpoint(dir, "tiny", "gguf", q), ck).ok());
    EXPECT_EQ(ck.find("blk.0.attn_q")->dtype, q);
    EXPECT_EQ(ck.find("blk.0.ffn_up_exps")->dtype, q);
    EXPECT_EQ(ck.find("token_embd")->dtype, q);
    EXPECT_EQ(ck.find("blk.0.ffn_gate_inp")->dtype, DType::F32);
    EXPECT_EQ(ck.find("blk.0.attn_norm")->dtype, DType::F32);
  }
}

TEST(Gguf, LlamaCppLayerRulesWithoutLayoutKeys) {
  std::string dir = scratchDir("gguf-rules");
  Checkpoint ck;
  Status st = Checkpoint::open(
      synthCheckpoint(dir, "tiny-swa", "gguf", DType::F32, 7, 1, true), ck);
  ASSERT_TRUE(st.ok()) << st.message();
  // SWA declared: llama.cpp makes il % 4 == 0 NoPE + global, the rest RoPE +
  // SWA, and pins the window to 4096 whatever the file says.
  EXPECT_EQ(ck.config.ropeLayout, (std::vector<int>{0, 1, 1, 1, 0, 1}));
  EXPECT_EQ(ck.config.swaLayout, (std::vector<int>{0, 1, 1, 1, 0, 1}));
  EXPECT_EQ(ck.config.slidingWindow, 4096);
  EXPECT_FALSE(ck.config.notes.empty());
  // No SWA key (tiny): RoPE and global attention everywhere.
  Checkpoint tiny;
  ASSERT_TRUE(
      Checkpoint::open(
          synthCheckpoint(dir, "tiny", "gguf", DType::F32, 7, 1, true), tiny)
          .ok());
  EXPECT_EQ(tiny.config.ropeLayout, (std::vector<int>{1, 1, 1}));
  EXPECT_EQ(tiny.config.swaLayout, (std::vector<int>{0, 0, 0}));
}

TEST(Gguf, StcLayoutKeysKeepTheHFLayout) {
  std::string dir = scratchDir("gguf-layout");
  Checkpoint ck;
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny-swa", "gguf", DType::F32), ck)
          .ok());
  EXPECT_EQ(ck.config.ropeLayout, (std::vector<int>{0, 1, 1, 1, 0, 1}));
  EXPECT_EQ(ck.config.swaLayout, (std::vector<int>{0, 1, 1, 0, 0, 1}));
  EXPECT_EQ(ck.config.slidingWindow, 8);
  EXPECT_TRUE(ck.lmHeadTied); // no output.weight: the head reads token_embd
}
