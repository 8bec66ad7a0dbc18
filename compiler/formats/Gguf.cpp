#include "Gguf.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace stc {

constexpr uint32_t kGgufMagic = 0x46554747; // "GGUF" little-endian
constexpr uint64_t kMaxStringBytes = 1ull << 24;
constexpr uint32_t kMaxDims = 4; // GGML_MAX_DIMS

bool GgufValue::isInteger() const {
  switch (type) {
  case GgufType::U8:
  case GgufType::I8:
  case GgufType::U16:
  case GgufType::I16:
  case GgufType::U32:
  case GgufType::I32:
  case GgufType::U64:
  case GgufType::I64:
  case GgufType::BOOL:
    return true;
  default:
    return false;
  }
}

bool GgufValue::isNumber() const {
  return isInteger() || type == GgufType::F32 || type == GgufType::F64;
}

bool GgufValue::asInt(int64_t &out) const {
  switch (type) {
  case GgufType::U8:
  case GgufType::U16:
  case GgufType::U32:
  case GgufType::BOOL:
    out = static_cast<int64_t>(u);
    return true;
  case GgufType::U64:
    if (u > static_cast<uint64_t>(INT64_MAX))
      return false;
    out = static_cast<int64_t>(u);
    return true;
  case GgufType::I8:
  case GgufType::I16:
  case GgufType::I32:
  case GgufType::I64:
    out = i;
    return true;
  default:
    return false;
  }
}

bool GgufValue::asDouble(double &out) const {
  if (type == GgufType::F32 || type == GgufType::F64) {
    out = f;
    return true;
  }
  int64_t v;
  if (!asInt(v))
    return false;
  out = static_cast<double>(v);
  return true;
}

GgufValue GgufValue::ofU32(uint32_t v) {
  GgufValue g;
  g.type = GgufType::U32;
  g.u = v;
  return g;
}
GgufValue GgufValue::ofI32(int32_t v) {
  GgufValue g;
  g.type = GgufType::I32;
  g.i = v;
  return g;
}
GgufValue GgufValue::ofF32(float v) {
  GgufValue g;
  g.type = GgufType::F32;
  g.f = v;
  return g;
}
GgufValue GgufValue::ofBool(bool v) {
  GgufValue g;
  g.type = GgufType::BOOL;
  g.u = v ? 1 : 0;
  return g;
}
GgufValue GgufValue::ofString(const std::string &v) {
  GgufValue g;
  g.type = GgufType::STRING;
  g.str = v;
  return g;
}
GgufValue GgufValue::ofI32Array(const std::vector<int32_t> &v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.arrayType = GgufType::I32;
  for (int32_t x : v)
    g.array.push_back(ofI32(x));
  return g;
}

GgufValue GgufValue::ofStringArray(const std::vector<std::string> &v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.arrayType = GgufType::STRING;
  for (const std::string &x : v)
    g.array.push_back(ofString(x));
  return g;
}

const GgufValue *GgufFile::find(const std::string &key) const {
  auto it = metadata.find(key);
  return it == metadata.end() ? nullptr : &it->second;
}

