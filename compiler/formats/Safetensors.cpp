#include "Safetensors.h"

#include "Json.h"

namespace stc {

// A header larger than this is not a real checkpoint (the 21B one is about 3
// MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr size_t kMaxRank = 8;

static bool safetensorsDType(const std::string &s, DType &out) {
  if (s == "F32")
    out = DType::F32;
  else if (s == "F16")
    out = DType::F16;
  else if (s == "BF16")
    out = DType::BF16;
  else
    return false;
  return true;
}

static const char *safetensorsDTypeName(DType t) {
  switch (t) {
  case DType::F32:
    return "F32";
  case DType::F16:
    return "F16";
  case DType::BF16:
    return "BF16";
  default:
    return nullptr;
  }
}

Status readSafetensorsHeader(const std::string &path, SafetensorsFile &out) {
  out = SafetensorsFile();
  out.path = path;
  InputFile f;
  STC_TRY(f.open(path));
  out.fileSize = f.size();
  if (f.size() < 8)
    return Status::error(path + ": truncated safetensors header: file has " +
                         std::to_string(f.size()) +
                         " bytes, the 8-byte header length is missing");
  uint8_t lenBytes[8];
  STC_TRY(f.read(0, lenBytes, 8, "header length"));
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | lenBytes[i];
  if (headerLen > f.size() - 8)
    return Status::error(path + ": header length " + std::to_string(headerLen) +
                         " runs past the end of the file (" +
                         std::to_string(f.size()) + " bytes)");
  if (headerLen > kMaxHeaderBytes)
    return Status::error(path + ": header length " + std::to_string(headerLen) +
                         " exceeds the " + std::to_string(kMaxHeaderBytes) +
                         "-byte limit");
  std::string text(headerLen, '\0');
  STC_TRY(f.read(8, text.data(), headerLen, "JSON header"));
  JsonValue root;
  STC_TRY(parseJson(text, path + " (header)", root));
  if (!root.isObject())
    return Status::error(path + ": header is not a JSON object");

  const uint64_t dataStart = 8 + headerLen;
  const uint64_t dataSize = f.size() - dataStart;
  for (const auto &kv : root.object) {
    const std::string &name = kv.first;
    if (name == "__metadata__")
      continue;
    const JsonValue &t = kv.second;
    auto bad = [&](const std::string &what) {
      return Status::error(path + ": tensor '" + name + "': " + what);
    };
    if (!t.isObject())
      return bad("entry is not an object");
    const JsonValue *dtype = t.get("dtype");
    const JsonValue *shape = t.get("shape");
    const JsonValue *offsets = t.get("data_offsets");
    if (!dtype || !dtype->isString())
      return bad("missing string field 'dtype'");
    if (!shape || !shape->isArray())
      return bad("missing array field 'shape'");
    if (!offsets || !offsets->isArray() || offsets->array.size() != 2)
      return bad("missing field 'data_offsets' [begin, end]");
    SafetensorsTensor st;
    st.name = name;
    if (!safetensorsDType(dtype->string, st.dtype))
      return bad("unsupported dtype '" + dtype->string +
                 "' (expected F32, F16 or BF16)");
    if (shape->array.size() > kMaxRank)
      return bad("rank " + std::to_string(shape->array.size()) +
                 " exceeds the maximum of " + std::to_string(kMaxRank));
    uint64_t count = 1;
    for (const JsonValue &d : shape->array) {
      if (!d.isNumber() || !d.isInteger || d.integer < 0)
        return bad("shape entries must be non-negative integers");
      uint64_t dim = static_cast<uint64_t>(d.integer);
      if (dim != 0 && count > UINT64_MAX / dim)
        return bad("shape element count overflows");
      count *= dim;
      st.shape.push_back(d.integer);
    }
    const JsonValue &b = offsets->array[0], &e = offsets->array[1];
    if (!b.isInteger || !e.isInteger || b.integer < 0 || e.integer < b.integer)
      return bad("data_offsets must be integers with 0 <= begin <= end");
    uint64_t begin = static_cast<uint64_t>(b.integer);
    uint64_t end = static_cast<uint64_t>(e.integer);
    uint64_t nbytes;
    if (!dtypeBytes(st.dtype, count, nbytes))
      return bad("byte size overflows");
    if (end - begin != nbytes)
      return bad("shape and dtype need " + std::to_string(nbytes) +
                 " bytes but data_offsets span " + std::to_string(end - begin));
    if (end > dataSize)
      return bad("data [" + std::to_string(begin) + ", " + std::to_string(end) +
                 ") lies outside the file's " + std::to_string(dataSize) +
                 " data bytes");
    st.offset = dataStart + begin;
    st.nbytes = nbytes;
    out.tensors.push_back(std::move(st));
  }
  return Status::success();
}

Status readSafetensorsIndex(const std::string &path,
                            std::map<std::string, std::string> &weightMap) {
  std::string text;
  STC_TRY(readSmallFile(path, kMaxHeaderBytes, text));
  JsonValue root;
  STC_TRY(parseJson(text, path, root));
  const JsonValue *map = root.get("weight_map");
  if (!map || !map->isObject())
    return Status::error(path + ": missing object 'weight_map'");
  for (const auto &kv : map->object) {
    if (!kv.second.isString())
      return Status::error(path + ": weight_map entry '" + kv.first +
                           "' is not a file name");
    const std::string &file = kv.second.string;
    if (file.empty() || file.find('/') != std::string::npos || file == "..")
      return Status::error(path + ": weight_map entry '" + kv.first +
                           "' names '" + file +
                           "', expected a file name in the same folder");
    weightMap[kv.first] = file;
  }
  return Status::success();
}

void SafetensorsWriter::declare(const std::string &name, DType dtype,
                                const std::vector<int64_t> &shape) {
  uint64_t count = 1;
  for (int64_t d : shape)
    count *= static_cast<uint64_t>(d);
  uint64_t nbytes = 0;
  dtypeBytes(dtype, count, nbytes);
  decls_.push_back({name, dtype, shape, nbytes});
}

uint64_t SafetensorsWriter::totalBytes() const {
  uint64_t n = 0;
  for (const Decl &d : decls_)
    n += d.nbytes;
  return n;
}

Status SafetensorsWriter::open(const std::string &path) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t offset = 0;
  for (const Decl &d : decls_) {
    const char *dt = safetensorsDTypeName(d.dtype);
    if (!dt)
      return Status::error(path + ": tensor '" + d.name + "': dtype " +
                           dtypeName(d.dtype) +
                           " cannot be stored in safetensors");
    header += ",";
    appendJsonString(header, d.name);
    header += ":{\"dtype\":\"" + std::string(dt) + "\",\"shape\":[";
    for (size_t i = 0; i < d.shape.size(); ++i)
      header += (i ? "," : "") + std::to_string(d.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + d.nbytes) + "]}";
    offset += d.nbytes;
  }
  header += "}";
  // Pad with spaces so tensor data starts 8-byte aligned, as the reference
  // writer does.
  while ((8 + header.size()) % 8 != 0)
    header.push_back(' ');
  STC_TRY(out_.open(path));
  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<uint8_t>(n >> (8 * i));
  STC_TRY(out_.write(len, 8));
  STC_TRY(out_.write(header.data(), header.size()));
  dataStart_ = out_.offset();
  return Status::success();
}

Status SafetensorsWriter::commit() {
  uint64_t expected = dataStart_ + totalBytes();
  if (out_.offset() != expected)
    return Status::error("safetensors writer: wrote " +
                         std::to_string(out_.offset()) + " bytes, expected " +
                         std::to_string(expected));
  return out_.commit();
}

} // namespace stc
