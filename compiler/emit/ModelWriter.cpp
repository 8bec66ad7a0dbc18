#include "emit/ModelWriter.h"

#include "dialects/st/StDialect.h"
#include "formats/Checkpoint.h"
#include "formats/DType.h"
#include "formats/FileIO.h"
#include "formats/KTiles.h"
#include "formats/Progress.h"

#include "ModelLayout.h"
#include "TokenizerFile.h"
#include "model_generated.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cstring>
#include <map>
#include <memory>

using namespace mlir;

namespace stc {

namespace {

namespace fb = stc::model;

bool toDType(Type t, DType &out) {
  if (t.isF32())
    out = DType::F32;
  else if (t.isF16())
    out = DType::F16;
  else if (t.isBF16())
    out = DType::BF16;
  else if (isa<st::Q8_0Type>(t))
    out = DType::Q8_0;
  else if (isa<st::Q4_0Type>(t))
    out = DType::Q4_0;
  else if (auto b = dyn_cast<st::BlockType>(t))
    return parseDTypeName(b.getKind().str(), out);
  else
    return false;
  return true;
}

fb::DType toFb(DType t) {
  switch (t) {
  case DType::F32:
    return fb::DType::F32;
  case DType::F16:
    return fb::DType::F16;
  case DType::BF16:
    return fb::DType::BF16;
  case DType::Q8_0:
    return fb::DType::Q8_0;
  case DType::Q4_0:
    return fb::DType::Q4_0;
  case DType::Q4_K:
    return fb::DType::Q4_K;
  case DType::Q5_K:
    return fb::DType::Q5_K;
  case DType::Q6_K:
    return fb::DType::Q6_K;
  case DType::Q3_K:
    return fb::DType::Q3_K;
  default:
    break; // no kernel reads the other block types: never stored
  }
  return fb::DType::F32;
}

// One weight as the writer sees it: where its source bytes are and what to make
// of them.
struct WeightPlan {
  st::WeightOp op;
  std::string name;
  DType source, stored;
  fb::Layout layout = fb::Layout::RowMajor;
  std::vector<int64_t> shape;
  uint64_t offset = 0, size = 0, expertStride = 0;
  // The extents hold each expert's matrix transposed (PowerInfer's down).
  bool transposedSource = false;
  // st-neuron-layout's order ([E * F]: physical neuron p of expert e is
  // neuron order[e * F + p]), applied to the rows of gate and up
  // (`orderRows`) or to the neuron rows of a transposed down.
  std::vector<int32_t> order;
  bool orderRows = false;
};

// Reads byte ranges of a weight's concatenated source extents.
class ExtentReader {
public:
  Status read(const WeightPlan &w, uint64_t begin, uint64_t n, uint8_t *out) {
    st::WeightOp op =
        w.op; // MLIR op handles are values; accessors are non-const
    for (Attribute a : op.getExtents()) {
      auto e = cast<st::ExtentAttr>(a);
      if (n == 0)
        break;
      if (begin >= e.getSize()) {
        begin -= e.getSize();
        continue;
      }
      uint64_t k = std::min(n, e.getSize() - begin);
      std::string path = e.getFile().str();
      auto it = files_.find(path);
      if (it == files_.end()) {
        auto f = std::make_unique<InputFile>();
        STC_TRY(f->open(path));
        it = files_.emplace(path, std::move(f)).first;
      }
      std::string what = "weight '" + w.name + "'";
      STC_TRY(it->second->read(e.getOffset() + begin, out, k, what.c_str()));
      out += k;
      n -= k;
      begin = 0;
    }
    if (n != 0)
      return Status::error("weight '" + w.name + "': extents end early");
    return Status::success();
  }

private:
  std::map<std::string, std::unique_ptr<InputFile>> files_;
};

// Puts one GGUF block into lane l of a 16-lane tile (rows16 and blocks16
// alike): quad j's 4 bytes at tile[j][l][0..3], the fp16 scale bytes at
// scale[0..1]. q8_0 values are stored as u8 = q + 128 (see gemm_quant).
void placeBlockInLane(DType t, const uint8_t *blk, uint8_t *tile, int l,
                      uint8_t *scale) {
  const int quads = t == DType::Q4_0 ? 4 : 8;
  scale[0] = blk[0];
  scale[1] = blk[1];
  for (int j = 0; j < quads; ++j)
    for (int r = 0; r < 4; ++r) {
      uint8_t v = blk[2 + 4 * j + r];
      tile[j * 64 + l * 4 + r] =
          t == DType::Q8_0 ? static_cast<uint8_t>(v ^ 0x80) : v;
    }
}

// Interleaves `rows` (a multiple of 16) rows of GGUF blocks into rows16 tiles
// (block b of row 16g + l in lane l of tile (g, b)) and the fp16 scales
// [g][b][l].
void repackRows16(DType t, const uint8_t *blocks, int64_t rows, int64_t cols,
                  uint8_t *tiles, uint8_t *scales) {
  const int quads = t == DType::Q4_0 ? 4 : 8;
  const size_t blockBytes =
      t == DType::Q4_0 ? kQ4_0BlockBytes : kQ8_0BlockBytes;
  const int64_t B = cols / 32, G = rows / 16;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t b = 0; b < B; ++b)
      for (int l = 0; l < 16; ++l)
        placeBlockInLane(t, blocks + ((g * 16 + l) * B + b) * blockBytes,
                         tiles + (g * B + b) * quads * 64, l,
                         scales + ((g * B + b) * 16 + l) * 2);
}

// A [D][F] matrix of GGUF blocks (along F) to the transposed layout: the values
// [F][D] (q4_0: byte j of 32-byte chunk c of row f holds d = 64c + j low and
// d = 64c + 32 + j high; q8_0: int8) and the fp16 scales [F/32][D].
void transposeBlocks(DType t, const uint8_t *blocks, int64_t D, int64_t F,
                     std::vector<uint8_t> &data, std::vector<uint8_t> &scales) {
  const bool q4 = t == DType::Q4_0;
  const size_t blockBytes = q4 ? kQ4_0BlockBytes : kQ8_0BlockBytes;
  const int64_t FB = F / 32;
  data.assign(static_cast<size_t>(F) * (q4 ? D / 2 : D), 0);
  scales.resize(static_cast<size_t>(FB) * D * 2);
  for (int64_t d = 0; d < D; ++d)
    for (int64_t fb = 0; fb < FB; ++fb) {
      const uint8_t *blk = blocks + (d * FB + fb) * blockBytes;
      scales[(fb * D + d) * 2] = blk[0];
      scales[(fb * D + d) * 2 + 1] = blk[1];
      for (int i = 0; i < 32; ++i) {
        const int64_t f = fb * 32 + i;
        if (!q4) {
          data[f * D + d] = blk[2 + i];
          continue;
        }
        const uint8_t q = i < 16 ? blk[2 + i] & 15 : blk[2 + i - 16] >> 4;
        const int64_t c = d / 64, z = (d % 64) / 32, j = d % 32;
        data[f * (D / 2) + 32 * c + j] |= static_cast<uint8_t>(q << (4 * z));
      }
    }
}

// GGUF rows to blocks16 tiles [row][tile][j][l][r] (block 16 * tile + l of the
// row in lane l; zero blocks pad the last tile) and fp16 scales [row][tile][l].
// q8_0 values are stored as u8 = q + 128, as in rows16.
void repackBlocks16(DType t, const uint8_t *blocks, int64_t rows, int64_t cols,
                    std::vector<uint8_t> &tiles, std::vector<uint8_t> &scales) {
  const int quads = t == DType::Q4_0 ? 4 : 8;
  const size_t blockBytes =
      t == DType::Q4_0 ? kQ4_0BlockBytes : kQ8_0BlockBytes;
  const int64_t B = cols / 32,
                T = static_cast<int64_t>(rt::blocks16Tiles(cols));
  tiles.assign(static_cast<size_t>(rows) * T * quads * 64,
               t == DType::Q8_0 ? 0x80 : 0); // padding: value 0 (q8_0), scale 0
  scales.assign(static_cast<size_t>(rows) * T * 16 * 2, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t tile = b / 16, l = b % 16;
      placeBlockInLane(t, blocks + (r * B + b) * blockBytes,
                       &tiles[(r * T + tile) * quads * 64], static_cast<int>(l),
                       &scales[((r * T + tile) * 16 + l) * 2]);
    }
}

class Writer {
public:
  Writer(ModuleOp module, const TargetInfo &target,
         const rt::TokenizerData *tokenizer)
      : module_(module), target_(target), tokenizer_(tokenizer) {}

