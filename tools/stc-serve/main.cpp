// stc-serve: an OpenAI-compatible HTTP server for one compiled model
// (POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
// GET /health, GET /metrics). Linked per model by `stc compile` against its
// libstc_model.a, like stc-run; uses only the C API.
#include "Engine.h"
#include "OpenAi.h"

#include "ByteSize.h"
#include "CApiTools.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <pthread.h>
#include <string>
#include <sys/stat.h>

namespace {

using nlohmann::json;
using stc::serve::ApiError;
using stc::serve::Endpoint;
using stc::serve::Engine;
using stc::serve::Job;

const char *const kUsage =
    "usage: stc-serve <out-dir | model.stcm> [options]\n"
    "An OpenAI-compatible HTTP server for one model: POST "
    "/v1/chat/completions,\n"
    "POST /v1/completions, GET /v1/models, GET /health, GET /metrics.\n"
    "  --host ADDR        address to listen on (default 127.0.0.1; 0.0.0.0\n"
    "                     serves every interface)\n"
    "  --port N           (default 8080; 0 picks a free port, printed)\n"
    "  --model-name NAME  the id /v1/models reports (default: the folder's "
    "name)\n"
    "  --threads N --ctx N --lazy --memory-budget SIZE --experts-from-storage\n"
    "  --memory-budget SIZE  what the whole process may be charged (1GiB):\n"
    "                    dense weights resident, experts from storage through\n"
    "                    a cache, the context chosen to fit (--stats: the "
    "plan)\n"
    "  --kv-type T        the KV cache's element type (f16, q8_0, f32)\n"
    "  --shared-mapping   as for stc-run\n"
    "  --chat-template T  the chat template: chatml, or a file of Jinja text\n"
    "                     (default: the one the model was compiled with)\n"
    "  --parallel N       slots: requests generated at once, in batched\n"
    "                     steps (continuous batching), each slot with its own\n"
    "                     KV cache of the whole context and its prompt cache\n"
    "                     (default 4; under --memory-budget the plan's "
    "choice,\n"
    "                     up to 4 sequences that each get 4096 positions, the\n"
    "                     context shared out: --stats of stc-run shows it)\n"
    "  --queue N          requests that may wait for a slot (default 16;\n"
    "                     more get 503)\n"
    "  --max-body SIZE    largest request body (default 4MiB; larger get 413)\n"
    "  --quiet            no line per request on stderr\n";

int fail(const std::string &m) {
  std::fprintf(stderr, "stc-serve: %s\n", m.c_str());
  return 1;
}

struct Options {
  std::string path, host = "127.0.0.1", modelName;
  int port = 8080, queue = 16, parallel = 0; // 0: the default
  std::string chatTemplate;                  // "", "chatml" or a file
  bool quiet = false;
  stc::tools::LoadFlags load;
  uint64_t maxBody = 4 << 20;
};

bool parseInt(const char *v, int lo, int hi, int &out) {
  char *end;
  errno = 0;
  const long n = std::strtol(v, &end, 10);
  if (errno || end == v || *end || n < lo || n > hi)
    return false;
  out = static_cast<int>(n);
  return true;
}

// Returns -1 when parsed, else the exit code.
int parse(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  if (argc < 2 || argv[1][0] == '-') {
    std::fputs(kUsage, stderr);
    return 2;
  }
  o.path = argv[1];
  struct stat st;
  std::string folder = o.path;
  if (::stat(o.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    o.path += "/model.stcm";
  } else {
    const size_t slash = folder.rfind('/');
    folder = slash == std::string::npos ? "." : folder.substr(0, slash);
  }
  while (folder.size() > 1 && folder.back() == '/')
    folder.pop_back();
  char real[4096];
  if (::realpath(folder.c_str(), real))
    folder = real;
  o.modelName = folder.substr(folder.rfind('/') + 1);
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    bool *flag = a == "--lazy"                   ? &o.load.lazy
                 : a == "--experts-from-storage" ? &o.load.fromStorage
                 : a == "--shared-mapping"       ? &o.load.sharedMapping
                 : a == "--quiet"                ? &o.quiet
                                                 : nullptr;
    if (flag) {
      *flag = true;
      continue;
    }
    static const char *const kValued[] = {
        "--host",          "--port",    "--model-name", "--threads",
        "--ctx",           "--queue",   "--max-body",   "--memory-budget",
        "--chat-template", "--kv-type", "--parallel"};
    if (std::find(std::begin(kValued), std::end(kValued), a) ==
        std::end(kValued))
      return fail("unknown option '" + a + "' (see --help)");
    if (i + 1 >= argc)
      return fail("option '" + a + "' needs a value (see --help)");
    const char *v = argv[++i];
    bool ok = true;
    if (a == "--host")
      o.host = v;
    else if (a == "--port")
      ok = parseInt(v, 0, 65535, o.port);
    else if (a == "--model-name")
      o.modelName = v;
    else if (a == "--threads")
      ok = parseInt(v, 0, 4096, o.load.threads);
    else if (a == "--ctx")
      ok = parseInt(v, 0, 1 << 24, o.load.ctx);
    else if (a == "--queue")
      ok = parseInt(v, 1, 4096, o.queue);
    else if (a == "--parallel")
      ok = parseInt(v, 1, 256, o.parallel);
    else if (a == "--max-body")
      ok = stc::rt::parseByteSize(v, o.maxBody) && o.maxBody > 0;
    else if (a == "--memory-budget")
      ok = stc::rt::parseByteSize(v, o.load.budget);
    else if (a == "--kv-type")
      ok = stc::tools::parseKvTypeFlag(v, o.load.kvType);
    else if (a == "--chat-template")
      o.chatTemplate = v;
    if (!ok)
      return fail("option '" + a + "': bad value '" + v + "' (see --help)");
  }
  return -1;
}

void sendError(httplib::Response &res, const ApiError &e) {
  res.status = e.status;
  res.set_content(stc::serve::errorBody(e), "application/json");
}

std::string newId(Endpoint endpoint) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t start = static_cast<uint64_t>(std::time(nullptr));
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s-%llx%06llx",
                endpoint == Endpoint::Chat ? "chatcmpl" : "cmpl",
                static_cast<unsigned long long>(start),
                static_cast<unsigned long long>(++counter));
  return buf;
}

