// The st dialect's passes (declared in Passes.td) and their registration.
#pragma once

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>

namespace stc::st {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

// registerStPasses(): adds every st pass to the global registry, so stc-opt and
// pipelines given as text can name them.
#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace stc::st