  Status run(const std::string &path, ModelWriteStats &stats) {
    STC_TRY(collectWeights());
    STC_TRY(collectNeuronOrders());
    STC_TRY(buildPlan());
    // Tensor offsets, relative to data_start.
    uint64_t offset = 0;
    for (WeightPlan &w : weights_) {
      uint64_t align =
          w.shape.size() == 3 ? rt::kDataAlignment : rt::kTensorAlignment;
      offset = (offset + align - 1) / align * align;
      w.offset = offset;
      offset += w.size;
    }
    std::vector<uint8_t> plan = finishFlatbuffer();
    AtomicOutputFile out;
    STC_TRY(out.open(path));
    uint64_t fbSize = plan.size();
    STC_TRY(out.write(rt::kModelMagic, 8));
    STC_TRY(out.write(&fbSize, 8));
    STC_TRY(out.write(plan.data(), plan.size()));
    uint64_t dataStart = (16 + fbSize + rt::kDataAlignment - 1) /
                         rt::kDataAlignment * rt::kDataAlignment;
    STC_TRY(out.writeZeros(dataStart - out.offset()));
    // Reading each weight from the checkpoint, converting it to its scheme
    // and writing it is the long step of a compile: shown as it goes.
    Progress progress("weights read, converted and written", offset);
    progress_ = &progress;
    dataStart_ = dataStart;
    for (WeightPlan &w : weights_) {
      STC_TRY(out.writeZeros(dataStart + w.offset - out.offset()));
      STC_TRY(writeWeight(w, out));
    }
    progress_ = nullptr;
    stats.fileBytes = out.offset();
    stats.weightBytes = offset;
    stats.steps = steps_.size();
    stats.buffers = bufferWidths_.size();
    stats.tensors = weights_.size();
    return out.commit();
  }

private:
  Status collectWeights() {
    Status st;
    module_.walk([&](st::WeightOp op) {
      if (!st.ok())
        return;
      WeightPlan w;
      w.op = op;
      w.name = op.getSymName().str();
      RankedTensorType type = cast<RankedTensorType>(op.getType());
      if (!toDType(op.getSourceTensorType().getElementType(), w.source) ||
          !toDType(type.getElementType(), w.stored) ||
          w.stored == DType::BF16) {
        st = Status::error("weight '" + w.name +
                           "' has a type the model file cannot store; run "
                           "st-lower-to-kernels first");
        return;
      }
      auto layout = op->getAttrOfType<StringAttr>("layout");
      llvm::StringRef name = layout ? layout.getValue() : "row_major";
      if (name == "rows16")
        w.layout = fb::Layout::Rows16;
      else if (name == "blocks16")
        w.layout = fb::Layout::Blocks16;
      else if (name == "transposed")
        w.layout = fb::Layout::Transposed;
      else if (name == "neuron_rows")
        w.layout = fb::Layout::NeuronRows;
      else if (name != "row_major") {
        st = Status::error("weight '" + w.name + "' has the unknown layout '" +
                           name.str() + "'");
        return;
      }
      if (isQuantized(w.stored) && w.layout == fb::Layout::RowMajor) {
        st = Status::error("weight '" + w.name +
                           "' is quantized but in no layout the kernels read "
                           "(rows16, blocks16, transposed or neuron_rows)");
        return;
      }
      w.shape.assign(type.getShape().begin(), type.getShape().end());
      w.transposedSource = op->hasAttr("transposed_source");
      if (w.transposedSource && w.shape.size() != 3) {
        st = Status::error("weight '" + w.name +
                           "' is marked transposed_source but is not a stack "
                           "of expert matrices");
        return;
      }
      w.size = rt::tensorBytes(toFb(w.stored), w.layout, w.shape.data(),
                               w.shape.size(), &w.expertStride);
      if (w.size == 0) {
        st = Status::error("weight '" + w.name +
                           "' has a shape the model file "
                           "layout cannot hold");
        return;
      }
      index_[w.name] = static_cast<int>(weights_.size());
      weights_.push_back(std::move(w));
    });
    return st;
  }

