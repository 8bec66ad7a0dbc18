// Gguf: reads GGUF v2/v3 headers (metadata and tensor infos, never the tensor
// data) with every count and offset checked against the file, and writes GGUF
// files streaming.
#pragma once

#include "DType.h"
#include "FileIO.h"
#include "Status.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stc {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

struct GgufValue {
  GgufType type = GgufType::U32;
  uint64_t u = 0;  // unsigned integers and bool
  int64_t i = 0;   // signed integers
  double f = 0;    // floats
  std::string str; // strings
  GgufType arrayType = GgufType::U32;
  std::vector<GgufValue> array;

  bool isInteger() const;
  bool isNumber() const;
  // Integer value of any integer or bool type (floats are not converted).
  bool asInt(int64_t &out) const;
  bool asDouble(double &out) const;

  static GgufValue ofU32(uint32_t v);
  static GgufValue ofI32(int32_t v);
  static GgufValue ofF32(float v);
  static GgufValue ofBool(bool v);
  static GgufValue ofString(const std::string &v);
  static GgufValue ofI32Array(const std::vector<int32_t> &v);
  static GgufValue ofStringArray(const std::vector<std::string> &v);
};

struct GgufTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<uint64_t> ne; // ggml order, innermost first
  uint64_t offset = 0;      // absolute byte offset in the file
  uint64_t nbytes = 0;
};

struct GgufFile {
  std::string path;
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t fileSize = 0;
  std::map<std::string, GgufValue> metadata;
  std::vector<GgufTensor> tensors;
  const GgufValue *find(const std::string &key) const;
};

const char *ggufTypeName(GgufType t);

// Reads the header, metadata and tensor infos; checks each tensor's type,
// shape, offset alignment and data bounds. Tensor data is not read.
Status readGgufHeader(const std::string &path, GgufFile &out);

// Streams a GGUF v3 file: add metadata and declare tensors, open() writes the
// header, then write each tensor's bytes in declaration order (padding is
// inserted by the writer).
class GgufWriter {
public:
  void setAlignment(uint64_t a) { alignment_ = a; }
  void addMetadata(const std::string &key, const GgufValue &v);
  // `ne` in ggml order (innermost first).
  void declare(const std::string &name, DType dtype,
               const std::vector<uint64_t> &ne);
  Status open(const std::string &path);
  Status beginTensor(size_t index); // pads to the tensor's offset
  Status write(const void *data, uint64_t n) { return out_.write(data, n); }
  Status commit();

private:
  struct Decl {
    std::string name;
    DType dtype;
    std::vector<uint64_t> ne;
    uint64_t nbytes, relOffset;
  };
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::vector<Decl> decls_;
  AtomicOutputFile out_;
  uint64_t dataStart_ = 0;
};

} // namespace stc
