// openTokenizer: see OpenTokenizer.h.
#include "OpenTokenizer.h"

#include "ModelFile.h"
#include "TokenizerFile.h"
#include "formats/Checkpoint.h"
#include "formats/FileIO.h"
#include "formats/TokenizerImport.h"

namespace stc {

bool openTokenizer(const std::string &path, rt::Tokenizer &tok,
                   std::string &error) {
  std::string model = path;
  if (isDirectory(path) && fileExists(joinPath(path, "model.stcm")))
    model = joinPath(path, "model.stcm");
  rt::TokenizerData data;
  if (model.size() > 5 && model.compare(model.size() - 5, 5, ".stcm") == 0) {
    rt::ModelFile file;
    if (!file.open(model, error))
      return false;
    if (!file.model()->tokenizer()) {
      error = model + ": compiled without a tokenizer (its checkpoint had "
                      "none)";
      return false;
    }
    if (!rt::readTokenizer(*file.model()->tokenizer(), data, model, error))
      return false;
  } else {
    // A checkpoint, else tokenizer files alone (stc synth --tokenizer-only).
    Checkpoint ck;
    Status st = Checkpoint::open(path, ck);
    bool found = false;
    if (st.ok())
      st = importTokenizer(ck, data, found);
    else if (Status alone = importTokenizerAlone(path, data, found); found)
      st = alone; // tokenizer files (perhaps bad ones), but no model
    if (!st.ok()) {
      error = st.message();
      return false;
    }
    if (!found) {
      error = path + ": the checkpoint has no tokenizer";
      return false;
    }
  }
  return tok.init(std::move(data), model, error);
}

} // namespace stc
