// StopFilter: the OpenAI `stop` strings over streamed text. Text that could be
// the start of a stop string is held back until the next piece decides.
#ifndef STC_SERVE_STOPFILTER_H
#define STC_SERVE_STOPFILTER_H

#include <string>
#include <vector>

namespace stc::serve {

class StopFilter {
public:
  explicit StopFilter(std::vector<std::string> stops)
      : stops_(std::move(stops)) {}
  // Appends `piece` and returns the text that is now certain to be sent. Once
  // a stop string is complete, returns the text before it and stopped() holds;
  // later pieces are dropped.
  std::string push(const std::string &piece);
  // The text held back at the end of the generation (no stop string came).
  std::string flush();
  bool stopped() const { return stopped_; }

private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

} // namespace stc::serve

#endif
