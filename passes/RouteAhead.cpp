// st-route-ahead: hoist routers above attention and fuse them into a
// prefetching dispatch (see Passes.td).
#include "dialects/st/StDialect.h"
#include "passes/Passes.h"

namespace stc::st {
#define GEN_PASS_DEF_STROUTEAHEAD
#include "passes/Passes.h.inc"
} // namespace stc::st

using namespace mlir;
using namespace stc::st;

namespace {

struct StRouteAhead : public stc::st::impl::StRouteAheadBase<StRouteAhead> {
  void runOnOperation() override {
    SmallVector<RouterOp> routers;
    getOperation().walk([&](RouterOp r) { routers.push_back(r); });
    for (RouterOp r : routers) {
      // The earliest point the activation operand exists: after its definition
      // (a block argument means the block start). The weight load has no
      // operands and moves up with the router.
      Block *block = r->getBlock();
      Operation *def = r.getInput().getDefiningOp();
      Operation *target = def && def->getBlock() == block ? def->getNextNode()
                                                          : &block->front();
      if (target == r.getOperation())
        continue;
      if (auto load = r.getWeight().getDefiningOp<LoadWeightOp>()) {
        if (load->getBlock() == block && !load->isBeforeInBlock(target)) {
          if (load.getOperation() != target && load->hasOneUse())
            load->moveBefore(target);
          else
            target =
                load->getNextNode(); // shared or already there: go below it
        }
      }
      if (target != r.getOperation() && target->isBeforeInBlock(r)) {
        r->moveBefore(target);
        ++numHoisted;
      }
      r->setAttr("route_ahead", UnitAttr::get(&getContext()));
    }
  }
};

} // namespace