// A float as the decimal it was written as (0.6, not 0.60000002).
double rounded(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.7g", v);
  return std::strtod(buf, nullptr);
}

class Server {
public:
  Server(const Options &o, Engine &engine) : o_(o), engine_(engine) {}

  void routes(httplib::Server &http) {
    http.Post("/v1/chat/completions",
              [this](const httplib::Request &req, httplib::Response &res) {
                generate(Endpoint::Chat, req, res);
              });
    http.Post("/v1/completions",
              [this](const httplib::Request &req, httplib::Response &res) {
                generate(Endpoint::Completion, req, res);
              });
    http.Get("/v1/models",
             [this](const httplib::Request &, httplib::Response &res) {
               res.set_content(models(), "application/json");
             });
    http.Get("/health",
             [this](const httplib::Request &, httplib::Response &res) {
               res.set_content(health(), "application/json");
             });
    http.Get("/metrics", [this](const httplib::Request &,
                                httplib::Response &res) {
      res.set_content(engine_.metrics().render(), "text/plain; version=0.0.4");
    });
    // Every error httplib answers by itself (404, 405, 413, 400 for a bad
    // request line) gets an OpenAI error object too.
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request &req, httplib::Response &res) {
          if (!res.body.empty())
            return httplib::Server::HandlerResponse::Unhandled;
          ApiError e;
          e.status = res.status;
          e.message = res.status == 404
                          ? "no such endpoint: " + req.method + " " + req.path
                      : res.status == 413
                          ? "the request body is larger than the "
                            "server takes (stc-serve --max-body)"
                          : "the request was refused (HTTP " +
                                std::to_string(res.status) + ")";
          sendError(res, e);
          return httplib::Server::HandlerResponse::Handled;
        }));
    http.set_exception_handler([](const httplib::Request &,
                                  httplib::Response &res,
                                  std::exception_ptr ep) {
      ApiError e;
      e.status = 500;
      e.type = "server_error";
      e.message = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception &x) {
        e.message = std::string("internal error: ") + x.what();
      } catch (...) {
      }
      sendError(res, e);
    });
  }