  // st-neuron-layout's orders, from the moe kernels to their three weights.
  Status collectNeuronOrders() {
    Status st;
    module_.walk([&](st::KernelOp k) {
      auto order = k.getParams().getAs<DenseIntElementsAttr>("neuron_order");
      if (!st.ok() || k.getOp() != "moe" || !order)
        return;
      std::vector<int32_t> values;
      for (const APInt &v : order.getValues<APInt>())
        values.push_back(static_cast<int32_t>(v.getSExtValue()));
      auto inputs = k.getInputs();
      for (unsigned i = 3; i < 6 && i < inputs.size(); ++i) {
        auto l = inputs[i].getDefiningOp<st::LoadWeightOp>();
        auto it = l ? index_.find(l.getName().str()) : index_.end();
        if (it == index_.end()) {
          st = Status::error("moe kernel: expert weight " + std::to_string(i) +
                             " is not a loaded weight");
          return;
        }
        WeightPlan &w = weights_[it->second];
        const int64_t E = w.shape.size() == 3 ? w.shape[0] : 0;
        const int64_t F = i == 5 ? w.shape.back() : w.shape[1];
        if (E * F != static_cast<int64_t>(values.size())) {
          st = Status::error(
              "weight '" + w.name + "': neuron_order has " +
              std::to_string(values.size()) +
              " entries, expected experts x ffn = " + std::to_string(E * F));
          return;
        }
        // Edited IR may carry any numbers: each expert's must be a
        // permutation, or the rows would be read out of range.
        std::vector<bool> seen(F);
        for (int64_t e = 0; e < E && st.ok(); ++e) {
          std::fill(seen.begin(), seen.end(), false);
          for (int64_t p = 0; p < F; ++p) {
            const int32_t f = values[e * F + p];
            if (f < 0 || f >= F || seen[f]) {
              st = Status::error(
                  "weight '" + w.name + "': neuron_order of expert " +
                  std::to_string(e) + " is not a permutation of 0.." +
                  std::to_string(F - 1));
              return;
            }
            seen[f] = true;
          }
        }
        if (i == 5 && w.layout != fb::Layout::Transposed &&
            w.layout != fb::Layout::NeuronRows) {
          st = Status::error("weight '" + w.name +
                             "': a neuron order needs the transposed or "
                             "neuron_rows down layout (st-sparse-reglu)");
          return;
        }
        w.order = values;
        w.orderRows = i != 5;
      }
    });
    return st;
  }

