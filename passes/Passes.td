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

def StQuantize : Pass<"st-quantize", "mlir::ModuleOp"> {
  let summary = "Choose each weight's storage scheme (q4_0, q8_0, f16, f32)";
  let description = [{
    Annotates every `st.weight` with `quant`, the scheme its bytes will be stored in,
    from per-tensor rules and a default. The rules are `glob=scheme` pairs matched
    against the weight's name in order (`*` matches any run of characters); the first
    match wins. Without a matching rule:
    - a `quant` already on the weight (from an earlier run, or written by hand into
      emitted IR) stands;
    - 1-D weights (norms) and routers (`*.ffn_gate_inp`) stay f32: quantizing the router
      scrambles the top-k choice, and norms are a few KiB;
    - weights already stored quantized (a q4_0/q8_0 GGUF) keep their scheme, so their
      bytes pass through untouched rather than being requantized;
    - weights in a K-quant the kernels read (`!st.block<"q4_k" | "q5_k" | "q6_k" |
      "q3_k", ...>`) keep it when their rows are a multiple of 16 (the rows16k tiles
      hold 16 rows x 256 columns): the blocks' own levels and scales pass through;
    - weights in another ggml block type (Q4_1, Q5_0, Q5_1, Q2_K, IQ4_NL, IQ4_XS, or a
      K-quant whose rows do not fill tiles) get their exact image in a type the
      kernels read, never a lossy requantization: q8_0 for q5_0 and iq4_nl (their
      values are int8 times the block's own scale), f32 for the others; a rule may
      still ask for a lossy scheme by name;
    - PowerInfer's transposed expert down projections (`transposed_source`: its GGUF
      stores each expert's down matrix transposed, blocks along the hidden dimension)
      keep q4_0 and q8_0 (st-lower-to-kernels lays them out as `neuron_rows`: a
      neuron's row and its scales in one read); in another block type they become
      f32 the same way as above;
    - everything else gets `default`.
    The pass only records the decision; `st-lower-to-kernels` changes the types and the
    model-file writer produces the bytes, one tensor at a time.

    Before:
    ```mlir
    st.weight @blk.0.attn_q : tensor<128x128xbf16> extents [...]
    st.weight @blk.0.ffn_gate_inp : tensor<8x128xbf16> extents [...]
    ```
    After `--st-quantize=default=q4_0`:
    ```mlir
    st.weight @blk.0.attn_q : tensor<128x128xbf16> extents [...] {quant = "q4_0"}
    st.weight @blk.0.ffn_gate_inp : tensor<8x128xbf16> extents [...] {quant = "f32"}
    ```
    and for a Q4_K_M-style GGUF:
    ```mlir
    st.weight @blk.0.attn_q : tensor<256x256x!st.block<"q4_k", 256, 144>> extents [...] {quant = "q4_k"}
    st.weight @blk.0.attn_v : tensor<128x256x!st.block<"q6_k", 256, 210>> extents [...] {quant = "q6_k"}
    st.weight @blk.0.ffn_down_exps : tensor<4x256x256x!st.block<"q5_0", 32, 22>> extents [...] {quant = "q8_0"}
    ```
  }];
  let options = [
    Option<"defaultScheme", "default", "std::string", /*default=*/"\"q4_0\"",
           "Scheme for weights no rule matches: q4_0, q8_0, q4_k, q5_k, q6_k, "
           "q3_k, f16 or f32">,
    ListOption<"rules", "rules", "std::string",
               "Per-tensor rules glob=scheme, first match wins">,
  ];
  let statistics = [
    Statistic<"numQuantized", "quantized", "Weights stored as q4_0 or q8_0">,
    Statistic<"numPassedThrough", "passed-through",
              "Already-quantized weights kept as they are (q4_0, q8_0, K-quants)">,
    Statistic<"numConverted", "converted",
              "Weights of other ggml block types stored as their exact image">,
  ];
}

def StLowerToKernels : Pass<"st-lower-to-kernels", "mlir::ModuleOp"> {
  let summary = "Lower graph ops to kernel calls with static shapes and a kernel each";
  let description = [{
    Applies the storage schemes chosen by `st-quantize` (weights without `quant` keep
    their type, bf16 becoming f32 since no kernel reads bf16; `source_type` records
    what the checkpoint holds) and rewrites each graph op into `st.kernel` calls, one
    per runtime kernel:
    - `st.router` becomes a gemm for the logits and a `route` (top-k and weighting);
    - `st.attention` becomes the q/k/v gemms, `rope` on q and k when the layer uses
      RoPE, the `attention` kernel (KV cache, GQA, window) and the output gemm;
    - `st.embedding`, `st.rms_norm`, `st.moe`, `st.add` and `st.lm_head` map one to one.
    Each gemm's `impl` follows its weight's type (gemm_f32, gemm_f16, gemm_q8_0,
    gemm_q4_0); quantized weights get `layout = "rows16"` (rows interleaved in groups of
    16 for the dot-product kernels), all others `layout = "row_major"`. A quantized
    matrix needs rows in multiples of 16 and columns in multiples of 32; otherwise the
    pass fails naming the weight. The pass is idempotent on kernel-level IR: rerun on
    IR whose `quant` attributes were edited, it retypes the weights and re-picks each
    gemm's `impl`, which is how `stc compile edited.mlir` honours the edit.

    Before:
    ```mlir
    %a = st.attention %h, %pos, %wq, %wk, %wv, %wo {head_dim = 32 : i64, layer = 0 : i64,
        num_heads = 4 : i64, num_kv_heads = 2 : i64, rope = true, rope_theta = 1.0e4 : f64,
        window = 0 : i64} : (...) -> tensor<?x128xf32>
    ```
    After:
    ```mlir
    %q = st.kernel "gemm" [gemm_q4_0] (%h, %wq) {} : (...) -> tensor<?x128xf32>
    %k = st.kernel "gemm" [gemm_q4_0] (%h, %wk) {} : (...) -> tensor<?x64xf32>
    %v = st.kernel "gemm" [gemm_q4_0] (%h, %wv) {} : (...) -> tensor<?x64xf32>
    %qr = st.kernel "rope" [halide] (%q, %pos) {head_dim = 32 : i64, heads = 4 : i64, theta = 1.0e4 : f64} : ...
    %kr = st.kernel "rope" [halide] (%k, %pos) {head_dim = 32 : i64, heads = 2 : i64, theta = 1.0e4 : f64} : ...
    %o = st.kernel "attention" [halide] (%qr, %kr, %v, %pos) {head_dim = 32 : i64, heads = 4 : i64,
        kv_heads = 2 : i64, layer = 0 : i64, window = 0 : i64} : ...
    %a = st.kernel "gemm" [gemm_q4_0] (%o, %wo) {} : (...) -> tensor<?x128xf32>
    ```
  }];
}

def StRouteAhead : Pass<"st-route-ahead", "mlir::ModuleOp"> {
  let summary = "Route before attention: one dispatch op that prefetches the experts";
  let description = [{
    SmallThinker's router reads the layer's raw input, so the experts a token needs are
    known before attention runs. The pass hoists each `st.router` to just after the
    definition of its input (above the attention norm and attention) and marks it
    `route_ahead`; `st-lower-to-kernels` then emits one fused `dispatch` kernel
    (router matmul, top-k and weighting in one step) instead of a gemm and a `route`,
    and the runtime, right after dispatching, starts reading the selected experts
    so the reads overlap attention: under a memory budget it queues them on the
    expert cache's I/O thread, with a lazily mapped file it asks the OS for their
    segments (madvise WILLNEED). When the weights are resident (the default load)
    nothing is fetched and it costs nothing.

    Before (a router placed after attention):
    ```mlir
    %h = st.rms_norm %x, %n ...
    %a = st.attention %h, ...
    %w, %i = st.router %x, %wr {layer = 0 : i64, top_k = 2 : i64, ...}
    ```
    After:
    ```mlir
    %w, %i = st.router %x, %wr {layer = 0 : i64, route_ahead, top_k = 2 : i64, ...}
    %h = st.rms_norm %x, %n ...
    %a = st.attention %h, ...
    ```
  }];
  let statistics = [
    Statistic<"numHoisted", "hoisted", "Routers moved above other ops">,
  ];
}

def StSparseReglu : Pass<"st-sparse-reglu", "mlir::ModuleOp"> {
  let summary = "Expert FFNs that skip the up and down rows of dead neurons";
  let description = [{
    An expert computes `down @ (relu(gate @ x) * (up @ x))`: a neuron whose gate row
    gives relu(.) = 0 contributes nothing, so its up row and its column of down need
    not be read. SmallThinker's experts are ReLU-gated for this (over 60% of the
    neurons are zero per token in the paper; about half with random weights). The
    pass marks each `st.moe` `sparse_reglu` and asks for the layouts that make a dead
    neuron's bytes skippable:
    - up in `blocks16`: each row alone, its blocks 16 to a vector tile (the layout
      `sparse_up`'s int8 dot reads at full vector width), instead of rows16 tiles
      that interleave 16 neurons;
    - down `transposed`: stored [E][F][D] so the D outputs of one neuron are one
      contiguous row, with the same quantized values as the dense layout (the GGUF
      blocks run along F; their fp16 scales are stored per block of 32 neurons and
      output); or `neuron_rows` (PowerInfer's layout: [E][F][D] with the blocks
      along D, each row with its own scales, read by `down_rows`). A down already
      quantized keeps its blocks: along F (llama.cpp's files) it goes `transposed`,
      along D (PowerInfer's files, `transposed_source`) `neuron_rows`; a float down
      that the compile quantizes takes `down-layout` (the target's
      TargetInfo::sparseDownLayout, the faster of the two measured there).
    The runtime then computes all gate rows, lists the live neurons, and runs the up
    dot products of those only (`sparse_up`) and the down projection over their rows
    only (`sparse_down`: integer sums per block of 32 neurons over the live rows,
    with the Q8_0 activations the dense down uses). The result equals the dense
    path's up to f32 summation order. stc-bench reports the dead share and the bytes
    skipped per decoded token.

    When it pays: the bytes it skips are not the time it saves. A live row (~800
    bytes at a data-dependent place) reads at about half the streaming rate on the
    x86 machines measured (the hardware prefetchers fetch the row after it too), and
    the per-row kernels do several times the work per byte of the dense VNNI GEMV
    (see sparse_down_generator.cpp); at random weights' ~50% dead it is exact but
    no faster than dense. So `mode=auto` (what `stc compile` runs, its
    `--sparse-reglu=auto`) decides per layer from the calibrated dead share d the
    calibration put on the op (`dead_share`, compiler/calibrate) with the cost model
    of passes/SparseCostModel.h: per expert, dense reads gate + up + down; sparse
    reads gate + (1 - d) (up + down) at `live-row-cost` times the streaming cost
    (the target's TargetInfo::liveRowCost); sparse when that is below 0.95 of
    dense. With cost 3 (the x86 targets', measured), a layer goes sparse above
    ~69% dead; with 2, above ~54%. The
    ratio stays on the op (`sparse_cost`) for `--report`. A layer without a
    `dead_share` stays dense in auto mode; `mode=on` makes every layer it can
    sparse (`stc compile --sparse-reglu=on`).

    Experts whose up/down are f16, or quantized with a hidden size that is not a
    multiple of 64 (the down kernel's chunk), stay dense (statistic `kept-dense`).

    Before:
    ```mlir
    st.weight @up : tensor<8x64x128xf32> extents [...] {quant = "q4_0"}
    st.weight @down : tensor<8x128x64xf32> extents [...] {quant = "q4_0"}
    %y = st.moe %h, %w, %i, %g, %u, %d {layer = 0 : i64} : ...
    ```
    After:
    ```mlir
    st.weight @up : tensor<8x64x128xf32> extents [...] {layout = "blocks16", quant = "q4_0"}
    st.weight @down : tensor<8x128x64xf32> extents [...] {layout = "transposed", quant = "q4_0"}
    %y = st.moe %h, %w, %i, %g, %u, %d {layer = 0 : i64, sparse_reglu} : ...
    ```
    and after `st-lower-to-kernels`: `st.kernel "moe"["sparse_reglu"] (...)`.
  }];
  let options = [
    Option<"mode", "mode", "std::string", /*default=*/"\"on\"",
           "auto: per layer, where the cost model says it pays; on: every "
           "layer the kernels can take">,
    Option<"liveRowCost", "live-row-cost", "double", /*default=*/"3.0",
           "Cost of a byte of a live row relative to a streamed one">,
    Option<"downLayout", "down-layout", "std::string",
           /*default=*/"\"transposed\"",
           "The layout of a float down the compile quantizes: transposed "
           "(blocks along the neurons) or neuron_rows (along the outputs)">,
  ];
  let statistics = [
    Statistic<"numSparse", "sparse", "MoE blocks made sparse">,
    Statistic<"numKeptDense", "kept-dense", "MoE blocks left dense">,
  ];
}

def StNeuronLayout : Pass<"st-neuron-layout", "mlir::ModuleOp"> {
  let summary = "Orders each sparse expert's neurons hot-first, from the calibration";
  let description = [{
    SmallThinker's ReLU experts have hot neurons that fire for most tokens and a long
    tail that rarely fires. The calibration (`stc compile`, compiler/calibrate)
    records each neuron's firing frequency on its `st.moe` (`neuron_firing`,
    [E, F]). For each `st.moe` that st-sparse-reglu made sparse, this pass orders
    every expert's neurons by decreasing frequency (ties: lower index first) and
    records the order (`neuron_order`, [E, F] i32: physical row p of expert e
    holds neuron neuron_order[e][p]); the firing profile is permuted with it.
    The model writer stores the gate and up rows and the rows of the transposed
    down in that order, so the live rows of a decoded token sit together at the
    front of each matrix instead of spread over it, and the runtime maps the
    live rows back to their 32-neuron blocks (the quantized down's scales and
    the activations' Q8_0 blocks stay those of the original order, which keeps
    the result exact: the same integer sums per block as unpermuted).
    A permutation of gate rows, up rows and down columns together leaves the
    function unchanged. An `st.moe` without a profile, or left dense, is not
    touched (statistic `unprofiled`).

    Before:
    ```mlir
    %y = st.moe %h, %w, %i, %g, %u, %d {dead_share = 0.7 : f64, layer = 0 : i64,
        neuron_firing = dense<[[0.1, 0.9, 0.5, 0.0]]> : tensor<1x4xf32>, sparse_reglu} : ...
    ```
    After:
    ```mlir
    %y = st.moe %h, %w, %i, %g, %u, %d {dead_share = 0.7 : f64, layer = 0 : i64,
        neuron_firing = dense<[[0.9, 0.5, 0.1, 0.0]]> : tensor<1x4xf32>,
        neuron_order = dense<[[1, 2, 0, 3]]> : tensor<1x4xi32>, sparse_reglu} : ...
    ```
  }];
  let statistics = [
    Statistic<"numOrdered", "ordered", "MoE blocks ordered hot-first">,
    Statistic<"numUnprofiled", "unprofiled",
              "MoE blocks without a profile or left dense">,
  ];
}

def StKvPlan : Pass<"st-kv-plan", "mlir::ModuleOp"> {
  let summary = "Plan each layer's KV cache: its element type, a ring on sliding-window layers";
  let description = [{
    The KV cache's element type (`kv_type` on each attention op): `f16` (the default),
    `q8_0` (int8 values with an fp16 scale per 32 of head_dim, as ggml's blocks) or
    `f32`. `auto` (the default option) keeps `f32` for a module whose weights are all
    stored as f32 (an exact compile keeps an exact cache) and takes `f16` otherwise:
    the cache is read in full for every decoded token, and f32 doubles what a long
    context reads and holds (64 KiB per token of the 4B's context). The attention
    kernels read the stored type; queries stay f32.

    A sliding-window layer never looks further back than its window, so its KV cache
    needs only `window + max-batch - 1` slots: a ring that a prefill chunk of up to
    `max-batch` tokens can append to while its earliest query still sees its whole
    window. Global layers keep the full context (sized by the runtime's context
    length). The pass records the slot count on each attention op (`kv_slots`, absent
    or 0 = full context) and the planned prefill chunk on the module (`st.max_batch`);
    the runtime sizes the caches from the model file and never runs larger chunks.
    For SmallThinker-21B (39 of 52 layers with a 4096 window) at a 16K context this
    cuts the KV cache to about 40%.

    Before:
    ```mlir
    %a = st.attention %h, %pos, %wq, %wk, %wv, %wo {... layer = 1 : i64, ... window = 8 : i64} : ...
    ```
    After `--st-kv-plan=max-batch=4` (weights quantized):
    ```mlir
    module attributes {st.max_batch = 4 : i64} {
    %a = st.attention %h, %pos, %wq, %wk, %wv, %wo {kv_slots = 11 : i64, kv_type = "f16", ... window = 8 : i64} : ...
    ```
  }];
  let options = [
    Option<"maxBatch", "max-batch", "int64_t", /*default=*/"256",
           "Most tokens the runtime evaluates in one pass (prefill chunk)">,
    Option<"kvType", "kv-type", "std::string", /*default=*/"\"auto\"",
           "The KV cache's element type: f16, q8_0, f32, or auto (f32 for an "
           "all-f32 module, else f16)">,
  ];
  let statistics = [
    Statistic<"numRings", "rings", "Layers given a ring-buffer KV cache">,
  ];
}

def StExpertCachePlan : Pass<"st-expert-cache-plan", "mlir::ModuleOp"> {
  let summary = "Check a memory budget and plan which weights stay resident";
  let description = [{
    With a memory budget, the dense weights (attention, routers, norms, head) stay
    resident and the experts stream from the model file into a cache that holds as
    many (layer, expert) triples of gate/up/down as the budget leaves room for (the
    expert whose layer runs again furthest from now goes first). The smallest budget
    this pass accepts is the dense weights plus one layer's active experts (top_k
    triples); anything less is an error that names that minimum. The pass runs on
    kernel-level IR (the stored types decide the bytes) and records
    `st.memory_budget` on the module; the runtime plans the whole budget at load
    (runtime/MemoryPlan.h: the KV cache for the context it chooses, activations, the
    process, a margin, an embedding no matmul reads taken out of residency) and
    refuses, with the numbers, a budget its plan cannot hold. Budget 0 (the default)
    means no limit.

    Before:
    ```mlir
    module {
      %y = st.kernel "moe"["runtime"] (%h, %w, %i, %gate, %up, %down) {layer = 0 : i64} : ...
    ```
    After `--st-expert-cache-plan=budget=1073741824`:
    ```mlir
    module attributes {st.memory_budget = 1073741824 : i64} {
    ```
    and with a budget below the minimum:
    ```
    error: memory budget 1.0 MiB is below the minimum 2.3 MiB: dense weights 1.9 MiB
    plus one layer's 2 active experts 0.4 MiB
    ```
  }];
  let options = [
    Option<"budget", "budget", "int64_t", /*default=*/"0",
           "Memory budget in bytes (0 = unlimited)">,
  ];
}

#endif // ST_PASSES_TD
