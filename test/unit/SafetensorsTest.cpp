// Safetensors: the writer and the header reader agree; sharded checkpoints
// resolve.
#include "TestUtil.h"

#include "formats/Checkpoint.h"
#include "formats/Safetensors.h"

#include <gtest/gtest.h>

using namespace stc;
using namespace stc::test;

TEST(Safetensors, WriterAndReaderAgree) {
  std::string dir = scratchDir("st-rw");
  std::string path = dir + "/a.safetensors";
  SafetensorsWriter w;
  w.declare("x", DType::F32, {2, 3});
  w.declare("y \"quoted\"", DType::BF16, {5});
  ASSERT_TRUE(w.open(path).ok());
  float xs[6] = {1, 2, 3, 4, 5, 6};
  uint16_t ys[5] = {1, 2, 3, 4, 5};
  ASSERT_TRUE(w.write(xs, sizeof(xs)).ok());
  ASSERT_TRUE(w.write(ys, sizeof(ys)).ok());
  ASSERT_TRUE(w.commit().ok());

  SafetensorsFile f;
  Status st = readSafetensorsHeader(path, f);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].name, "x");
  EXPECT_EQ(f.tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.tensors[0].nbytes, 24u);
  EXPECT_EQ(f.tensors[0].offset % 8, 0u); // data starts 8-byte aligned
  EXPECT_EQ(f.tensors[1].name, "y \"quoted\"");
  EXPECT_EQ(f.tensors[1].dtype, DType::BF16);
  EXPECT_EQ(f.tensors[1].offset, f.tensors[0].offset + 24);
  EXPECT_EQ(f.fileSize, f.tensors[1].offset + 10);
}

TEST(Safetensors, ShardedCheckpointMatchesSingleFile) {
  std::string dir = scratchDir("st-shards");
  std::string one = synthCheckpoint(dir, "tiny", "hf", DType::BF16, 3, 1);
  std::string three = synthCheckpoint(dir, "tiny", "hf", DType::BF16, 3, 3);
  EXPECT_TRUE(fileExists(three + "/model-00002-of-00003.safetensors"));
  EXPECT_TRUE(fileExists(three + "/model.safetensors.index.json"));
  Checkpoint a, b;
  ASSERT_TRUE(Checkpoint::open(one, a).ok());
  Status st = Checkpoint::open(three, b);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (size_t i = 0; i < a.weights.size(); ++i) {
    const WeightInfo &wa = a.weights[i], &wb = b.weights[i];
    ASSERT_EQ(wa.name, wb.name);
    ASSERT_EQ(wa.shape, wb.shape);
    std::vector<float> va(wa.numElements()), vb(wb.numElements());
    ASSERT_TRUE(a.readF32(wa, 0, va.size(), va.data()).ok());
    ASSERT_TRUE(b.readF32(wb, 0, vb.size(), vb.data()).ok());
    ASSERT_EQ(va, vb) << wa.name;
  }
}

TEST(Safetensors, StackedExpertsReadAcrossExtents) {
  std::string dir = scratchDir("st-experts");
  Checkpoint hf, gg;
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny", "hf", DType::F32), hf)
          .ok());
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny", "gguf", DType::F32), gg)
          .ok());
  const WeightInfo *w = hf.find("blk.1.ffn_down_exps");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->extents.size(), 8u); // one per expert in the HF layout
  EXPECT_EQ(gg.find("blk.1.ffn_down_exps")->extents.size(), 1u);
  // A range that straddles experts 2 and 3 reads the same from both layouts.
  const uint64_t per = 128 * 64, begin = 3 * per - 100;
  std::vector<float> a(200), b(200);
  ASSERT_TRUE(hf.readF32(*w, begin, 200, a.data()).ok());
  ASSERT_TRUE(
      gg.readF32(*gg.find("blk.1.ffn_down_exps"), begin, 200, b.data()).ok());
  EXPECT_EQ(a, b);
}

TEST(Safetensors, HFConfigRules) {
  std::string dir = scratchDir("st-config");
  Checkpoint tiny, swa;
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny", "hf", DType::F32), tiny)
          .ok());
  ASSERT_TRUE(
      Checkpoint::open(synthCheckpoint(dir, "tiny-swa", "hf", DType::F32), swa)
          .ok());
  // tiny: sigmoid (the key is absent, as in the real 4B config), untied head.
  EXPECT_EQ(tiny.config.weighting, RouterWeighting::Sigmoid);
  EXPECT_FALSE(tiny.lmHeadTied);
  EXPECT_NE(tiny.find("output"), nullptr);
  // tiny-swa: softmax, tied, per-layer arrays taken verbatim.
  EXPECT_EQ(swa.config.weighting, RouterWeighting::Softmax);
  EXPECT_TRUE(swa.lmHeadTied);
  EXPECT_EQ(swa.config.ropeLayout, (std::vector<int>{0, 1, 1, 1, 0, 1}));
  EXPECT_EQ(swa.config.swaLayout, (std::vector<int>{0, 1, 1, 0, 0, 1}));
  EXPECT_EQ(swa.config.layerWindow(1), 8);
  EXPECT_EQ(swa.config.layerWindow(3), 0);
}
