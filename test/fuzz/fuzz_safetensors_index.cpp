// Fuzzes the sharded-checkpoint index reader (model.safetensors.index.json).
#include "FuzzUtil.h"
#include "formats/Safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string path =
      stc::fuzz::scratchPath("model.safetensors.index.json");
  stc::fuzz::writeInput(path, data, size);
  std::map<std::string, std::string> weightMap;
  (void)stc::readSafetensorsIndex(path, weightMap);
  return 0;
}
