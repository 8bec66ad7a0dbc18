#!/usr/bin/env python3
"""Concurrent streaming clients against an OpenAI-compatible server: stc-serve
against llama-server on the same GGUF, alternating, at each client count.

Each client sends its requests one after another (POST /v1/completions, streamed,
its own distinct prompts, greedy, the eos ids banned so every answer runs to
max_tokens); all clients start together. Reported per run: the aggregate
generated tok/s (all completion tokens over the wall time of the run), the
median time to first token (request sent -> first streamed text), and for
stc-serve the distinct experts its steps read per step (/metrics).

  usage: tools/bench-serve.py OUT_DIR MODEL.gguf [--clients 1,4,8] [--requests 8]
         [--max-tokens 64] [--threads 2] [--ctx 1024] [--rounds 1]
         [--baseline OLD_OUT_DIR]
  --baseline: against another build's stc-serve (one that may predate
  --parallel: started without it) instead of llama-server.
  --schema F: stc-serve alone, chat completions with response_format
  json_schema F against the same requests unconstrained (eos not banned in
  the constrained runs: the grammar ends the answer when the JSON is whole;
  tools/bench-serve-schema.json has a few fields, then a body of at least
  2000 characters, so that answers run to max_tokens); each run also gives
  the median decode rate of a request (its tokens after the first over the
  time after the first).
  env:   LLAMA_BIN (folder with llama-server; default what
         ../shared/anchors/get-llama-cpp.sh builds)

Both servers get N slots of --ctx tokens each (stc-serve --parallel N --ctx C,
llama-server -np N -c N*C); prompt lengths are printed."""
import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

TOPICS = ["rivers", "mountains", "the sea", "numbers", "cities", "forests",
          "machines", "music", "stars", "rain", "bridges", "gardens"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, seconds=300):
    t0 = time.time()
    while time.time() - t0 < seconds:
        if proc.poll() is not None:
            sys.exit("the server exited: %s" % proc.stderr.read()[-2000:])
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("the server did not come up")


def prompt_for(client, request):
    t = TOPICS[(client * 7 + request) % len(TOPICS)]
    return ("Client %d asks question %d: tell me everything about %s, "
            "slowly and in detail." % (client, request, t))