  // Liveness-based buffer assignment: a value's buffer is released after its
  // last use and reused by a later value of the same element type and width.
  int allocate(Value v) {
    auto t = cast<RankedTensorType>(v.getType());
    bool isInt = t.getElementType().isInteger(32);
    int64_t width = t.getRank() == 2 ? t.getDimSize(1) : 1;
    for (size_t i = 0; i < free_.size(); ++i) {
      int b = free_[i];
      if (bufferWidths_[b] == width && bufferInt_[b] == isInt) {
        free_.erase(free_.begin() + i);
        return buffers_[v] = b;
      }
    }
    bufferWidths_.push_back(width);
    bufferInt_.push_back(isInt);
    return buffers_[v] = static_cast<int>(bufferWidths_.size()) - 1;
  }

  Status buildPlan() {
    func::FuncOp fn;
    module_.walk([&](func::FuncOp f) {
      if (f.getName() == "forward")
        fn = f;
    });
    if (!fn)
      return Status::error("the module has no func.func @forward");
    Block &body = fn.getBody().front();
    // Last use of each value, so buffers can be released.
    llvm::DenseMap<Value, Operation *> lastUse;
    for (Operation &op : body)
      for (Value v : op.getOperands())
        lastUse[v] = &op;
    idsBuffer_ = allocate(body.getArgument(0));
    positionsBuffer_ = allocate(body.getArgument(1));
    for (Operation &op : body) {
      if (isa<st::LoadWeightOp>(op))
        continue;
      if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        logitsBuffer_ = buffers_.lookup(ret.getOperand(0));
        continue;
      }
      auto k = dyn_cast<st::KernelOp>(op);
      if (!k)
        return Status::error("op '" + op.getName().getStringRef().str() +
                             "' is not a kernel call; run st-lower-to-kernels "
                             "before writing a model file");
      STC_TRY(addStep(k));
      for (Value v : op.getOperands()) {
        if (lastUse.lookup(v) == &op && buffers_.count(v) &&
            v != body.getArgument(0) && v != body.getArgument(1))
          free_.push_back(buffers_[v]);
      }
    }
    if (logitsBuffer_ < 0)
      return Status::error("@forward returns no logits");
    return Status::success();
  }

  int64_t param(st::KernelOp k, llvm::StringRef name) {
    auto a = k.getParams().getAs<IntegerAttr>(name);
    return a ? a.getInt() : 0;
  }

