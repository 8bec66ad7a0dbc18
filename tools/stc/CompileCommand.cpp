// stc compile / stc targets.
#include "Args.h"
#include "Commands.h"
#include "Usage.h"

#include "ByteSize.h"
#include "Driver.h"
#include "targets/Target.h"

#include <cstdio>
#include <cstdlib>

namespace stc {

int runCompile(int argc, char **argv) {
  // --quant-rule may repeat: collect those by hand before the generic parse.
  std::vector<std::string> rules;
  std::vector<char *> rest;
  // --sparse-reglu alone means "on" (what it meant before auto), so it is
  // parsed by hand too.
  std::string sparse = "auto";
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--sparse-reglu") {
      sparse = "on";
      continue;
    }
    if (a.rfind("--sparse-reglu=", 0) == 0) {
      sparse = a.substr(15);
      if (sparse != "auto" && sparse != "on" && sparse != "off")
        return fail("compile: --sparse-reglu expects auto, on or off, got '" +
                    sparse + "'");
      continue;
    }
    if (a == "--quant-rule" && i + 1 < argc) {
      rules.push_back(argv[++i]);
      continue;
    }
    if (a.rfind("--quant-rule=", 0) == 0) {
      rules.push_back(a.substr(13));
      continue;
    }
    rest.push_back(argv[i]);
  }
  Args args({"--target", "--quant", "--quant-rules", "-o", "--pass-pipeline",
             "--dump-ir-after", "--emit", "--max-batch", "--memory-budget",
             "--kernel-cache", "--calibrate", "--live-row-cost", "--kv-type",
             "--sparse-down-layout", "--chat-template"},
            {"--report", "--no-kernel-cache", "-q", "--quiet"});
  std::string err;
  if (!args.parse(static_cast<int>(rest.size()), rest.data(), 2, err))
    return fail("compile: " + err);
  if (args.help()) {
    std::fputs(kCompileUsage, stdout);
    return 0;
  }
  if (args.positionals().size() != 1)
    return fail("compile: expected one input (an HF folder, a .gguf, or a "
                ".mlir file to resume from)");
  CompileOptions o;
  o.input = args.positionals()[0];
  o.target = args.get("--target", "host");
  o.quant = args.get("--quant", "q4_0");
  o.quantRules = rules;
  o.quantRulesFile = args.get("--quant-rules");
  o.outDir = args.get("-o");
  o.passPipeline = args.get("--pass-pipeline");
  o.dumpIrAfter = args.get("--dump-ir-after");
  o.emit = args.get("--emit");
  o.report = args.has("--report");
  o.sparseReglu = sparse;
  o.calibrate = args.get("--calibrate");
  o.kvType = args.get("--kv-type", "auto");
  o.chatTemplate = args.get("--chat-template");
  o.sparseDownLayout = args.get("--sparse-down-layout");
  if (!o.sparseDownLayout.empty() && o.sparseDownLayout != "transposed" &&
      o.sparseDownLayout != "neuron_rows")
    return fail("compile: --sparse-down-layout expects transposed or "
                "neuron_rows, got '" +
                o.sparseDownLayout + "'");
  if (o.kvType != "auto" && o.kvType != "f16" && o.kvType != "q8_0" &&
      o.kvType != "f32")
    return fail("compile: --kv-type expects f16, q8_0, f32 or auto, got '" +
                o.kvType + "'");
  o.quiet = args.has("-q") || args.has("--quiet");
  if (args.has("--kernel-cache"))
    o.kernelCache = args.get("--kernel-cache");
  if (args.has("--no-kernel-cache"))
    o.kernelCache.clear();
  if (args.has("--memory-budget")) {
    uint64_t bytes = 0;
    if (!rt::parseByteSize(args.get("--memory-budget"), bytes))
      return fail("compile: --memory-budget expects a size such as 1GiB or "
                  "512MiB, got '" +
                  args.get("--memory-budget") + "'");
    o.memoryBudget = static_cast<int64_t>(bytes);
  }
  if (args.has("--live-row-cost")) {
    const std::string v = args.get("--live-row-cost");
    char *end = nullptr;
    o.liveRowCost = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || !(o.liveRowCost > 0 && o.liveRowCost <= 100))
      return fail("compile: --live-row-cost expects a number in (0, 100] (a "
                  "live row's byte against a streamed one), got '" +
                  v + "'");
    if (sparse == "off")
      return fail("compile: --live-row-cost is st-sparse-reglu's cost "
                  "model; it has no use with --sparse-reglu=off");
  }
  if (!args.getInt("--max-batch", 256, o.maxBatch, err))
    return fail("compile: " + err);
  if (o.maxBatch < 1 || o.maxBatch > 65536)
    return fail("compile: --max-batch must be between 1 and 65536");
  Status st = compile(o);
  if (!st.ok())
    return fail(st.message());
  return 0;
}

int runTargets(int argc, char **argv) {
  Args args({}, {});
  std::string err;
  if (!args.parse(argc, argv, 2, err))
    return fail("targets: " + err);
  if (args.help()) {
    std::fputs(kTargetsUsage, stdout);
    return 0;
  }
  TargetInfo host;
  Status st = resolveTarget("host", host);
  for (const TargetInfo &t : allTargets()) {
    std::printf("%-15s %s\n", t.name.c_str(), t.description.c_str());
    std::printf("%-15s   halide target: %s, %d-bit vectors\n", "",
                t.halideTarget.c_str(), t.vectorBits);
    std::string f;
    for (const std::string &x : t.features)
      f += (f.empty() ? "" : " ") + x;
    std::printf("%-15s   needs: %s\n", "",
                f.empty() ? "(cross target)" : f.c_str());
  }
  std::printf("%-15s %s\n", "host",
              st.ok() ? ("this CPU: " + host.name).c_str()
                      : ("unavailable: " + st.message()).c_str());
  return 0;
}

} // namespace stc
