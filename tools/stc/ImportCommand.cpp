// stc import: checkpoint -> st-dialect MLIR (headers only; no weight data is
// read).
#include "Args.h"
#include "Commands.h"
#include "Usage.h"

#include "formats/Checkpoint.h"
#include "formats/FileIO.h"
#include "import/Import.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>

namespace stc {

int runImport(int argc, char **argv) {
  Args args({"-o"}, {});
  std::string err;
  if (!args.parse(argc, argv, 2, err))
    return fail("import: " + err);
  if (args.help()) {
    std::fputs(kImportUsage, stdout);
    return 0;
  }
  if (args.positionals().size() != 1)
    return fail(
        "import: expected one checkpoint path (an HF folder or a .gguf)");
  Checkpoint ck;
  Status st = Checkpoint::open(args.positionals()[0], ck);
  if (!st.ok())
    return fail(st.message());
  for (const std::string &n : ck.config.notes)
    std::fprintf(stderr, "stc: note: %s\n", n.c_str());

  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module = importCheckpoint(context, ck);
  if (mlir::failed(mlir::verify(*module)))
    return fail("import: the imported module failed verification (a bug in "
                "stc; the diagnostics above say where)");
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  os.flush();
  std::string out = args.get("-o", "-");
  if (out == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  AtomicOutputFile f;
  if (!(st = f.open(out)).ok() ||
      !(st = f.write(text.data(), text.size())).ok() || !(st = f.commit()).ok())
    return fail(st.message());
  return 0;
}

} // namespace stc
