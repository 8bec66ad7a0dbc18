// Args: the small command-line parser of the stc tools: positionals, `--name
// value`,
// `--name=value`, `-o value` and flags, with an error for anything unknown.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace stc {

class Args {
public:
  // `options` take a value; `flags` do not. Names include the dashes ("--seed",
  // "-o").
  Args(std::set<std::string> options, std::set<std::string> flags)
      : options_(std::move(options)), flags_(std::move(flags)) {}

  // Returns false and sets `error` on an unknown option or a missing value.
  bool parse(int argc, char **argv, int first, std::string &error) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a.size() > 1 && a[0] == '-' && a != "-") {
        std::string name = a, value;
        bool inlineValue = false;
        size_t eq = a.find('=');
        if (eq != std::string::npos) {
          name = a.substr(0, eq);
          value = a.substr(eq + 1);
          inlineValue = true;
        }
        if ((name == "--help" || name == "-h") && !inlineValue) {
          help_ = true; // where an option may stand, not as another's value
          continue;
        }
        if (flags_.count(name) && !inlineValue) {
          values_[name] = "1";
          continue;
        }
        if (!options_.count(name)) {
          error = "unknown option '" + name + "'";
          return false;
        }
        if (!inlineValue) {
          if (i + 1 >= argc) {
            error = "option '" + name + "' needs a value";
            return false;
          }
          value = argv[++i];
        }
        values_[name] = value;
      } else {
        positionals_.push_back(a);
      }
    }
    return true;
  }

  bool has(const std::string &name) const { return values_.count(name) != 0; }
  // --help or -h was given.
  bool help() const { return help_; }
  std::string get(const std::string &name, const std::string &def = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? def : it->second;
  }
  // Parses an integer option; false (with `error`) when it is not a whole
  // number.
  bool getInt(const std::string &name, int64_t def, int64_t &out,
              std::string &error) const {
    auto it = values_.find(name);
    if (it == values_.end()) {
      out = def;
      return true;
    }
    char *end = nullptr;
    errno = 0;
    long long v = std::strtoll(it->second.c_str(), &end, 10);
    if (errno != 0 || end == it->second.c_str() || *end != '\0') {
      error =
          "option '" + name + "' expects an integer, got '" + it->second + "'";
      return false;
    }
    out = v;
    return true;
  }
  const std::vector<std::string> &positionals() const { return positionals_; }

private:
  std::set<std::string> options_, flags_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
  bool help_ = false;
};

} // namespace stc
