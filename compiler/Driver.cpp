#include "Driver.h"

#include "calibrate/Calibration.h"
#include "emit/ModelWriter.h"
#include "emit/Report.h"

#include "Bandwidth.h"
#include "ChatTemplate.h"
#include "KernelSet.h"
#include "ModelFile.h"
#include "formats/Checkpoint.h"
#include "formats/DType.h"
#include "formats/FileIO.h"
#include "formats/Progress.h"
#include "formats/TokenizerImport.h"
#include "import/Import.h"
#include "targets/KernelBuild.h"
#include "targets/Target.h"

#include "dialects/st/StDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <map>
#include <unistd.h>

using namespace mlir;

namespace stc {

std::string defaultPipeline(const std::string &quant,
                            const std::vector<std::string> &rules,
                            int64_t maxBatch, int64_t memoryBudget,
                            const std::string &sparseReglu, double liveRowCost,
                            const std::string &kvType,
                            const std::string &sparseDownLayout) {
  char cost[32];
  std::snprintf(cost, sizeof(cost), "%g", liveRowCost);
  std::string p = "builtin.module(st-compile{quant=" + quant +
                  " max-batch=" + std::to_string(maxBatch) +
                  " memory-budget=" + std::to_string(memoryBudget) +
                  " sparse-reglu=" + sparseReglu + " live-row-cost=" + cost +
                  " kv-type=" + kvType +
                  " sparse-down-layout=" + sparseDownLayout;
  if (!rules.empty()) {
    p += " rules=";
    for (size_t i = 0; i < rules.size(); ++i)
      p += (i ? "," : "") + rules[i];
  }
  return p + "})";
}

namespace {

// Notes and the summary lines: to stderr, or nowhere under -q.
llvm::raw_ostream &info(const CompileOptions &o) {
  return o.quiet ? llvm::nulls() : llvm::errs();
}

// One line naming the weights whose checkpoint type no kernel reads and what
// they are stored as (st-quantize's choice: the exact image, or a rule's).
void reportConversions(ModuleOp module, llvm::raw_ostream &os) {
  std::map<std::string, int> counts; // "q4_k -> f32"
  module.walk([&](st::WeightOp w) {
    Type src = w.getSourceType()
                   ? w.getSourceTensorType().getElementType()
                   : cast<RankedTensorType>(w.getType()).getElementType();
    auto quant = w->getAttrOfType<StringAttr>("quant");
    const bool transposed = w->hasAttr("transposed_source");
    std::string kind;
    if (auto block = dyn_cast<st::BlockType>(src))
      kind = block.getKind().str();
    else if (transposed && isa<st::Q4_0Type>(src))
      kind = "q4_0";
    else if (transposed && isa<st::Q8_0Type>(src))
      kind = "q8_0";
    DType from;
    if (kind.empty() || !quant || !parseDTypeName(kind, from) ||
        quant.getValue() == kind)
      return; // kept as stored: a type the kernels read
    // The exact image, unless a rule asked for a lossy scheme.
    const bool exact = quant.getValue() ==
                       (transposed ? "f32" : dtypeName(exactKernelType(from)));
    ++counts[kind + (transposed ? " (transposed down)" : "") + " -> " +
             quant.getValue().str() + (exact ? "" : " (lossy, by a rule)")];
  });
  if (counts.empty())
    return;
  int total = 0;
  std::string list;
  for (const auto &c : counts) {
    total += c.second;
    list += (list.empty() ? "" : ", ") + c.first + " (" +
            std::to_string(c.second) + ")";
  }
  os << "stc: converted " << total
     << " tensors that no kernel reads as stored: " << list
     << "; --report gives the bytes per token\n";
}

bool isScheme(const std::string &s) {
  return s == "q4_0" || s == "q8_0" || st::kTileKind(s) || s == "f16" ||
         s == "f32";
}
const char *kSchemes = "q4_0, q8_0, q4_k, q5_k, q6_k, q3_k, f16 or f32";

Status printToFile(Operation *op, const std::string &path) {
  std::string text;
  llvm::raw_string_ostream os(text);
  op->print(os);
  os.flush();
  AtomicOutputFile f;
  STC_TRY(f.open(path));
  STC_TRY(f.write(text.data(), text.size()));
  return f.commit();
}

// Writes the IR after each pass (or one named pass) to <dir>/NN-<pass>.mlir.
class DumpAfter : public PassInstrumentation {
public:
  DumpAfter(std::string dir, std::string which)
      : dir_(std::move(dir)), which_(std::move(which)) {}
  void runAfterPass(Pass *pass, Operation *op) override {
    std::string arg = pass->getArgument().str();
    if (arg.empty() || (which_ != "all" && which_ != arg))
      return; // pipeline adaptors have no name of their own
    char name[32];
    std::snprintf(name, sizeof(name), "%02d-", ++count_);
    Status st = printToFile(op, joinPath(dir_, name + arg + ".mlir"));
    if (!st.ok())
      llvm::errs() << "stc: " << st.message() << "\n";
  }

private:
  std::string dir_, which_;
  int count_ = 0;
};

// Finds a file installed next to (or one level up from) the stc executable.
std::string findTool(const std::string &relative) {
  std::string exe = llvm::sys::fs::getMainExecutable(nullptr, nullptr);
  llvm::SmallString<256> dir(llvm::sys::path::parent_path(exe));
  llvm::SmallString<256> p(dir);
  llvm::sys::path::append(p, relative);
  return p.str().str();
}

// A compile that was killed leaves its scratch folder (.stc-tmp.<pid>) behind,
// never a half-written output; the next compile into the same folder removes
// the leftovers of processes that no longer run.
void removeStaleScratch(const std::string &outDir) {
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(outDir, ec), end; it != end && !ec;
       it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (!name.consume_front(".stc-tmp."))
      continue;
    int pid = 0;
    if (name.getAsInteger(10, pid) || pid <= 0)
      continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH)
      llvm::sys::fs::remove_directories(it->path());
  }
}

