// Fuzzes config.json parsing (the JSON parser and the SmallThinker config
// rules).
#include "FuzzUtil.h"
#include "formats/ModelConfig.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string path = stc::fuzz::scratchPath("config.json");
  stc::fuzz::writeInput(path, data, size);
  stc::ModelConfig c;
  (void)stc::parseHfConfig(path, c);
  return 0;
}
