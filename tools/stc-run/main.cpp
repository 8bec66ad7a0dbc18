// stc-run: loads a compiled model and generates: text from a text prompt
// (--prompt), a ChatML conversation (--chat), or token ids (--tokens). Uses
// only the C API (stc_runtime.h), so it is also an example of it; links only
// the runtime and the model's kernels.
#include "stc_runtime.h"

#include "ByteSize.h"
#include "CApiTools.h"
#include "TokenList.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

const char *const kUsage =
    "usage: stc-run <out-dir | model.stcm> (--prompt TEXT | --prompt-file F |\n"
    "               --chat | --tokens 1,2,3) [options]\n"
    "  --prompt TEXT     generate text after TEXT (its control tokens such as\n"
    "                    <|im_start|> count as such); invalid UTF-8 is "
    "refused\n"
    "                    with its byte offset\n"
    "  --prompt-file F   the prompt is the contents of F\n"
    "  --chat            a conversation through the model's chat template:\n"
    "                    one user message per line of standard input (a\n"
    "                    terminal or a pipe); Ctrl-C stops the reply, Ctrl-D\n"
    "                    ends\n"
    "  --system TEXT     a system message first (--chat)\n"
    "  --chat-template T chatml, or a file of Jinja text, instead of the\n"
    "                    model's chat template\n"
    "  --json-schema F   the output is JSON that the JSON Schema in F\n"
    "                    validates (compact; stc_grammar_from_json_schema\n"
    "                    lists the keywords held), ending when it is complete\n"
    "  --tokens 1,2,3    token ids in, token ids out (greedy unless --temp)\n"
    "  -n N              tokens to generate (text: default until an eos token\n"
    "                    or a full context; --tokens: default 16)\n"
    "  --temp T --top-k K --top-p P   sampling (text: the model's defaults;\n"
    "                    --temp 0 is greedy)\n"
    "  --seed S          (text: without it a random seed, printed)\n"
    "  --threads N --ctx N --lazy --memory-budget SIZE --experts-from-storage\n"
    "  --memory-budget SIZE  what the whole process may be charged (1GiB):\n"
    "                    dense weights resident, experts from storage through\n"
    "                    a cache, the context chosen to fit (--stats: the "
    "plan)\n"
    "  --kv-type T       the KV cache's element type (f16, q8_0, f32; "
    "default:\n"
    "                    the compiled one)\n"
    "  --shared-mapping  weights in the file's page-cache pages (loads in a\n"
    "                    quarter second) instead of a private copy in 2 MiB\n"
    "                    huge pages (faster prefill; the copy takes 1-5 s for\n"
    "                    the 4b shape)\n"
    "  --logits FILE     raw float32 logits: every position (--tokens), the\n"
    "                    last one (text)\n"
    "  --logits-last N   (--tokens) only the last N positions' logits (the\n"
    "                    prompt before them is evaluated on its own first)\n"
    "  --ids-out FILE    (text) every id of the context at the end\n"
    "  --token-by-token  (--tokens) evaluate the prompt one token at a time\n"
    "  --stats           expert cache and sparsity counters\n"
    "  --quiet           no timing line on stderr\n";

int fail(const std::string &m) {
  std::fprintf(stderr, "stc-run: %s\n", m.c_str());
  return 1;
}

// Ctrl-C stops the reply being generated, not the program.
std::atomic<bool> interrupted{false};
void onInterrupt(int) { interrupted = true; }

int printPiece(const char *piece, size_t len, void *) {
  std::fwrite(piece, 1, len, stdout);
  std::fflush(stdout);
  return interrupted.exchange(false) ? 1 : 0;
}

bool writeFloats(const char *path, const float *data, size_t n,
                 std::string &error) {
  std::string tmp = std::string(path) + ".tmp";
  FILE *f = std::fopen(tmp.c_str(), "wb");
  bool written = f && std::fwrite(data, 4, n, f) == n;
  if (f && std::fclose(f) != 0)
    written = false;
  if (!written || std::rename(tmp.c_str(), path) != 0) {
    std::remove(tmp.c_str());
    error = std::string(path) + ": cannot write: " + std::strerror(errno);
    return false;
  }
  return true;
}