  Status addStep(st::KernelOp k) {
    StepDesc s;
    llvm::StringRef op = k.getOp();
    std::vector<Value> acts;
    for (Value v : k.getInputs()) {
      if (auto l = v.getDefiningOp<st::LoadWeightOp>()) {
        auto it = index_.find(l.getName().str());
        if (it == index_.end())
          return Status::error("kernel uses unknown weight @" +
                               l.getName().str());
        s.weights.push_back(it->second);
      } else {
        if (!buffers_.count(v))
          return Status::error("kernel '" + op.str() +
                               "' reads a value with no buffer");
        s.inputs.push_back(buffers_[v]);
      }
    }
    // Results get buffers after the inputs are read; an input is never reused
    // for a result of the same step (it is released only after this step).
    for (Value r : k.getResults())
      s.outputs.push_back(allocate(r));
    if (auto l = k.getParams().getAs<IntegerAttr>("layer"))
      s.layer = static_cast<int>(l.getInt());
    if (op == "embed") {
      s.op = fb::Op::Embed;
    } else if (op == "rms_norm") {
      s.op = fb::Op::RmsNorm;
      s.floats.push_back(
          k.getParams().getAs<FloatAttr>("eps").getValueAsDouble());
    } else if (op == "gemm") {
      s.op = fb::Op::Gemm;
    } else if (op == "route" || op == "dispatch") {
      s.op = op == "route" ? fb::Op::Route : fb::Op::Dispatch;
      auto w = k.getParams().getAs<StringAttr>("weighting");
      s.ints = {param(k, "top_k"), w && w.getValue() == "softmax" ? 1 : 0};
    } else if (op == "rope") {
      s.op = fb::Op::Rope;
      s.ints = {param(k, "heads"), param(k, "head_dim")};
      ropeTheta_ = k.getParams().getAs<FloatAttr>("theta").getValueAsDouble();
    } else if (op == "attention") {
      s.op = fb::Op::Attention;
      fb::KvType kvType = fb::KvType::F32;
      if (auto t = k.getParams().getAs<StringAttr>("kv_type"))
        if (!rt::parseKvType(t.getValue().str(), kvType))
          return Status::error("attention kernel: unknown kv_type '" +
                               t.getValue().str() + "'");
      s.ints = {param(k, "heads"),    param(k, "kv_heads"),
                param(k, "head_dim"), param(k, "window"),
                param(k, "kv_slots"), static_cast<int64_t>(kvType)};
    } else if (op == "moe") {
      s.op = fb::Op::Moe;
      if (auto order =
              k.getParams().getAs<DenseIntElementsAttr>("neuron_order"))
        for (const APInt &v : order.getValues<APInt>())
          s.neuronOrder.push_back(static_cast<int32_t>(v.getSExtValue()));
    } else if (op == "add") {
      s.op = fb::Op::Add;
    } else {
      return Status::error("unknown kernel op '" + op.str() + "'");
    }
    steps_.push_back(std::move(s));
    return Status::success();
  }

  std::vector<uint8_t> finishFlatbuffer() {
    flatbuffers::FlatBufferBuilder b(1 << 16);
    auto cfg = module_->getAttrOfType<DictionaryAttr>("st.config");
    auto geti = [&](llvm::StringRef n, int64_t def) -> int64_t {
      if (!cfg)
        return def;
      auto a = cfg.getAs<IntegerAttr>(n);
      return a ? a.getInt() : def;
    };
    auto getf = [&](llvm::StringRef n, double def) {
      if (!cfg)
        return def;
      auto a = cfg.getAs<FloatAttr>(n);
      return a ? a.getValueAsDouble() : def;
    };
    std::vector<int32_t> eos;
    auto config = fb::CreateConfig(
        b, geti("num_hidden_layers", 0), geti("hidden_size", 0),
        geti("num_attention_heads", 0), geti("num_key_value_heads", 0),
        geti("head_dim", 0), geti("vocab_size", 0),
        geti("moe_num_primary_experts", 0),
        geti("moe_num_active_primary_experts", 0),
        geti("moe_ffn_hidden_size", 0), getf("rope_theta", ropeTheta_),
        getf("rms_norm_eps", 1e-6),
        static_cast<int32_t>(geti("max_position_embeddings", 4096)),
        static_cast<int32_t>(geti("bos_token_id", -1)), b.CreateVector(eos));
    std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
    for (const WeightPlan &w : weights_)
      tensors.push_back(fb::CreateTensor(
          b, b.CreateString(w.name), toFb(w.stored), w.layout,
          b.CreateVector(w.shape), w.offset, w.size, w.expertStride));
    std::vector<flatbuffers::Offset<fb::Buffer>> buffers;
    for (size_t i = 0; i < bufferWidths_.size(); ++i)
      buffers.push_back(fb::CreateBuffer(
          b, b.CreateString("b" + std::to_string(i)),
          bufferInt_[i] ? fb::BufferType::I32 : fb::BufferType::F32,
          bufferWidths_[i]));
    std::vector<flatbuffers::Offset<fb::Step>> steps;
    for (const StepDesc &s : steps_)
      steps.push_back(fb::CreateStep(
          b, s.op, s.layer, b.CreateVector(s.inputs), b.CreateVector(s.outputs),
          b.CreateVector(s.weights), b.CreateVector(s.ints),
          b.CreateVector(s.floats),
          s.neuronOrder.empty() ? 0 : b.CreateVector(s.neuronOrder)));
    std::vector<flatbuffers::Offset<flatbuffers::String>> features;
    for (const std::string &f : target_.features)
      features.push_back(b.CreateString(f));
    auto source = module_->getAttrOfType<StringAttr>("st.source");
    auto mb = module_->getAttrOfType<IntegerAttr>("st.max_batch");
    auto budget = module_->getAttrOfType<IntegerAttr>("st.memory_budget");
    int32_t maxBatch = mb ? static_cast<int32_t>(mb.getInt()) : 0;
    auto root = fb::CreateModel(
        b, rt::kModelFormatVersion, b.CreateString(target_.name),
        b.CreateString(target_.halideTarget), b.CreateVector(features), config,
        b.CreateVector(tensors), b.CreateVector(buffers), b.CreateVector(steps),
        idsBuffer_, positionsBuffer_, logitsBuffer_,
        b.CreateString(source ? source.getValue().str() : std::string()),
        maxBatch, budget ? static_cast<uint64_t>(budget.getInt()) : 0,
        tokenizer_ ? rt::buildTokenizer(b, *tokenizer_) : 0);
    fb::FinishModelBuffer(b, root);
    return std::vector<uint8_t>(b.GetBufferPointer(),
                                b.GetBufferPointer() + b.GetSize());
  }

