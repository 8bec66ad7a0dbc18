// Fuzzes the safetensors header reader.
#include "FuzzUtil.h"
#include "formats/Safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string path = stc::fuzz::scratchPath("model.safetensors");
  stc::fuzz::writeInput(path, data, size);
  stc::SafetensorsFile f;
  (void)stc::readSafetensorsHeader(path, f);
  return 0;
}