Status moveInto(const std::string &from, const std::string &to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    return Status::error(to + ": cannot move the finished file into place");
  return Status::success();
}

Status copyFile(const std::string &from, const std::string &to) {
  if (std::error_code ec = llvm::sys::fs::copy_file(from, to))
    return Status::error(to + ": cannot copy " + from + ": " + ec.message());
  return Status::success();
}

// out/README.md: what the folder holds and the exact commands that link an app
// against it (the runtime is C++17: a C app links libstdc++ too).
std::string outReadme(const TargetInfo &target) {
  const std::string cc = target.cross ? "aarch64-linux-gnu-gcc" : "cc";
  const std::string cxx = target.cross ? "aarch64-linux-gnu-g++" : "c++";
  return "# A SmallThinker model compiled by stc for " + target.name +
         "\n\n"
         "- `model.stcm`: the model (plan, weights, tokenizer).\n"
         "- `libstc_model.a`: the runtime, the kernels for " +
         target.name +
         " and the Halide runtime, in one archive.\n"
         "- `stc_runtime.h`: its C API (load, tokenize, chat format, "
         "generate with a callback, ...).\n"
         "- `stc-run`, `stc-bench`: the command-line runner and the "
         "benchmark (`--help`); `link.sh` relinks them from "
         "`libstc_run_main.a`, `libstc_bench_main.a` and the archive.\n" +
         (target.cross
              ? std::string()
              : std::string(
                    "- `stc-serve`: an OpenAI-compatible HTTP server "
                    "(`./stc-serve . --port 8080`, then POST "
                    "`/v1/chat/completions`; `--help`). It links Debian's "
                    "shared cpp-httplib: running it needs the package "
                    "`libcpp-httplib0.11`, relinking it (link.sh) "
                    "`libcpp-httplib-dev`. The other files need neither.\n")) +
         "\n"
         "Nothing here names a path outside this folder: move it anywhere.\n\n"
         "## Linking an app\n\n"
         "The runtime is C++17 built without exceptions; a C program links "
         "the C++ standard library explicitly (a C++ driver needs no "
         "`-lstdc++`):\n\n"
         "```sh\n" +
         cc +
         " -std=c11 -I. app.c libstc_model.a -lstdc++ -lpthread -ldl -lm "
         "-o app\n" +
         cxx +
         " -I. app.cpp libstc_model.a -lpthread -ldl -lm -o app\n"
         "```\n\n"
         "then `stc_load(\"model.stcm\", 0, err, sizeof err)`. An example "
         "app is examples/generate.c in the stc repository.\n";
}

} // namespace