  // Pads one expert matrix, begun at `start`, to its stride (a 2-D weight to
  // its size); more bytes than planned is an error.
  Status padToStride(const WeightPlan &w, uint64_t start,
                     AtomicOutputFile &out) {
    uint64_t written = out.offset() - start;
    uint64_t target = w.expertStride ? w.expertStride : w.size;
    if (written > target)
      return Status::error("weight '" + w.name + "': wrote " +
                           std::to_string(written) + " bytes, planned " +
                           std::to_string(target));
    return out.writeZeros(target - written);
  }

  // Rows [r0, r0 + n) of expert e's logical matrix, in `type`: the source
  // bytes, or (a transposed source) f32 values from the expert's matrix
  // read whole and transposed back, once per expert.
  Status readRows(const WeightPlan &w, int64_t e, int64_t r0, int64_t n,
                  std::vector<uint8_t> &out, DType &type) {
    if (!w.orderRows)
      return readSourceRows(w, e, r0, n, out, type);
    // Hot-first rows: gathered one by one through the order.
    const int64_t rows = w.shape[w.shape.size() - 2];
    out.clear();
    std::vector<uint8_t> row;
    for (int64_t p = r0; p < r0 + n; ++p) {
      STC_TRY(readSourceRows(w, e, w.order[e * rows + p], 1, row, type));
      out.insert(out.end(), row.begin(), row.end());
    }
    return Status::success();
  }

  Status readSourceRows(const WeightPlan &w, int64_t e, int64_t r0, int64_t n,
                        std::vector<uint8_t> &out, DType &type) {
    const int64_t rows = w.shape.size() >= 2 ? w.shape[w.shape.size() - 2] : 1;
    const int64_t cols = w.shape.back();
    if (!w.transposedSource) {
      uint64_t rowBytes;
      dtypeBytes(w.source, cols, rowBytes);
      out.resize(n * rowBytes);
      type = w.source;
      return reader_.read(w, (e * rows + r0) * rowBytes, out.size(),
                          out.data());
    }
    if (untransposedName_ != w.name || untransposedExpert_ != e) {
      uint64_t expertBytes;
      dtypeBytes(w.source, static_cast<uint64_t>(rows) * cols, expertBytes);
      std::vector<uint8_t> stored(expertBytes);
      STC_TRY(reader_.read(w, e * expertBytes, expertBytes, stored.data()));
      untransposed_.resize(static_cast<size_t>(rows) * cols);
      untransposeExpert(w.source, stored.data(), cols, rows,
                        untransposed_.data(), untransposeScratch_);
      untransposedName_ = w.name;
      untransposedExpert_ = e;
    }
    type = DType::F32;
    out.resize(static_cast<size_t>(n) * cols * 4);
    std::memcpy(out.data(), untransposed_.data() + r0 * cols, out.size());
    return Status::success();
  }