private:
  std::string models() const {
    stc_model *m = engine_.model();
    float temperature, topP;
    int topK;
    stc_default_sampling(m, &temperature, &topK, &topP);
    json j = {{"object", "list"},
              {"data", json::array({{{"id", o_.modelName},
                                     {"object", "model"},
                                     {"created", created_},
                                     {"owned_by", "stc"},
                                     {"context_length", stc_max_context(m)},
                                     {"vocab_size", stc_vocab_size(m)},
                                     {"default_sampling",
                                      {{"temperature", rounded(temperature)},
                                       {"top_k", topK},
                                       {"top_p", rounded(topP)}}}}})}};
    return j.dump();
  }

  // The server is up; each slot's state and the ids its cache holds, and
  // the requests waiting for one.
  std::string health() {
    json slots = json::array();
    int busy = 0;
    const std::vector<stc::serve::SlotState> states = engine_.slotStates();
    for (size_t i = 0; i < states.size(); ++i) {
      slots.push_back({{"id", i},
                       {"state", states[i].state},
                       {"context_tokens", states[i].contextTokens}});
      busy += std::string(states[i].state) != "idle";
    }
    json j = {{"status", "ok"},
              {"slots_idle", static_cast<int>(states.size()) - busy},
              {"slots_busy", busy},
              {"requests_queued", engine_.queued()},
              {"slots", slots}};
    return j.dump();
  }

  void generate(Endpoint endpoint, const httplib::Request &req,
                httplib::Response &res) {
    stc::serve::Request r;
    ApiError e;
    ++engine_.metrics().requests;
    if (!stc::serve::parseRequest(endpoint, req.body, r, e)) {
      ++engine_.metrics().rejected;
      log(req, e.status, e.message);
      return sendError(res, e);
    }
    auto job = std::make_shared<Job>(
        std::move(r),
        stc::serve::PeerWatch::find(req.local_addr, req.local_port,
                                    req.remote_addr, req.remote_port));
    if (!engine_.submit(job, e)) {
      log(req, e.status, e.message);
      return sendError(res, e);
    }
    if (!job->waitStarted(e)) {
      if (e.message.empty()) // cancelled while queued: nobody reads this
        e.message = "cancelled";
      log(req, e.status, e.message);
      return sendError(res, e);
    }
    stc::serve::ResponseHead head{endpoint, newId(endpoint), o_.modelName,
                                  static_cast<long long>(std::time(nullptr))};
    if (!job->request.stream) {
      // The content (the calls come whole, at the end).
      std::string text;
      std::vector<stc::serve::Delta> pieces;
      bool done;
      do {
        done = job->take(pieces, std::chrono::milliseconds(1000));
        for (const stc::serve::Delta &d : pieces)
          if (!d.isCall)
            text += d.text;
      } while (!done);
      if (job->failed) {
        log(req, job->error.status, job->error.message);
        return sendError(res, job->error);
      }
      log(req, 200, job->finishReason);
      res.set_content(stc::serve::completionBody(head, text, job->finishReason,
                                                 job->usage, job->calls),
                      "application/json");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    const bool withUsage = job->request.includeUsage;
    auto sentRole = std::make_shared<bool>(false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [job, head, withUsage, sentRole](size_t, httplib::DataSink &sink) {
          auto send = [&](const std::string &event) {
            if (sink.write(event.data(), event.size()))
              return true;
            job->cancel(); // the client is gone
            return false;
          };
          if (!*sentRole && head.endpoint == Endpoint::Chat) {
            *sentRole = true;
            if (!send(stc::serve::roleEvent(head, withUsage)))
              return false;
          }
          std::vector<stc::serve::Delta> pieces;
          const bool done = job->take(pieces, std::chrono::milliseconds(1000));
          for (const stc::serve::Delta &d : pieces)
            if (d.isCall
                    ? !send(stc::serve::toolCallEvent(head, d.call, withUsage))
                    : !d.text.empty() &&
                          !send(stc::serve::textEvent(head, d.text, withUsage)))
              return false;
          if (!done)
            return true;
          if (job->failed) {
            send(stc::serve::errorEvent(job->error));
          } else if (job->finishReason != "cancelled") {
            if (!send(stc::serve::finishEvent(head, job->finishReason,
                                              withUsage)) ||
                (withUsage && !send(stc::serve::usageEvent(head, job->usage))))
              return false;
          }
          send(stc::serve::doneEvent());
          sink.done();
          return true;
        },
        [job](bool success) {
          if (!success)
            job->cancel();
        });
    log(req, 200, "streaming");
  }

  void log(const httplib::Request &req, int status, const std::string &what) {
    if (o_.quiet)
      return;
    std::fprintf(stderr, "stc-serve: %s %s %d %s\n", req.method.c_str(),
                 req.path.c_str(), status, what.c_str());
  }

  const Options &o_;
  Engine &engine_;
  const long long created_ = static_cast<long long>(std::time(nullptr));
};

} // namespace