struct Options {
  std::string path;
  std::vector<int32_t> tokens;
  bool haveTokens = false;
  std::string prompt;
  bool havePrompt = false, chat = false;
  std::string chatTemplate; // "chatml" or a file: --chat-template
  std::string jsonSchema;   // a file: --json-schema
  std::string system;
  int n = -2; // -2: the mode's default
  stc::tools::LoadFlags load;
  int topK = -1;
  float temp = -1, topP = -1;
  bool haveSeed = false;
  unsigned long long seed = 0;
  bool tokenByToken = false, stats = false;
  int logitsLast = 0; // --logits-last: only the last N positions' logits
  bool quiet = false;
  const char *logitsPath = nullptr, *idsPath = nullptr;
};

bool readFile(const char *path, std::string &out, std::string &error) {
  FILE *f = std::fopen(path, "rb");
  if (!f) {
    error = std::string(path) + ": cannot open: " + std::strerror(errno);
    return false;
  }
  char buf[65536];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0)
    out.append(buf, got);
  std::fclose(f);
  return true;
}

// Returns -1 when parsed, else the exit code.
int parse(int argc, char **argv, Options &o) {
  if (argc >= 2 &&
      (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  o.path = argv[1];
  struct stat st;
  if (::stat(o.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    o.path += "/model.stcm";
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    bool *flag = a == "--token-by-token"         ? &o.tokenByToken
                 : a == "--lazy"                 ? &o.load.lazy
                 : a == "--stats"                ? &o.stats
                 : a == "--experts-from-storage" ? &o.load.fromStorage
                 : a == "--shared-mapping"       ? &o.load.sharedMapping
                 : a == "--chat"                 ? &o.chat
                 : a == "--quiet"                ? &o.quiet
                                                 : nullptr;
    if (flag) {
      *flag = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    static const char *const kValued[] = {
        "--tokens",        "--prompt",     "--prompt-file",   "--system",
        "--chat-template", "-n",           "--logits",        "--ids-out",
        "--threads",       "--ctx",        "--memory-budget", "--temp",
        "--top-k",         "--top-p",      "--seed",          "--kv-type",
        "--logits-last",   "--json-schema"};
    if (std::find(std::begin(kValued), std::end(kValued), a) ==
        std::end(kValued))
      return fail("unknown option '" + a + "' (see --help)");
    if (i + 1 >= argc)
      return fail("option '" + a + "' needs a value (see --help)");
    const char *v = argv[++i];
    std::string error;
    if (a == "--tokens") {
      std::vector<int64_t> ids;
      std::string bad;
      if (!stc::rt::parseTokenList(v, ids, bad))
        return fail("--tokens: expected comma-separated token ids, got '" +
                    std::string(v) + "'");
      for (int64_t id : ids) {
        if (id < INT32_MIN || id > INT32_MAX)
          return fail("--tokens: " + std::to_string(id) + " is not a token id");
        o.tokens.push_back(static_cast<int32_t>(id));
      }
      o.haveTokens = true;
    } else if (a == "--prompt") {
      o.prompt = v;
      o.havePrompt = true;
    } else if (a == "--prompt-file") {
      if (!readFile(v, o.prompt, error))
        return fail("--prompt-file: " + error);
      o.havePrompt = true;
    } else if (a == "--system") {
      o.system = v;
    } else if (a == "--chat-template") {
      o.chatTemplate = v;
    } else if (a == "--json-schema") {
      o.jsonSchema = v;
    } else if (a == "-n") {
      o.n = std::atoi(v);
    } else if (a == "--logits") {
      o.logitsPath = v;
    } else if (a == "--logits-last") {
      o.logitsLast = std::atoi(v);
      if (o.logitsLast < 1)
        return fail("--logits-last expects a positive count, got '" +
                    std::string(v) + "'");
    } else if (a == "--ids-out") {
      o.idsPath = v;
    } else if (a == "--threads") {
      o.load.threads = std::atoi(v);
    } else if (a == "--ctx") {
      o.load.ctx = std::atoi(v);
    } else if (a == "--memory-budget") {
      if (!stc::rt::parseByteSize(v, o.load.budget))
        return fail("--memory-budget expects a size such as 1GiB, got '" +
                    std::string(v) + "'");
    } else if (a == "--kv-type") {
      if (!stc::tools::parseKvTypeFlag(v, o.load.kvType))
        return fail("--kv-type expects f16, q8_0 or f32, got '" +
                    std::string(v) + "'");
    } else if (a == "--temp") {
      o.temp = std::strtof(v, nullptr);
    } else if (a == "--top-k") {
      o.topK = std::atoi(v);
    } else if (a == "--top-p") {
      o.topP = std::strtof(v, nullptr);
    } else if (a == "--seed") {
      o.seed = std::strtoull(v, nullptr, 10);
      o.haveSeed = true;
    }
  }
  if (o.haveTokens + o.havePrompt + o.chat != 1)
    return fail("give one of --prompt, --prompt-file, --chat or --tokens "
                "(see --help)");
  return -1;
}

void printStats(stc_model *m, const Options &o) {
  if (!o.stats)
    return;
  if (*stc_memory_plan(m))
    std::fprintf(stderr, "%s\n", stc_memory_plan(m));
  uint64_t slots, loads, bytes;
  stc_expert_cache_stats(m, &slots, &loads, &bytes);
  const uint64_t tokens = stc_tokens_evaluated(m);
  std::fprintf(stderr,
               "expert cache: %llu slots, %llu experts read (%llu ahead of "
               "use), %.1f MiB in %.3f s; %.2f experts read per token over "
               "%llu tokens\n",
               static_cast<unsigned long long>(slots),
               static_cast<unsigned long long>(loads),
               static_cast<unsigned long long>(stc_expert_reads_ahead(m)),
               bytes / 1048576.0, stc_expert_read_seconds(m),
               tokens ? static_cast<double>(loads) / tokens : 0.0,
               static_cast<unsigned long long>(tokens));
  uint64_t guessed, guessUsed, guessDropped;
  stc_expert_guess_stats(m, &guessed, &guessUsed, &guessDropped);
  if (guessed + guessDropped > 0)
    std::fprintf(stderr,
                 "next-layer guesses: %llu read, %llu of them routed to; %llu "
                 "dropped before a read\n",
                 static_cast<unsigned long long>(guessed),
                 static_cast<unsigned long long>(guessUsed),
                 static_cast<unsigned long long>(guessDropped));
  double dead = 0, skipped = 0;
  if (stc_sparsity_stats(m, &dead, &skipped))
    std::fprintf(stderr,
                 "sparse ReGLU: %.1f%% of decoded expert neurons dead, "
                 "%.3f MiB of up/down rows skipped per decoded token\n",
                 dead * 100, skipped / 1048576.0);
}

void printTiming(const Options &o, int prompt, double promptSeconds,
                 int generated, double genSeconds) {
  if (o.quiet)
    return;
  std::fprintf(stderr,
               "stc-run: prompt %d tokens (%.1f tokens/s), generated %d "
               "tokens (%.1f tokens/s)\n",
               prompt, promptSeconds > 0 ? prompt / promptSeconds : 0.0,
               generated, genSeconds > 0 ? generated / genSeconds : 0.0);
}

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Token ids in and out, as before the tokenizer: greedy unless asked.
int runTokens(stc_model *m, const Options &o) {
  const int V = stc_vocab_size(m);
  const int n = o.n == -2 ? 16 : o.n;
  std::vector<float> logits;
  // Evaluates `count` tokens; with --logits keeps their logits (those of
  // positions past `from`: --logits-last).
  int position = 0;
  const int total = static_cast<int>(o.tokens.size()) + std::max(n - 1, 0);
  const int from = o.logitsLast > 0 ? std::max(0, total - o.logitsLast) : 0;
  auto evalOne = [&](const int32_t *t, int count) {
    const bool keep = o.logitsPath && position + count > from;
    size_t at = logits.size();
    if (keep)
      logits.resize(at + static_cast<size_t>(count) * V);
    position += count;
    if (stc_eval(m, t, count, keep ? logits.data() + at : nullptr) != 0)
      return false;
    if (keep && position - count < from) // drop the rows before `from`
      logits.erase(logits.begin() + at,
                   logits.begin() + at +
                       static_cast<size_t>(from - (position - count)) * V);
    return true;
  };
  bool ok = true;
  const double t0 = now();
  if (o.tokenByToken) {
    for (size_t i = 0; ok && i < o.tokens.size(); ++i)
      ok = evalOne(&o.tokens[i], 1);
  } else {
    // With --logits-last the prompt before the kept positions is its own
    // evaluation, so the head runs only on the rows kept.
    const int T = static_cast<int>(o.tokens.size());
    const int head = o.logitsPath && from > 0 ? std::min(from, T - 1) : 0;
    ok = (head == 0 || evalOne(o.tokens.data(), head)) &&
         evalOne(o.tokens.data() + head, T - head);
  }
  const double t1 = now();
  stc_sampler *sampler =
      stc_sampler_new(o.temp < 0 ? 0 : o.temp, o.topK < 0 ? 0 : o.topK,
                      o.topP < 0 ? 1 : o.topP, o.seed);
  int generated = 0;
  for (int i = 0; ok && i < n; ++i) {
    int32_t next = stc_sample(sampler, stc_logits(m), V);
    std::printf(i ? " %d" : "%d", next);
    std::fflush(stdout);
    ++generated;
    if (i + 1 < n)
      ok = evalOne(&next, 1);
  }
  if (n > 0)
    std::printf("\n");
  stc_sampler_free(sampler);
  printStats(m, o);
  if (!ok)
    return fail(stc_last_error(m));
  printTiming(o, static_cast<int>(o.tokens.size()), t1 - t0, generated,
              now() - t1);
  std::string error;
  if (o.logitsPath &&
      !writeFloats(o.logitsPath, logits.data(), logits.size(), error))
    return fail(error);
  return 0;
}

// --json-schema's grammar (made once, for every sampler of the run).
stc_grammar *schemaGrammar = nullptr;

stc_sampler *textSampler(stc_model *m, const Options &o) {
  float temp, topP;
  int topK;
  stc_default_sampling(m, &temp, &topK, &topP);
  if (o.temp >= 0)
    temp = o.temp;
  if (o.topK >= 0)
    topK = o.topK;
  if (o.topP >= 0)
    topP = o.topP;
  unsigned long long seed = o.seed;
  if (!o.haveSeed && temp > 0) { // greedy needs none
    seed = std::random_device{}();
    std::fprintf(stderr, "stc-run: seed %llu\n", seed);
  }
  stc_sampler *s = stc_sampler_new(temp, topK, topP, seed);
  if (schemaGrammar)
    stc_sampler_set_grammar(s, schemaGrammar);
  return s;
}

// One stc_generate into the context; keeps the ids for --ids-out.
struct Session {
  stc_model *m;
  const Options &o;
  stc_sampler *sampler;
  std::vector<int32_t> context, lastGenerated;
  int promptTokens = 0, generatedTokens = 0;
  double promptSeconds = 0, generateSeconds = 0;

  int generate(const std::vector<int32_t> &prompt) {
    const int maxContext = stc_max_context(m);
    const int limit = o.n == -2 ? -1 : o.n;
    std::vector<int32_t> out(limit >= 0 ? limit : maxContext);
    int reason = stc_generate(m, prompt.data(), static_cast<int>(prompt.size()),
                              limit, sampler, printPiece, nullptr, out.data(),
                              static_cast<int>(out.size()));
    stc_generation_stats st;
    stc_last_generation_stats(m, &st);
    if (reason != STC_STOP_ERROR && st.prompt_tokens == 0 && !prompt.empty())
      return reason; // the prompt did not fit: nothing was added
    context.insert(context.end(), prompt.begin(), prompt.end());
    lastGenerated.assign(out.begin(),
                         out.begin() +
                             std::min<size_t>(st.generated_tokens, out.size()));
    context.insert(context.end(), lastGenerated.begin(), lastGenerated.end());
    promptTokens += st.prompt_tokens;
    generatedTokens += st.generated_tokens;
    promptSeconds += st.prompt_seconds;
    generateSeconds += st.generate_seconds;
    return reason;
  }

  int finish() {
    printStats(m, o);
    printTiming(o, promptTokens, promptSeconds, generatedTokens,
                generateSeconds);
    if (!o.quiet)
      std::fprintf(stderr, "stc-run: context %d tokens\n",
                   stc_context_length(m));
    std::string error;
    if (o.logitsPath &&
        !writeFloats(o.logitsPath, stc_logits(m), stc_vocab_size(m), error))
      return fail(error);
    if (o.idsPath) {
      FILE *f = std::fopen(o.idsPath, "w");
      if (!f)
        return fail(std::string(o.idsPath) + ": cannot write");
      for (size_t i = 0; i < context.size(); ++i)
        std::fprintf(f, i ? ",%d" : "%d", context[i]);
      std::fprintf(f, "\n");
      std::fclose(f);
    }
    return 0;
  }
};

int runPrompt(stc_model *m, const Options &o) {
  if (o.prompt.empty())
    return fail("the prompt is empty");
  std::vector<int32_t> ids;
  if (!stc::tools::appendTokens(m, o.prompt, true, ids))
    return fail(std::string("--prompt: ") + stc_last_error(m));
  if (static_cast<int>(ids.size()) > stc_max_context(m))
    return fail("the prompt is " + std::to_string(ids.size()) +
                " tokens, longer than the context of " +
                std::to_string(stc_max_context(m)) + " (--ctx)");
  Session s{m, o, textSampler(m, o)};
  int reason = s.generate(ids);
  std::printf("\n");
  std::fflush(stdout);
  stc_sampler_free(s.sampler);
  if (reason == STC_STOP_ERROR)
    return fail(stc_last_error(m));
  if (reason == STC_STOP_CONTEXT_FULL)
    std::fprintf(stderr, "stc-run: %s\n", stc_last_error(m));
  return s.finish();
}

// A JSON string literal of UTF-8 text.
std::string jsonString(const std::string &text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// The ids of the conversation so far through the model's chat template (with
// the assistant's turn opened), or false with stc_last_error.
bool chatIds(stc_model *m, const std::string &messages,
             std::vector<int32_t> &ids) {
  const std::string json = "[" + messages + "]";
  const int flags = STC_CHAT_ADD_GENERATION_PROMPT;
  int n = stc_chat_tokens(m, json.c_str(), nullptr, flags, nullptr, 0);
  if (n < 0)
    return false;
  ids.resize(n);
  return stc_chat_tokens(m, json.c_str(), nullptr, flags, ids.data(), n) >= 0;
}

int runChat(stc_model *m, const Options &o) {
  // The conversation as the template's messages (JSON objects, comma
  // separated); each turn renders all of it and evaluates only what the
  // context does not hold yet.
  std::string messages;
  auto add = [&](const char *role, const std::string &text) {
    messages += std::string(messages.empty() ? "" : ",") + "{\"role\":\"" +
                role + "\",\"content\":" + jsonString(text) + "}";
  };
  if (!o.system.empty())
    add("system", o.system);
  std::vector<int32_t> ids;
  if (!chatIds(m,
               messages + (messages.empty() ? "" : ",") +
                   "{\"role\":\"user\",\"content\":\"\"}",
               ids))
    return fail(std::string("--chat: ") + stc_last_error(m));
  const bool tty = ::isatty(0);
  Session s{m, o, textSampler(m, o)};
  std::string line;
  while (true) {
    if (tty)
      std::fputs("> ", stdout), std::fflush(stdout);
    interrupted = false;
    if (!std::getline(std::cin, line)) {
      if (tty)
        std::fputs("\n", stdout); // end the "> " line
      break;
    }
    std::string before = messages;
    add("user", line);
    if (!chatIds(m, messages, ids))
      return fail(std::string("--chat: ") + stc_last_error(m));
    // The context keeps the longest prefix it shares with the new prompt.
    size_t keep = std::mismatch(s.context.begin(), s.context.end(), ids.begin(),
                                ids.end())
                      .first -
                  s.context.begin();
    keep = std::min(keep, ids.size() - 1);
    if (keep < s.context.size()) {
      if (stc_rewind(m, static_cast<int>(keep)) != 0) {
        stc_reset(m);
        keep = 0;
      }
      s.context.resize(keep);
    }
    const int reason =
        s.generate(std::vector<int32_t>(ids.begin() + keep, ids.end()));
    std::printf("\n");
    std::fflush(stdout);
    if (reason == STC_STOP_ERROR)
      return fail(stc_last_error(m));
    if (reason == STC_STOP_CONTEXT_FULL) {
      std::fprintf(stderr,
                   "stc-run: %s: the conversation cannot go on; start again, "
                   "or give a larger --ctx\n",
                   stc_last_error(m));
      messages = before;
      break;
    }
    // However the reply ended (an eos, -n, Ctrl-C), it is the assistant's
    // turn of the conversation.
    std::string reply(s.lastGenerated.size() * 16 + 1, '\0');
    const int n = stc_detokenize(m, s.lastGenerated.data(),
                                 static_cast<int>(s.lastGenerated.size()),
                                 reply.data(), reply.size());
    reply.resize(std::max(0, std::min<int>(n, reply.size() - 1)));
    add("assistant", reply);
  }
  stc_sampler_free(s.sampler);
  return s.finish();
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  if (int rc = parse(argc, argv, o); rc >= 0)
    return rc;
  char err[1024];
  const stc_options options = o.load.options();
  stc_model *m = stc_load_sized(o.path.c_str(), &options, sizeof(options), err,
                                sizeof(err));
  if (!m)
    return fail(err);
  if (!o.haveTokens && !stc_has_tokenizer(m)) {
    stc_free(m);
    return fail(o.path + ": compiled without a tokenizer: use --tokens");
  }
  if (!o.chatTemplate.empty()) {
    std::string source = "chatml", error;
    if (o.chatTemplate != "chatml" &&
        !readFile(o.chatTemplate.c_str(), source, error))
      return fail("--chat-template: " + error);
    if (stc_set_chat_template(m, source.c_str()) != 0) {
      const std::string why = stc_last_error(m);
      stc_free(m);
      return fail(o.chatTemplate + ": " + why);
    }
  }
  if (!o.jsonSchema.empty()) {
    std::string schema, error;
    if (o.haveTokens)
      return fail("--json-schema holds text: give --prompt or --chat");
    if (!readFile(o.jsonSchema.c_str(), schema, error))
      return fail("--json-schema: " + error);
    const auto t0 = std::chrono::steady_clock::now();
    schemaGrammar = stc_grammar_from_json_schema(m, schema.c_str());
    if (!schemaGrammar) {
      const std::string why = stc_last_error(m);
      stc_free(m);
      return fail(o.jsonSchema + ": " + why);
    }
    if (!o.quiet)
      std::fprintf(stderr, "stc-run: %s compiled to a grammar in %.2f ms\n",
                   o.jsonSchema.c_str(),
                   std::chrono::duration<double, std::milli>(
                       std::chrono::steady_clock::now() - t0)
                       .count());
  }
  if (!o.haveTokens) {
    struct sigaction sa = {};
    sa.sa_handler = onInterrupt;
    sigaction(SIGINT, &sa, nullptr); // no SA_RESTART: Ctrl-C at "> " ends
  }
  int rc = o.haveTokens ? runTokens(m, o)
           : o.chat     ? runChat(m, o)
                        : runPrompt(m, o);
  stc_grammar_free(schemaGrammar);
  stc_free(m);
  return rc;
}
