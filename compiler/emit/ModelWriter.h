// ModelWriter: turns a kernel-level st module into the model file: the
// execution plan (one step per st.kernel, activation buffers reused by
// liveness), the tensor table, and the weight bytes, converted and repacked one
// tensor (one expert) at a time and streamed to a temporary file that is
// renamed into place only when complete.
#pragma once

#include "formats/Status.h"
#include "targets/Target.h"

#include "Tokenizer.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace stc {

struct ModelWriteStats {
  uint64_t fileBytes = 0;
  uint64_t weightBytes = 0;
  size_t steps = 0, buffers = 0, tensors = 0;
};

// `tokenizer` (may be null: a model of token ids only) goes into the file.
Status writeModelFile(mlir::ModuleOp module, const TargetInfo &target,
                      const rt::TokenizerData *tokenizer,
                      const std::string &path, ModelWriteStats &stats);

} // namespace stc
