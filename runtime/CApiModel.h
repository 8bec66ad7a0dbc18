// What the C API's opaque handles hold (CApi.cpp, TextApi.cpp); not part of the
// API.
#pragma once

#include "ChatTemplate.h"
#include "Runtime.h"
#include "Tokenizer.h"
#include "grammar/Matcher.h"
#include "stc_runtime.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

struct stc_sequence {
  stc_model *model;
  stc::rt::Sequence *sequence;              // the model's own, or `owned`
  std::unique_ptr<stc::rt::Sequence> owned; // stc_sequence_new's
};

struct stc_model {
  stc::rt::Runtime runtime;
  std::string error;
  bool hasTokenizer = false;
  stc::rt::Tokenizer tokenizer;
  // The model's chat template, or why it cannot be used (parsed at load).
  stc::rt::ChatTemplate chat;
  std::string chatError;
  stc_generation_stats lastGeneration = {};
  std::string memoryPlan; // MemoryPlan::describe(), "" without a budget
  stc_sequence own;       // stc_model_sequence
  // The vocabulary's byte trie for grammars (made with the first one).
  std::shared_ptr<const stc::rt::grammar::TokenTrie> trie;
  std::vector<stc::rt::Runtime::BatchItem> batch;
};

struct stc_text_stream {
  stc_model *model;
  stc::rt::Utf8Stream stream;
  std::string ready; // complete, not taken
};

struct stc_grammar {
  std::shared_ptr<stc::rt::grammar::CompiledGrammar> compiled;
};

struct stc_sampler {
  float temperature;
  int topK;
  float topP;
  std::mt19937_64 rng;
  std::vector<int> order;
  std::vector<float> probs;
  std::vector<std::pair<int32_t, float>> bias; // added to the logits
  std::vector<float> biased;                   // scratch: logits + bias
  // stc_sampler_set_grammar's: holds the tokens drawn to it.
  std::unique_ptr<stc::rt::grammar::GrammarMatcher> grammar;
};