  // Streams one weight: per expert matrix, in row chunks (the 151936-row head
  // does not fit comfortably in memory as f32).
  Status writeWeight(const WeightPlan &w, AtomicOutputFile &out) {
    if (w.layout == fb::Layout::Blocks16 || w.layout == fb::Layout::Transposed)
      return writeSparseWeight(w, out);
    if (w.layout == fb::Layout::NeuronRows)
      return writeNeuronRows(w, out);
    const bool ktiles = isKTileType(w.stored);
    const bool rows16 = w.layout == fb::Layout::Rows16 && !ktiles;
    const int64_t experts = w.shape.size() == 3 ? w.shape[0] : 1;
    const int64_t rows = w.shape.size() >= 2 ? w.shape[w.shape.size() - 2] : 1;
    const int64_t cols = w.shape.back();
    uint64_t dstRowBytes;
    dtypeBytes(w.stored, cols, dstRowBytes);
    const int64_t chunkRows = 256; // a multiple of 16: whole rows16 groups
    std::vector<uint8_t> src, dst, tiles, scales;
    std::vector<float> f32;
    for (int64_t e = 0; e < experts; ++e) {
      const uint64_t start = out.offset();
      const int64_t B = cols / 32;
      if (rows16)
        scales.assign(static_cast<size_t>(rows / 16) * B * 32, 0);
      for (int64_t r0 = 0; r0 < rows; r0 += chunkRows) {
        const int64_t n = std::min(chunkRows, rows - r0);
        DType from = w.source;
        STC_TRY(readRows(w, e, r0, n, src, from));
        const uint8_t *stored = src.data();
        if (from != w.stored) { // exactly, or through f32
          dst.resize(n * dstRowBytes);
          convert(from, w.stored, src.data(), dst.data(),
                  static_cast<uint64_t>(n) * cols, f32);
          stored = dst.data();
        }
        progress_->set(out.offset() - dataStart_);
        if (ktiles) { // rows16k: the scales travel inside the tiles
          tiles.resize(rt::kTileMatrixBytes(kKindOf(w.stored), n, cols));
          packKTiles(w.stored, stored, n, cols, tiles.data());
          STC_TRY(out.write(tiles.data(), tiles.size()));
          continue;
        }
        if (!rows16) {
          STC_TRY(out.write(stored, n * dstRowBytes));
          continue;
        }
        tiles.resize(n * dstRowBytes - static_cast<size_t>(n) * B * 2);
        repackRows16(w.stored, stored, n, cols, tiles.data(),
                     scales.data() + (r0 / 16) * B * 32);
        STC_TRY(out.write(tiles.data(), tiles.size()));
      }
      if (rows16)
        STC_TRY(out.write(scales.data(), scales.size()));
      STC_TRY(padToStride(w, start, out));
    }
    return Status::success();
  }

