// Status: the error value every reader and writer returns. No exceptions
// anywhere in stc (MLIR/LLVM build with -fno-exceptions), so errors travel as
// values with one clear message.
#pragma once

#include <string>
#include <utility>

namespace stc {

class Status {
public:
  Status() = default;
  static Status success() { return Status(); }
  static Status error(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }
  bool ok() const { return !failed_; }
  const std::string &message() const { return message_; }

private:
  bool failed_ = false;
  std::string message_;
};

} // namespace stc

// Returns early from the enclosing function when `expr` yields a failed Status.
#define STC_TRY(expr)                                                          \
  do {                                                                         \
    ::stc::Status stc_try_status_ = (expr);                                    \
    if (!stc_try_status_.ok())                                                 \
      return stc_try_status_;                                                  \
  } while (0)