int main(int argc, char **argv) {
  Options o;
  if (int rc = parse(argc, argv, o); rc >= 0)
    return rc;
  // SIGINT and SIGTERM are taken by one thread (below), which stops the
  // server; every other thread blocks them. A client gone mid-write is an
  // error return (EPIPE), not a signal.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  char err[1024];
  // Without a budget every slot's KV cache is reserved for the whole context
  // and touched as it fills; under one the plan chooses how many fit.
  o.load.sequences = o.parallel > 0 ? o.parallel : o.load.budget ? -1 : 4;
  const stc_options options = o.load.options();
  stc_model *m = stc_load_sized(o.path.c_str(), &options, sizeof(options), err,
                                sizeof(err));
  if (!m)
    return fail(err);
  if (!stc_has_tokenizer(m)) {
    stc_free(m);
    return fail(o.path +
                ": compiled without a tokenizer: stc-serve needs "
                "one (compile from a checkpoint with tokenizer files)");
  }
  if (!o.chatTemplate.empty()) {
    std::string source = "chatml";
    if (o.chatTemplate != "chatml") {
      std::FILE *f = std::fopen(o.chatTemplate.c_str(), "rb");
      if (!f) {
        stc_free(m);
        return fail("--chat-template: cannot read " + o.chatTemplate + ": " +
                    std::strerror(errno));
      }
      char buf[4096];
      source.clear();
      for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;)
        source.append(buf, n);
      std::fclose(f);
    }
    if (stc_set_chat_template(m, source.c_str()) != 0) {
      const std::string why = stc_last_error(m);
      stc_free(m);
      return fail(o.chatTemplate + ": " + why);
    }
  }
  // A chat template that cannot be used (a model compiled before stc checked
  // them) leaves chat refused with its reason; completions still work.
  stc_message probe = {"user", "hi"};
  if (stc_chat_format(m, &probe, 1, STC_CHAT_ADD_GENERATION_PROMPT, nullptr,
                      0) < 0)
    std::fprintf(stderr,
                 "stc-serve: %s; /v1/chat/completions is refused unless "
                 "--chat-template chatml or FILE\n",
                 stc_last_error(m));

  int rc = 0;
  {
    const int slots = std::min(o.load.sequences > 0 ? o.load.sequences : 256,
                               stc_max_sequences(m));
    Engine engine(m, slots, o.queue);
    Server server(o, engine);
    httplib::Server http;
    // Each running or waiting request holds a connection thread: enough for
    // the slots and the queue, plus a few for /health and /metrics while
    // they are full.
    const size_t threads = static_cast<size_t>(slots + o.queue) + 4;
    http.new_task_queue = [threads] {
      return new httplib::ThreadPool(threads);
    };
    http.set_payload_max_length(o.maxBody);
    http.set_keep_alive_max_count(1000);
    server.routes(http);
    int port = o.port;
    const bool bound = port == 0 ? (port = http.bind_to_any_port(o.host)) > 0
                                 : http.bind_to_port(o.host, port);
    std::string why;
    if (!engine.ready(why)) {
      rc = fail(why);
    } else if (!bound) {
      rc = fail("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                ": " + std::strerror(errno));
    } else {
      std::printf("stc-serve: listening on http://%s:%d (model '%s', %d "
                  "slots of %d tokens of context)\n",
                  o.host.c_str(), port, o.modelName.c_str(), slots,
                  stc_max_context(m));
      std::fflush(stdout);
      std::thread stopper([&] {
        int sig;
        sigwait(&signals, &sig);
        http.stop();
      });
      http.listen_after_bind();
      // Stopped by a signal, or listening failed: wake the signal thread.
      pthread_kill(stopper.native_handle(), SIGTERM);
      stopper.join();
    }
  }
  stc_free(m);
  return rc;
}