const char *ggufTypeName(GgufType t) {
  static const char *names[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                "i32", "f32", "bool", "string", "array",
                                "u64", "i64", "f64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "unknown";
}

// ggml type ids (ggml.h) of the types stc reads, and the names of all of
// them for errors.
static const struct {
  uint32_t id;
  const char *name;
  bool known; // stc reads it (as the DType of the same name)
} kGgmlTypes[] = {
    {0, "F32", true},      {1, "F16", true},       {2, "Q4_0", true},
    {3, "Q4_1", true},     {6, "Q5_0", true},      {7, "Q5_1", true},
    {8, "Q8_0", true},     {9, "Q8_1", false},     {10, "Q2_K", true},
    {11, "Q3_K", true},    {12, "Q4_K", true},     {13, "Q5_K", true},
    {14, "Q6_K", true},    {15, "Q8_K", false},    {16, "IQ2_XXS", false},
    {17, "IQ2_XS", false}, {18, "IQ3_XXS", false}, {19, "IQ1_S", false},
    {20, "IQ4_NL", true},  {21, "IQ3_S", false},   {22, "IQ2_S", false},
    {23, "IQ4_XS", true},  {24, "I8", false},      {25, "I16", false},
    {26, "I32", false},    {27, "I64", false},     {28, "F64", false},
    {29, "IQ1_M", false},  {30, "BF16", true},     {34, "TQ1_0", false},
    {35, "TQ2_0", false},  {39, "MXFP4", false},   {40, "NVFP4", false},
    {41, "Q1_0", false},   {42, "Q2_0", false},
};

static std::string lower(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The DType of ggml type `t`; false with its name (or its number) in `name`
// when stc does not read it.
static bool ggmlToDType(uint32_t t, DType &out, std::string &name) {
  for (const auto &g : kGgmlTypes)
    if (g.id == t) {
      name = g.name;
      return g.known && parseDTypeName(lower(g.name), out);
    }
  name = "type " + std::to_string(t);
  return false;
}

static uint32_t dtypeToGgml(DType t) {
  for (const auto &g : kGgmlTypes)
    if (g.known && lower(g.name) == dtypeName(t))
      return g.id;
  return 0;
}

namespace {

// Sequential reader over the header with a 1 MiB window; every read is
// bounds-checked.
class Cursor {
public:
  explicit Cursor(const InputFile &f) : f_(f) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return f_.size() - pos_; }

  Status bytes(void *dst, uint64_t n, const char *what) {
    auto *out = static_cast<uint8_t *>(dst);
    while (n > 0) {
      if (pos_ < winStart_ || pos_ >= winStart_ + win_.size()) {
        if (pos_ >= f_.size())
          return f_.read(pos_, out, n, what); // produces the truncation error
        uint64_t len = std::min<uint64_t>(1u << 20, f_.size() - pos_);
        win_.resize(len);
        STC_TRY(f_.read(pos_, win_.data(), len, what));
        winStart_ = pos_;
      }
      uint64_t avail = winStart_ + win_.size() - pos_;
      uint64_t k = std::min(avail, n);
      std::memcpy(out, win_.data() + (pos_ - winStart_), k);
      out += k;
      pos_ += k;
      n -= k;
    }
    return Status::success();
  }
  template <typename T> Status scalar(T &v, const char *what) {
    uint8_t b[sizeof(T)];
    STC_TRY(bytes(b, sizeof(T), what));
    std::memcpy(&v, b, sizeof(T)); // GGUF is little-endian, like every stc host
    return Status::success();
  }
  Status string(std::string &s, const char *what) {
    uint64_t n;
    STC_TRY(scalar(n, what));
    if (n > kMaxStringBytes || n > remaining())
      return Status::error(f_.path() + ": " + what + " at byte " +
                           std::to_string(pos_ - 8) + " declares length " +
                           std::to_string(n) + ", more than the file holds");
    s.resize(n);
    return bytes(s.data(), n, what);
  }

private:
  const InputFile &f_;
  uint64_t pos_ = 0;
  uint64_t winStart_ = 0;
  std::vector<uint8_t> win_;
};

Status readValue(Cursor &c, const std::string &path, const std::string &key,
                 GgufType type, GgufValue &v, int depth) {
  v.type = type;
  auto err = [&](const std::string &what) {
    return Status::error(path + ": metadata '" + key + "': " + what);
  };
  switch (type) {
  case GgufType::U8: {
    uint8_t x;
    STC_TRY(c.scalar(x, "metadata value"));
    v.u = x;
    return Status::success();
  }
  case GgufType::I8: {
    int8_t x;
    STC_TRY(c.scalar(x, "metadata value"));
    v.i = x;
    return Status::success();
  }
  case GgufType::U16: {
    uint16_t x;
    STC_TRY(c.scalar(x, "metadata value"));
    v.u = x;
    return Status::success();
  }
  case GgufType::I16: {
    int16_t x;
    STC_TRY(c.scalar(x, "metadata value"));
    v.i = x;
    return Status::success();
  }
  case GgufType::U32: {
    uint32_t x;
    STC_TRY(c.scalar(x, "metadata value"));
    v.u = x;
    return Status::success();
  }
  case GgufType::I32: {
    int32_t x;
    STC_TRY(c.scalar(x, "metadata value"));
    v.i = x;
    return Status::success();
  }
  case GgufType::U64: {
    uint64_t x;
    STC_TRY(c.scalar(x, "metadata value"));
    v.u = x;
    return Status::success();
  }
  case GgufType::I64: {
    int64_t x;
    STC_TRY(c.scalar(x, "metadata value"));
    v.i = x;
    return Status::success();
  }
  case GgufType::F32: {
    float x;
    STC_TRY(c.scalar(x, "metadata value"));
    v.f = x;
    return Status::success();
  }
  case GgufType::F64: {
    double x;
    STC_TRY(c.scalar(x, "metadata value"));
    v.f = x;
    return Status::success();
  }
  case GgufType::BOOL: {
    uint8_t x;
    STC_TRY(c.scalar(x, "metadata value"));
    if (x > 1)
      return err("bool value " + std::to_string(x) + " is not 0 or 1");
    v.u = x;
    return Status::success();
  }
  case GgufType::STRING:
    return c.string(v.str, "metadata string");
  case GgufType::ARRAY: {
    if (depth > 0)
      return err("nested arrays are not supported");
    uint32_t et;
    uint64_t n;
    STC_TRY(c.scalar(et, "array element type"));
    STC_TRY(c.scalar(n, "array length"));
    if (et > static_cast<uint32_t>(GgufType::F64))
      return err("unknown array element type " + std::to_string(et));
    // Every element takes at least one byte, so a longer array cannot fit in
    // the file.
    if (n > c.remaining())
      return err("array length " + std::to_string(n) +
                 " exceeds the bytes left in the file");
    v.arrayType = static_cast<GgufType>(et);
    v.array.resize(n);
    for (uint64_t k = 0; k < n; ++k)
      STC_TRY(readValue(c, path, key, v.arrayType, v.array[k], depth + 1));
    return Status::success();
  }
  }
  return err("unknown value type " +
             std::to_string(static_cast<uint32_t>(type)));
}

} // namespace

Status readGgufHeader(const std::string &path, GgufFile &out) {
  out = GgufFile();
  out.path = path;
  InputFile f;
  STC_TRY(f.open(path));
  out.fileSize = f.size();
  Cursor c(f);
  uint32_t magic;
  if (f.size() < 24)
    return Status::error(path +
                         ": not a GGUF file: " + std::to_string(f.size()) +
                         " bytes is shorter than the 24-byte header");
  STC_TRY(c.scalar(magic, "magic"));
  if (magic != kGgufMagic)
    return Status::error(path + ": bad GGUF magic (expected 'GGUF')");
  STC_TRY(c.scalar(out.version, "version"));
  if (out.version != 2 && out.version != 3)
    return Status::error(path + ": unsupported GGUF version " +
                         std::to_string(out.version) + " (expected 2 or 3)");
  uint64_t nTensors, nKV;
  STC_TRY(c.scalar(nTensors, "tensor count"));
  STC_TRY(c.scalar(nKV, "metadata count"));
  // A tensor info needs at least 8+4+8+4+8 bytes and a kv at least 8+4+1.
  if (nTensors > c.remaining() / 32)
    return Status::error(path + ": tensor count " + std::to_string(nTensors) +
                         " cannot fit in a file of " +
                         std::to_string(f.size()) + " bytes");
  if (nKV > c.remaining() / 13)
    return Status::error(path + ": metadata count " + std::to_string(nKV) +
                         " cannot fit in a file of " +
                         std::to_string(f.size()) + " bytes");
  for (uint64_t k = 0; k < nKV; ++k) {
    std::string key;
    STC_TRY(c.string(key, "metadata key"));
    uint32_t type;
    STC_TRY(c.scalar(type, "metadata type"));
    if (type > static_cast<uint32_t>(GgufType::F64))
      return Status::error(path + ": metadata '" + key +
                           "' has unknown value type " + std::to_string(type));
    GgufValue v;
    STC_TRY(readValue(c, path, key, static_cast<GgufType>(type), v, 0));
    if (out.metadata.count(key))
      return Status::error(path + ": metadata key '" + key + "' appears twice");
    out.metadata.emplace(key, std::move(v));
  }
  if (const GgufValue *a = out.find("general.alignment")) {
    int64_t al;
    if (!a->asInt(al) || al <= 0 || (al & (al - 1)) != 0 || al > (1 << 20))
      return Status::error(
          path + ": general.alignment must be a power of two <= 1 MiB");
    out.alignment = static_cast<uint64_t>(al);
  }
  std::vector<uint64_t> relOffsets;
  for (uint64_t k = 0; k < nTensors; ++k) {
    GgufTensor t;
    STC_TRY(c.string(t.name, "tensor name"));
    uint32_t nDims;
    STC_TRY(c.scalar(nDims, "tensor rank"));
    auto bad = [&](const std::string &what) {
      return Status::error(path + ": tensor '" + t.name + "': " + what);
    };
    if (nDims == 0 || nDims > kMaxDims)
      return bad("rank " + std::to_string(nDims) + " is not in 1.." +
                 std::to_string(kMaxDims));
    uint64_t count = 1;
    for (uint32_t d = 0; d < nDims; ++d) {
      uint64_t ne;
      STC_TRY(c.scalar(ne, "tensor dimension"));
      if (ne != 0 && count > (UINT64_MAX >> 8) / ne)
        return bad("element count overflows");
      count *= ne;
      t.ne.push_back(ne);
    }
    uint32_t type;
    STC_TRY(c.scalar(type, "tensor type"));
    std::string typeName;
    if (!ggmlToDType(type, t.dtype, typeName))
      return bad("unsupported ggml type " + typeName +
                 " (stc reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, "
                 "Q2_K-Q6_K, IQ4_NL and IQ4_XS)");
    if (t.ne[0] % blockElements(t.dtype) != 0)
      return bad(typeName + " rows of " + std::to_string(t.ne[0]) +
                 " elements are not a multiple of its " +
                 std::to_string(blockElements(t.dtype)) + "-element block");
    if (!dtypeBytes(t.dtype, count, t.nbytes))
      return bad("byte size overflows");
    uint64_t rel;
    STC_TRY(c.scalar(rel, "tensor offset"));
    if (rel % out.alignment != 0)
      return bad("data offset " + std::to_string(rel) + " is not aligned to " +
                 std::to_string(out.alignment));
    relOffsets.push_back(rel);
    out.tensors.push_back(std::move(t));
  }
  uint64_t dataStart =
      (c.pos() + out.alignment - 1) / out.alignment * out.alignment;
  for (size_t k = 0; k < out.tensors.size(); ++k) {
    GgufTensor &t = out.tensors[k];
    uint64_t rel = relOffsets[k];
    if (dataStart > f.size() || rel > f.size() - dataStart ||
        t.nbytes > f.size() - dataStart - rel)
      return Status::error(path + ": tensor '" + t.name + "': data [" +
                           std::to_string(dataStart + rel) + ", " +
                           std::to_string(dataStart + rel + t.nbytes) +
                           ") lies outside the file's " +
                           std::to_string(f.size()) + " bytes");
    t.offset = dataStart + rel;
  }
  // A shape and type that need more bytes than the file gives the tensor (up
  // to the next one's data) would read another tensor's bytes as its own.
  std::vector<const GgufTensor *> byOffset;
  for (const GgufTensor &t : out.tensors)
    byOffset.push_back(&t);
  std::sort(byOffset.begin(), byOffset.end(),
            [](const GgufTensor *a, const GgufTensor *b) {
              return a->offset < b->offset;
            });
  for (size_t k = 0; k + 1 < byOffset.size(); ++k) {
    const GgufTensor &a = *byOffset[k], &b = *byOffset[k + 1];
    if (a.nbytes > 0 && a.offset + a.nbytes > b.offset)
      return Status::error(path + ": tensor '" + a.name + "' needs " +
                           std::to_string(a.nbytes) + " bytes as " +
                           dtypeName(a.dtype) +
                           " of its shape but runs into tensor '" + b.name +
                           "' after " + std::to_string(b.offset - a.offset) +
                           ": its shape or type does not match its data");
  }
  return Status::success();
}

void GgufWriter::addMetadata(const std::string &key, const GgufValue &v) {
  kvs_.emplace_back(key, v);
}

void GgufWriter::declare(const std::string &name, DType dtype,
                         const std::vector<uint64_t> &ne) {
  uint64_t count = 1;
  for (uint64_t d : ne)
    count *= d;
  uint64_t nbytes = 0;
  dtypeBytes(dtype, count, nbytes);
  uint64_t rel = 0;
  if (!decls_.empty()) {
    const Decl &p = decls_.back();
    rel = (p.relOffset + p.nbytes + alignment_ - 1) / alignment_ * alignment_;
  }
  decls_.push_back({name, dtype, ne, nbytes, rel});
}

static void putBytes(std::string &buf, const void *p, size_t n) {
  buf.append(static_cast<const char *>(p), n);
}
template <typename T> static void put(std::string &buf, T v) {
  putBytes(buf, &v, sizeof(T));
}
static void putString(std::string &buf, const std::string &s) {
  put<uint64_t>(buf, s.size());
  buf += s;
}

static void putValue(std::string &buf, const GgufValue &v) {
  switch (v.type) {
  case GgufType::U8:
    put<uint8_t>(buf, static_cast<uint8_t>(v.u));
    break;
  case GgufType::I8:
    put<int8_t>(buf, static_cast<int8_t>(v.i));
    break;
  case GgufType::U16:
    put<uint16_t>(buf, static_cast<uint16_t>(v.u));
    break;
  case GgufType::I16:
    put<int16_t>(buf, static_cast<int16_t>(v.i));
    break;
  case GgufType::U32:
    put<uint32_t>(buf, static_cast<uint32_t>(v.u));
    break;
  case GgufType::I32:
    put<int32_t>(buf, static_cast<int32_t>(v.i));
    break;
  case GgufType::U64:
    put<uint64_t>(buf, v.u);
    break;
  case GgufType::I64:
    put<int64_t>(buf, v.i);
    break;
  case GgufType::F32:
    put<float>(buf, static_cast<float>(v.f));
    break;
  case GgufType::F64:
    put<double>(buf, v.f);
    break;
  case GgufType::BOOL:
    put<uint8_t>(buf, v.u ? 1 : 0);
    break;
  case GgufType::STRING:
    putString(buf, v.str);
    break;
  case GgufType::ARRAY:
    put<uint32_t>(buf, static_cast<uint32_t>(v.arrayType));
    put<uint64_t>(buf, v.array.size());
    for (const GgufValue &e : v.array)
      putValue(buf, e);
    break;
  }
}

Status GgufWriter::open(const std::string &path) {
  std::string buf;
  put<uint32_t>(buf, kGgufMagic);
  put<uint32_t>(buf, 3);
  put<uint64_t>(buf, decls_.size());
  put<uint64_t>(buf, kvs_.size());
  for (const auto &kv : kvs_) {
    putString(buf, kv.first);
    put<uint32_t>(buf, static_cast<uint32_t>(kv.second.type));
    putValue(buf, kv.second);
  }
  for (const Decl &d : decls_) {
    putString(buf, d.name);
    put<uint32_t>(buf, static_cast<uint32_t>(d.ne.size()));
    for (uint64_t n : d.ne)
      put<uint64_t>(buf, n);
    put<uint32_t>(buf, static_cast<uint32_t>(dtypeToGgml(d.dtype)));
    put<uint64_t>(buf, d.relOffset);
  }
  while (buf.size() % alignment_ != 0)
    buf.push_back('\0');
  STC_TRY(out_.open(path));
  STC_TRY(out_.write(buf.data(), buf.size()));
  dataStart_ = out_.offset();
  return Status::success();
}

Status GgufWriter::beginTensor(size_t index) {
  uint64_t target = dataStart_ + decls_[index].relOffset;
  if (out_.offset() > target)
    return Status::error("gguf writer: tensor '" + decls_[index].name +
                         "' begins before the end of the previous one");
  return out_.writeZeros(target - out_.offset());
}

Status GgufWriter::commit() {
  if (!decls_.empty()) {
    const Decl &d = decls_.back();
    uint64_t end = dataStart_ + d.relOffset + d.nbytes;
    if (out_.offset() != end)
      return Status::error("gguf writer: wrote " +
                           std::to_string(out_.offset()) + " bytes, expected " +
                           std::to_string(end));
  }
  return out_.commit();
}

} // namespace stc