  // st-sparse-reglu's layouts, one expert matrix at a time. Quantized blocks
  // keep the values the dense layout would hold (the source's blocks when the
  // scheme is unchanged, requantizing is not idempotent), only their order
  // changes.
  Status writeSparseWeight(const WeightPlan &w, AtomicOutputFile &out) {
    if (w.shape.size() < 2)
      return Status::error("weight '" + w.name +
                           "' is 1-D; the blocks16 and transposed layouts "
                           "hold matrices");
    const int64_t experts = w.shape.size() == 3 ? w.shape[0] : 1;
    const int64_t rows = w.shape[w.shape.size() - 2], cols = w.shape.back();
    uint64_t dstBytes;
    dtypeBytes(w.stored, rows * cols, dstBytes);
    std::vector<uint8_t> src, blocks, data, scales;
    std::vector<float> f32;
    for (int64_t e = 0; e < experts; ++e) {
      const uint64_t start = out.offset();
      progress_->set(out.offset() - dataStart_);
      DType from = w.source;
      STC_TRY(readRows(w, e, 0, rows, src, from));
      const uint8_t *stored = src.data();
      if (from != w.stored) {
        blocks.resize(dstBytes);
        convert(from, w.stored, src.data(), blocks.data(),
                static_cast<uint64_t>(rows) * cols, f32);
        stored = blocks.data();
      }
      if (!isQuantized(w.stored)) { // f32 [rows][cols] to [cols][rows]
        const float *m = reinterpret_cast<const float *>(stored);
        f32.resize(static_cast<size_t>(rows) * cols);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c)
            f32[c * rows + r] = m[r * cols + c];
        permuteNeuronRows(w, e, cols, f32.size() * 4,
                          reinterpret_cast<uint8_t *>(f32.data()));
        STC_TRY(out.write(f32.data(), f32.size() * 4));
      } else {
        if (w.layout == fb::Layout::Transposed)
          transposeBlocks(w.stored, stored, rows, cols, data, scales);
        else
          repackBlocks16(w.stored, stored, rows, cols, data, scales);
        // The scales stay per 32 neurons of the original order.
        permuteNeuronRows(w, e, cols, data.size(), data.data());
        STC_TRY(out.write(data.data(), data.size()));
        STC_TRY(out.write(scales.data(), scales.size()));
      }
      STC_TRY(padToStride(w, start, out));
    }
    return Status::success();
  }

  // The neuron_rows layout (PowerInfer's down): per expert, each neuron's
  // row of D outputs in ggml's blocks along D. A source stored that way in the
  // same type (PowerInfer's files) is copied block for block; any other is
  // quantized row by row from its f32 values (the blocks along D are what
  // this layout's quantization gives).
  Status writeNeuronRows(const WeightPlan &w, AtomicOutputFile &out) {
    if (w.shape.size() != 3 || !isQuantized(w.stored))
      return Status::error("weight '" + w.name +
                           "': the neuron_rows layout holds quantized stacks "
                           "of expert matrices");
    const int64_t experts = w.shape[0], D = w.shape[1], F = w.shape[2];
    uint64_t rowBytes, expertBytes;
    dtypeBytes(w.stored, D, rowBytes);
    expertBytes = rowBytes * F;
    std::vector<uint8_t> src, rows(expertBytes);
    std::vector<float> f32, column(D), scratch;
    for (int64_t e = 0; e < experts; ++e) {
      const uint64_t start = out.offset();
      progress_->set(out.offset() - dataStart_);
      if (w.transposedSource && w.source == w.stored) {
        STC_TRY(reader_.read(w, e * expertBytes, expertBytes, rows.data()));
      } else {
        DType from = w.source;
        STC_TRY(readRows(w, e, 0, D, src, from)); // logical [D][F]
        f32.resize(static_cast<size_t>(D) * F);
        convert(from, DType::F32, src.data(), f32.data(),
                static_cast<uint64_t>(D) * F, scratch);
        for (int64_t f = 0; f < F; ++f) {
          for (int64_t d = 0; d < D; ++d)
            column[d] = f32[d * F + f];
          quantize(w.stored, column.data(), rows.data() + f * rowBytes, D);
        }
      }
      permuteNeuronRows(w, e, F, rows.size(), rows.data());
      STC_TRY(out.write(rows.data(), rows.size()));
      STC_TRY(padToStride(w, start, out));
    }
    return Status::success();
  }

  // A transposed or neuron_rows down's `neurons` rows (of bytes / neurons
  // each) in st-neuron-layout's order; other weights untouched.
  void permuteNeuronRows(const WeightPlan &w, int64_t e, int64_t neurons,
                         size_t bytes, uint8_t *data) {
    if (w.order.empty() || w.orderRows ||
        (w.layout != fb::Layout::Transposed &&
         w.layout != fb::Layout::NeuronRows))
      return;
    const size_t rowBytes = bytes / neurons;
    std::vector<uint8_t> copy(data, data + bytes);
    for (int64_t p = 0; p < neurons; ++p)
      std::memcpy(data + p * rowBytes,
                  copy.data() + w.order[e * neurons + p] * rowBytes, rowBytes);
  }

  struct StepDesc {
    fb::Op op = fb::Op::Add;
    int layer = -1;
    std::vector<int32_t> inputs, outputs, weights;
    std::vector<int64_t> ints;
    std::vector<double> floats;
    std::vector<int32_t> neuronOrder;
  };

  ModuleOp module_;
  const TargetInfo &target_;
  const rt::TokenizerData *tokenizer_;
  std::vector<WeightPlan> weights_;
  std::map<std::string, int> index_;
  llvm::DenseMap<Value, int> buffers_;
  std::vector<int64_t> bufferWidths_;
  std::vector<bool> bufferInt_;
  std::vector<int> free_;
  std::vector<StepDesc> steps_;
  int idsBuffer_ = -1, positionsBuffer_ = -1, logitsBuffer_ = -1;
  // readRows' last untransposed expert.
  std::string untransposedName_;
  int64_t untransposedExpert_ = -1;
  std::vector<float> untransposed_, untransposeScratch_;
  double ropeTheta_ = 1e6;
  ExtentReader reader_;
  Progress *progress_ = nullptr; // while writing the weights
  uint64_t dataStart_ = 0;
};

} // namespace

Status writeModelFile(ModuleOp module, const TargetInfo &target,
                      const rt::TokenizerData *tokenizer,
                      const std::string &path, ModelWriteStats &stats) {
  return Writer(module, target, tokenizer).run(path, stats);
}

} // namespace stc