def one_request(port, body):
    """(seconds to the first text, completion tokens, seconds to the end) of
    one streamed request (a chat one when the body has messages)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.time()
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    c.request("POST", path, body=json.dumps(body),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    first, tokens = None, 0
    while True:
        line = r.readline()
        if not line:
            break
        line = line.decode("utf-8", "replace").strip()
        if not line.startswith("data: "):
            continue
        if line == "data: [DONE]":
            break
        ev = json.loads(line[6:])
        ch = ev.get("choices") or []
        if ch and (ch[0].get("text") or (ch[0].get("delta") or {}).get("content")):
            if first is None:
                first = time.time() - t0
            tokens += 1  # one event per token, both servers
        if ev.get("usage"):
            tokens = ev["usage"]["completion_tokens"]
    c.close()
    return first, tokens, time.time() - t0


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    m = re.search(r"^%s (\S+)$" % name, text, re.M)
    return float(m.group(1)) if m else None


def run(kind, port, clients, requests, max_tokens, eos, schema=None):
    firsts, counts, rates = [], [], []
    lock = threading.Lock()

    def client(k):
        for i in range(requests):
            body = {"max_tokens": max_tokens, "temperature": 0, "stream": True,
                    "stream_options": {"include_usage": True}}
            if kind in ("free", "schema"):
                body["messages"] = [{"role": "user", "content": prompt_for(k, i)}]
            else:
                body["prompt"] = prompt_for(k, i)
            if kind == "schema":
                body["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "answer", "strict": True, "schema": schema}}
            else:
                body["logit_bias"] = {str(e): -100 for e in eos}
            f, n, end = one_request(port, body)
            with lock:
                firsts.append(f)
                counts.append(n)
                if f is not None and n > 1 and end > f:
                    rates.append((n - 1) / (end - f))

    steps0 = experts0 = None
    if kind != "llama":
        steps0, experts0 = (metric(port, "stc_steps_total"),
                            metric(port, "stc_experts_routed_total"))
    t0 = time.time()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    out = {"aggregate_tok_s": sum(counts) / wall,
           "median_ttft_s": statistics.median(f for f in firsts if f is not None),
           "tokens": sum(counts), "requests": len(counts),
           "median_decode_tok_s": statistics.median(rates) if rates else 0.0}
    if kind != "llama":
        steps = metric(port, "stc_steps_total") - steps0
        out["experts_per_step"] = (metric(port, "stc_experts_routed_total")
                                   - experts0) / max(steps, 1)
        out["steps"] = steps
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("gguf")
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--baseline")
    ap.add_argument("--schema")
    a = ap.parse_args()
    schema = json.load(open(a.schema)) if a.schema else None
    llama = os.path.join(os.environ.get(
        "LLAMA_BIN", os.path.expanduser("~/.cache/stc-anchors/llama.cpp/build/bin")),
        "llama-server")
    # The eos ids and the prompts' lengths, from the compiled model's tokenizer.
    stc_bin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                           "bin", "stc")
    eos = []
    for name in ("<|endoftext|>", "<|im_end|>"):
        p = subprocess.run([stc_bin, "tokenize", a.out, "--text", name],
                           capture_output=True, text=True)
        eos += [int(x) for x in re.findall(r"\d+", p.stdout)][:1]
    lens = []
    for k in range(2):
        p = subprocess.run([stc_bin, "tokenize", a.out, "--text", prompt_for(k, 0)],
                           capture_output=True, text=True)
        lens.append(len(re.findall(r"\d+", p.stdout)))
    print("prompts of about %s tokens, max_tokens %d, %d requests per client, eos banned %s"
          % (lens, a.max_tokens, a.requests, eos), flush=True)
    for rnd in range(a.rounds):
        for n in [int(x) for x in a.clients.split(",")]:
            order = ["stc", "llama"] if (rnd + n) % 2 == 0 else ["llama", "stc"]
            if schema is not None:
                order = ["free", "schema"] if (rnd + n) % 2 == 0 else ["schema", "free"]
            other = "baseline stc-serve" if a.baseline else "llama-server"
            res = {}
            for kind in order:
                port = free_port()
                if kind != "llama":
                    cmd = [os.path.join(a.out, "stc-serve"), a.out, "--port", str(port),
                           "--threads", str(a.threads), "--parallel", str(n),
                           "--ctx", str(a.ctx), "--quiet", "--queue", "64"]
                elif a.baseline:
                    cmd = [os.path.join(a.baseline, "stc-serve"), a.baseline, "--port",
                           str(port), "--threads", str(a.threads), "--ctx", str(a.ctx),
                           "--quiet", "--queue", "64"]
                else:
                    cmd = [llama, "-m", a.gguf, "--port", str(port), "-t", str(a.threads),
                           "-np", str(n), "-c", str(n * a.ctx), "--log-disable"]
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
                try:
                    wait_ready(port, proc)
                    res[kind] = run(kind, port, n, a.requests, a.max_tokens, eos, schema)
                finally:
                    proc.terminate()
                    proc.wait(timeout=60)
            if schema is not None:
                f, c = res["free"], res["schema"]
                print("%d clients: unconstrained %.1f tok/s (%d tokens), a request's decode "
                      "%.1f tok/s | json_schema %.1f tok/s (%d tokens), a request's decode "
                      "%.1f tok/s | decode ratio %.2f"
                      % (n, f["aggregate_tok_s"], f["tokens"], f["median_decode_tok_s"],
                         c["aggregate_tok_s"], c["tokens"], c["median_decode_tok_s"],
                         c["median_decode_tok_s"] / f["median_decode_tok_s"]), flush=True)
                continue
            s, l = res["stc"], res["llama"]
            print("%d clients: stc-serve %.1f tok/s, median TTFT %.2f s, %.0f experts/step "
                  "(%d steps) | %s %.1f tok/s, median TTFT %.2f s | ratio %.2f"
                  % (n, s["aggregate_tok_s"], s["median_ttft_s"], s["experts_per_step"],
                     s["steps"], other, l["aggregate_tok_s"], l["median_ttft_s"],
                     s["aggregate_tok_s"] / l["aggregate_tok_s"]), flush=True)


if __name__ == "__main__":
    main()
