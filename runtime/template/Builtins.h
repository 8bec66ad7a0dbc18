// Builtins: what a chat template calls: Jinja's filters and tests (those
// Hugging Face chat templates use), the methods of strings and dicts it may
// call (Python's, read-only as the immutable sandbox allows), attribute lookup
// as Jinja does it, and the globals transformers provides (range, dict,
// namespace, raise_exception, strftime_now).
#pragma once

#include "template/Value.h"

#include <string>

namespace stc::rt::tmpl {

// Whether a filter / test of that name is implemented (the parser refuses the
// others).
bool isFilter(const std::string &name);
bool isTest(const std::string &name);

// value | name(args): false with `error` (without the line).
bool applyFilter(const std::string &name, const Value &value, const Args &args,
                 Value &out, std::string &error);
// value is name(args).
bool applyTest(const std::string &name, const Value &value, const Args &args,
               bool &out, std::string &error);

// obj.name as Jinja looks it up: Python's attribute first (a string's or a
// dict's method, bound), then the item; undefined when neither exists.
Value attribute(const Value &obj, const std::string &name);
// obj[key]: the item first (a list's or a string's index counts from the end
// when negative), then the attribute; undefined when neither exists.
Value item(const Value &obj, const Value &key);
// obj[start:stop:step] of a list or a string (absent parts undefined).
bool slice(const Value &obj, const Value &start, const Value &stop,
           const Value &step, Value &out, std::string &error);
// The elements a for loop or a filter iterates: a list's, a dict's keys, a
// string's characters; undefined iterates nothing. False for others.
bool iterate(const Value &v, List &out, std::string &error);
// Python's len(), or false.
bool length(const Value &v, int64_t &out, std::string &error);

// The globals: range, dict, namespace, raise_exception, strftime_now.
void addGlobals(Dict &globals);

} // namespace stc::rt::tmpl
