//===- Passes.td - st dialect passes -----------------------*- tablegen -*-===//
//
// Every stc pass is declared here, with a before/after example in its description and a
// lit test named after it in test/passes/.
//
//===----------------------------------------------------------------------===//

#ifndef ST_PASSES_TD
#define ST_PASSES_TD

include "mlir/Pass/PassBase.td"

def StPrintSummary : Pass<"st-print-summary", "mlir::ModuleOp"> {
  let summary = "Print the model's shape, per-layer attention kind and weight bytes";
  let description = [{
    An analysis: it leaves the IR as it is and prints, for the st graph in the module,
    the model dimensions, each layer's attention kind (RoPE or NoPE, global or sliding
    window), the total weight bytes, and the weight bytes one decoded token reads when
    every active weight is read once (one embedding row, all attention, router and norm
    weights, top_k of the experts, the whole head). That last number over the memory
    bandwidth is the dense decode roofline that later passes try to beat.

    Before and after (unchanged):
    ```mlir
    st.weight @blk.0.attn_q : tensor<128x128xf32> extents [...]
    ...
    ```
    Printed:
    ```
    st summary: 3 layers, hidden 128, 4 heads / 2 kv heads x 32, 8 experts (top-2, sigmoid), ffn 64, vocab 512
    layer 0: rope global
    ...
    weights: 1.6 MiB in 34 tensors
    bytes per decoded token: 0.9 MiB (dense: every active weight read once)
    ```
    Printed to stderr, or to the file named by `output`.
  }];
  let options = [
    Option<"output", "output", "std::string", /*default=*/"\"-\"",
           "Where to print the summary ('-' = stderr)">,
  ];
  let statistics = [
    Statistic<"numWeights", "weights", "Number of st.weight declarations">,
  ];
}

#endif // ST_PASSES_TD