std::string CompileOptions::defaultKernelCache() {
  const char *xdg = std::getenv("XDG_CACHE_HOME");
  const char *home = std::getenv("HOME");
  if (xdg && *xdg)
    return joinPath(joinPath(xdg, "stc"), "kernels");
  return home && *home ? joinPath(home, ".cache/stc/kernels") : "";
}

Status compile(const CompileOptions &o) {
  static const bool registered = [] {
    st::registerStPasses();
    st::registerStPipelines();
    return true;
  }();
  (void)registered;
  if (o.quiet)
    Progress::setEnabled(false);
  if (o.outDir.empty())
    return Status::error("compile: -o OUT_DIR is required");
  if (!isScheme(o.quant))
    return Status::error("unknown quant scheme '" + o.quant + "' (expected " +
                         kSchemes + ")");
  if (!o.emit.empty() && o.emit != "mlir")
    return Status::error("--emit: only 'mlir' is supported, got '" + o.emit +
                         "'");
  TargetInfo target;
  STC_TRY(resolveTarget(o.target, target));
  std::vector<std::string> rules = o.quantRules;
  if (!o.quantRulesFile.empty()) {
    std::string text;
    STC_TRY(readSmallFile(o.quantRulesFile, 1 << 20, text));
    size_t start = 0, lineNo = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos)
        end = text.size();
      std::string line = text.substr(start, end - start);
      ++lineNo;
      start = end + 1;
      size_t hash = line.find('#');
      if (hash != std::string::npos)
        line = line.substr(0, hash);
      line.erase(0, line.find_first_not_of(" \t\r"));
      line.erase(line.find_last_not_of(" \t\r") + 1);
      if (line.empty())
        continue;
      size_t eq = line.rfind('=');
      if (eq == std::string::npos || !isScheme(line.substr(eq + 1)))
        return Status::error(o.quantRulesFile + ":" + std::to_string(lineNo) +
                             ": expected glob=scheme (" + kSchemes + ")");
      rules.push_back(line);
    }
  }
  for (const std::string &r : rules) {
    size_t eq = r.rfind('=');
    if (eq == std::string::npos || !isScheme(r.substr(eq + 1)))
      return Status::error("--quant-rule '" + r + "': expected glob=scheme (" +
                           std::string(kSchemes) + ")");
  }

  DialectRegistry registry;
  registry.insert<st::StDialect, func::FuncDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  OwningOpRef<ModuleOp> module;
  Checkpoint ck; // opened once: the import and the tokenizer read its headers
  bool haveCheckpoint = false;
  if (llvm::StringRef(o.input).ends_with(".mlir")) {
    llvm::SourceMgr sm;
    std::string err;
    auto file = openInputFile(o.input, &err);
    if (!file)
      return Status::error(o.input + ": " + err);
    sm.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
    module = parseSourceFile<ModuleOp>(sm, &context);
    if (!module)
      return Status::error(o.input + ": not valid st IR (see the diagnostics "
                                     "above)");
  } else {
    STC_TRY(Checkpoint::open(o.input, ck));
    haveCheckpoint = true;
    for (const std::string &n : ck.config.notes)
      info(o) << "stc: note: " << n << "\n";
    module = importCheckpoint(context, ck);
  }
  // The tokenizer comes from the checkpoint (for edited IR, the one it names).
  rt::TokenizerData tokenizer;
  bool hasTokenizer = false;
  {
    auto source = (*module)->getAttrOfType<StringAttr>("st.source");
    std::string ckPath = source ? source.getValue().str() : o.input;
    if (!haveCheckpoint && !llvm::StringRef(ckPath).ends_with(".mlir"))
      haveCheckpoint = Checkpoint::open(ckPath, ck).ok();
    if (haveCheckpoint)
      STC_TRY(importTokenizer(ck, tokenizer, hasTokenizer));
    if (!hasTokenizer)
      info(o) << "stc: note: " << ckPath
              << " has no tokenizer: the model takes and gives token ids "
                 "only\n";
    // The chat template is checked here, so a model never ships one the
    // runtime would refuse (or render approximately).
    if (hasTokenizer) {
      std::string where = ckPath;
      if (o.chatTemplate == "chatml") {
        tokenizer.chatTemplate.clear(); // ChatML
        where = "--chat-template chatml";
      } else if (!o.chatTemplate.empty()) {
        STC_TRY(readSmallFile(o.chatTemplate, 1 << 20, tokenizer.chatTemplate));
        where = o.chatTemplate;
      }
      rt::ChatTemplate check;
      std::string why;
      if (!check.init(tokenizer.chatTemplate, why))
        return Status::error(where + ": " + why +
                             " (--chat-template chatml or FILE gives "
                             "another)");
    } else if (!o.chatTemplate.empty()) {
      return Status::error("--chat-template: " + ckPath +
                           " has no tokenizer to chat with");
    }
  }

  // The sparsity profile st-sparse-reglu (auto) and st-neuron-layout plan
  // with; resumed IR keeps the one it carries, and IR past the lowering has
  // no st.moe left to profile.
  bool hasMoe = false;
  (*module)->walk([&](st::MoeOp) { hasMoe = true; });
  if (o.sparseReglu != "off" && haveCheckpoint && hasMoe &&
      !(*module)->hasAttr("st.calibration")) {
    CalibrationTokens calib;
    STC_TRY(calibrationTokens(o.calibrate, ck.config,
                              hasTokenizer ? &tokenizer : nullptr, calib));
    info(o) << "stc: calibrating the ReLU sparsity profile: "
            << calib.description
            << ", through the calibration pass (the reference's semantics, "
               "every sequence at once, in f32)\n";
    STC_TRY(calibrate(ck, calib, *module));
  } else if (!o.calibrate.empty() && o.sparseReglu == "off") {
    return Status::error("--calibrate profiles for st-sparse-reglu; it has no "
                         "use with --sparse-reglu=off");
  }

  STC_TRY(makeDirectories(o.outDir));
  removeStaleScratch(o.outDir);
  std::string pipeline =
      o.passPipeline.empty()
          ? defaultPipeline(
                o.quant, rules, o.maxBatch, o.memoryBudget, o.sparseReglu,
                o.liveRowCost > 0 ? o.liveRowCost : target.liveRowCost,
                o.kvType,
                o.sparseDownLayout.empty() ? target.sparseDownLayout
                                           : o.sparseDownLayout)
          : o.passPipeline;
  std::string perr;
  llvm::raw_string_ostream perrs(perr);
  FailureOr<OpPassManager> parsed = parsePassPipeline(pipeline, perrs);
  if (failed(parsed))
    return Status::error("--pass-pipeline '" + pipeline + "': " + perrs.str());
  // The pipeline text names its anchor (builtin.module(...)); run it on our
  // module.
  PassManager pm(&context, parsed->getOpAnchorName());
  static_cast<OpPassManager &>(pm) = *parsed;
  if (!o.dumpIrAfter.empty()) {
    std::string dir = joinPath(o.outDir, "ir");
    STC_TRY(makeDirectories(dir));
    pm.addInstrumentation(std::make_unique<DumpAfter>(dir, o.dumpIrAfter));
  }
  if (failed(pm.run(*module)))
    return Status::error(
        "compile: the pass pipeline failed (diagnostics above)");
  reportConversions(*module, info(o));
  if (o.emit == "mlir")
    return printToFile(*module, joinPath(o.outDir, "model.mlir"));
  if (o.report) {
    std::string report = compileReport(
        *module, target, rt::measureReadBandwidth(2, size_t(512) << 20, 3),
        [](uint64_t rowBytes, double live) {
          rt::SparseReadRates r = rt::measureSparseReadBandwidth(
              2, rowBytes, live, size_t(256) << 20, 3);
          return r.liveRows / r.streaming;
        });
    AtomicOutputFile f;
    STC_TRY(f.open(joinPath(o.outDir, "report.txt")));
    STC_TRY(f.write(report.data(), report.size()));
    STC_TRY(f.commit());
    llvm::outs() << report;
  }

  // Everything else is produced in a scratch folder and moved into place at the
  // end; the folder goes away whether or not the compile succeeds.
  std::string tmp =
      joinPath(o.outDir, ".stc-tmp." + std::to_string(::getpid()));
  struct RemoveOnExit {
    std::string dir;
    ~RemoveOnExit() { llvm::sys::fs::remove_directories(dir); }
  } scratch{tmp};
  STC_TRY(makeDirectories(joinPath(tmp, "kernels")));
  ModelWriteStats stats;
  STC_TRY(writeModelFile(*module, target, hasTokenizer ? &tokenizer : nullptr,
                         joinPath(tmp, "model.stcm"), stats));
  // Only the kernels the written plan calls (the runtime's own rule).
  std::vector<std::string> archives, kernels;
  {
    rt::ModelFile written;
    std::string err;
    if (!written.open(joinPath(tmp, "model.stcm"), err))
      return Status::error("compile: the model file just written: " + err);
    kernels = rt::kernelsFor(*written.model());
    // Every KV cache type's attention kernels besides the planned one's, so
    // stc-run, stc-bench, stc-serve and apps can choose the cache's type at
    // run time (--kv-type).
    for (model::KvType t :
         {model::KvType::F32, model::KvType::F16, model::KvType::Q8_0})
      for (const std::string &k :
           rt::attentionKernels(t, written.model()->config()->head_dim()))
        if (std::find(kernels.begin(), kernels.end(), k) == kernels.end())
          kernels.push_back(k);
  }
  KernelBuildStats kstats;
  STC_TRY(buildKernels(target, findTool("stc-kernelgen"),
                       joinPath(tmp, "kernels"), archives, kernels,
                       o.kernelCache, kstats));
  info(o) << "stc: kernels: " << kstats.generated << " generated, "
          << kstats.cached << " from the cache"
          << (o.kernelCache.empty() ? " (off)" : " (" + o.kernelCache + ")");
  if (kstats.damaged)
    info(o) << ", " << kstats.damaged << " damaged cache entries rebuilt";
  info(o) << "\n";
  // The kernels the plan never calls become stubs that fail, so out/ carries
  // none of their code; their names let the runtime refuse a model that would
  // need one (a model file linked with another compile's libstc_model.a).
  const std::string stubs = joinPath(tmp, "kernels/stc_kernel_stubs");
  {
    std::string c = "/* Generated by stc compile: kernels this model never "
                    "calls. */\n";
    std::string names;
    for (const std::string &k : allKernelFunctions())
      if (std::find(kernels.begin(), kernels.end(), k) == kernels.end()) {
        c += "int " + k + "(void) { return -1; }\n";
        names += "\"" + k + "\", ";
      }
    c += "const char *const stc_absent_kernels[] = {" + names + "0};\n";
    AtomicOutputFile f;
    STC_TRY(f.open(stubs + ".c"));
    STC_TRY(f.write(c.data(), c.size()));
    STC_TRY(f.commit());
    const std::string cc = target.cross ? "aarch64-linux-gnu-gcc" : "cc";
    STC_TRY(runProgram({cc, "-O2", "-c", stubs + ".c", "-o", stubs + ".o"},
                       "compiling the kernel stubs"));
  }

  // The runtime archives for the target's architecture (the cross-built copy
  // for arm64, made when the build found aarch64-linux-gnu-g++).
  std::string lib = findTool(target.cross ? "../lib/aarch64" : "../lib");
  // libstc_model.a: the runtime, this target's kernels and the Halide runtime
  // in one archive, so an app (and link.sh) needs nothing outside out/.
  const std::string model = joinPath(tmp, "libstc_model.a");
  {
    std::vector<std::string> parts = {joinPath(lib, "libstc_runtime.a")};
    parts.insert(parts.end(), archives.begin(), archives.end());
    std::string mri = "CREATE " + model + "\n";
    for (const std::string &a : parts)
      mri += "ADDLIB " + a + "\n";
    mri += "ADDMOD " + stubs + ".o\nSAVE\nEND\n";
    parts.push_back(stubs + ".o");
    for (const std::string &path : parts)
      if (path.find_first_of(" \t") != std::string::npos ||
          model.find_first_of(" \t") != std::string::npos)
        return Status::error("compile: '" + path +
                             "' has white space in its path, which ar's "
                             "scripts cannot name");
    AtomicOutputFile f;
    STC_TRY(f.open(joinPath(tmp, "libstc_model.mri")));
    STC_TRY(f.write(mri.data(), mri.size()));
    STC_TRY(f.commit());
    const std::string ar = target.cross && programExists("aarch64-linux-gnu-ar")
                               ? "aarch64-linux-gnu-ar"
                               : "ar";
    STC_TRY(runProgram({ar, "-M"}, "archiving libstc_model.a",
                       joinPath(tmp, "libstc_model.mri")));
    ::unlink(joinPath(tmp, "libstc_model.mri").c_str());
  }
  std::vector<std::string> binaries, mains;
  // link.sh relinks the tools from out/ alone (for a cross target, with the
  // cross compiler of your toolchain); the same lines are run here for native
  // targets.
  std::string linkScript =
      "#!/bin/sh\n# Links the tools for target " + target.name +
      " from the files in this folder.\nset -e\n"
      "cd \"$(dirname \"$0\")\"\nCXX=${CXX:-" +
      std::string(target.cross ? "aarch64-linux-gnu-g++" : "c++") + "}\n";
  // A sanitized stc build has a sanitized runtime library: link it the same
  // way.
  std::vector<std::string> libs = {"-lpthread", "-ldl", "-lm", "-s"};
  if (*STC_RUNTIME_LINK_FLAGS && !target.cross)
    libs.push_back(STC_RUNTIME_LINK_FLAGS);
  // stc-serve is built for the host only: it links Debian's shared
  // cpp-httplib, which a cross toolchain does not have.
  std::vector<std::string> tools = {"stc-run", "stc-bench"};
  if (!target.cross)
    tools.push_back("stc-serve");
  for (const std::string &tool : tools) {
    const std::string mainName =
        "lib" + std::string(tool == "stc-run"     ? "stc_run_main.a"
                            : tool == "stc-bench" ? "stc_bench_main.a"
                                                  : "stc_serve_main.a");
    std::vector<std::string> toolLibs = libs;
    if (tool == "stc-serve")
      toolLibs.insert(toolLibs.begin(), "-lcpp-httplib");
    // Copied next to the model so link.sh names only files of out/.
    STC_TRY(copyFile(joinPath(lib, mainName), joinPath(tmp, mainName)));
    mains.push_back(mainName);
    std::string line = "$CXX -o " + tool + " " + mainName + " libstc_model.a";
    for (const std::string &l : toolLibs)
      line += " " + l;
    linkScript += line + "\n";
    std::string cxx = target.cross ? "aarch64-linux-gnu-g++" : "c++";
    if (target.cross && !programExists(cxx))
      continue; // no cross toolchain here: the archives and link.sh are the
                // output
    std::vector<std::string> argv = {cxx, "-o", joinPath(tmp, tool),
                                     joinPath(tmp, mainName), model};
    argv.insert(argv.end(), toolLibs.begin(), toolLibs.end());
    STC_TRY(runProgram(argv, "linking " + tool));
    binaries.push_back(tool);
  }
  const std::string readme = outReadme(target);
  const std::pair<const char *, const std::string *> texts[] = {
      {"link.sh", &linkScript}, {"README.md", &readme}};
  for (const auto &file : texts) {
    AtomicOutputFile f;
    STC_TRY(f.open(joinPath(tmp, file.first)));
    STC_TRY(f.write(file.second->data(), file.second->size()));
    STC_TRY(f.commit());
  }
  std::string header;
  STC_TRY(readSmallFile(findTool("../share/stc_runtime.h"), 1 << 20, header));
  {
    AtomicOutputFile f;
    STC_TRY(f.open(joinPath(tmp, "stc_runtime.h")));
    STC_TRY(f.write(header.data(), header.size()));
    STC_TRY(f.commit());
  }
  // Move into place: the archives first, the model file last. A kernels/
  // folder from an earlier stc goes: libstc_model.a holds its contents.
  llvm::sys::fs::remove_directories(joinPath(o.outDir, "kernels"));
  for (const std::string &file : mains)
    STC_TRY(moveInto(joinPath(tmp, file), joinPath(o.outDir, file)));
  STC_TRY(moveInto(model, joinPath(o.outDir, "libstc_model.a")));
  for (const std::string &b : binaries)
    STC_TRY(moveInto(joinPath(tmp, b), joinPath(o.outDir, b)));
  for (const char *file : {"link.sh", "README.md", "stc_runtime.h"})
    STC_TRY(moveInto(joinPath(tmp, file), joinPath(o.outDir, file)));
  STC_TRY(
      moveInto(joinPath(tmp, "model.stcm"), joinPath(o.outDir, "model.stcm")));
  info(o) << "stc: wrote " << o.outDir << " for " << target.name << ": "
          << stats.steps << " steps, " << stats.tensors << " tensors, "
          << llvm::format("%.1f", stats.fileBytes / 1048576.0)
          << " MiB model file\n";
  return Status::success();
}

} // namespace stc
