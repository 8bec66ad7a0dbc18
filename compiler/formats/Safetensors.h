// Safetensors: reads the header of a .safetensors file (and the sharded
// model.safetensors.index.json), and writes files tensor by tensor without
// holding them.
#pragma once

#include "DType.h"
#include "FileIO.h"
#include "Status.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stc {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0; // absolute byte offset in the file
  uint64_t nbytes = 0;
};

struct SafetensorsFile {
  std::string path;
  uint64_t fileSize = 0;
  std::vector<SafetensorsTensor> tensors; // in header order
};

// Reads and validates the header only: length within the file, JSON well
// formed, every dtype known to stc, every shape's byte size equal to its
// data_offsets span, and every span inside the file. Never touches tensor data.
Status readSafetensorsHeader(const std::string &path, SafetensorsFile &out);

// Parses model.safetensors.index.json into tensor name -> shard file name.
Status readSafetensorsIndex(const std::string &path,
                            std::map<std::string, std::string> &weightMap);

// Streams a safetensors file: declare every tensor first (the header needs all
// offsets), then write each tensor's bytes in declaration order.
class SafetensorsWriter {
public:
  void declare(const std::string &name, DType dtype,
               const std::vector<int64_t> &shape);
  Status open(const std::string &path); // writes the header
  // Writes the next chunk of the current tensor's bytes; tensors follow
  // declaration order.
  Status write(const void *data, uint64_t n) { return out_.write(data, n); }
  Status commit();
  uint64_t totalBytes() const;

private:
  struct Decl {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t nbytes;
  };
  std::vector<Decl> decls_;
  AtomicOutputFile out_;
  uint64_t dataStart_ = 0;
};

} // namespace stc
