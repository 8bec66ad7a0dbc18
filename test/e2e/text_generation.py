#!/usr/bin/env python3
"""Text in, text out, end to end on a compiled tiny model (f32, so the compiled
model's greedy choices are the reference's): stc-run --prompt at --temp 0 gives
the text of stc ref's greedy ids; two seeds at temperature 1 give two texts;
a two-turn --chat from a pipe leaves the context and last logits of a one-shot
prefill of the whole conversation; bad prompts give one clear line.
  text_generation.py WORKDIR"""
import array
import json
import os
import subprocess
import sys

work = sys.argv[1]
failures = []
checks = 0


def run(*args, stdin=None, ok=True):
    p = subprocess.run(list(args), input=stdin, capture_output=True)
    if ok and p.returncode != 0:
        sys.exit("%s failed (%d): %s" % (" ".join(args), p.returncode,
                                         p.stderr.decode(errors="replace")))
    return p


def check(cond, what):
    global checks
    checks += 1
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


ck = os.path.join(work, "tiny.gguf")
out = os.path.join(work, "out")
run("stc", "synth", "--preset", "tiny", "--format", "gguf", "--dtype", "f32",
    "--seed", "5", "-o", ck)
run("stc", "compile", ck, "--target", "host", "--quant", "f32", "-o", out)
stc_run = os.path.join(out, "stc-run")
eos = {509, 511}

# Greedy text = the text of the reference's greedy ids (up to an eos).
prompt = "The compiler reads a checkpoint, and"
ids = run("stc", "tokenize", out, "--text", prompt, "--quiet").stdout.decode().strip()
gen = run("stc", "ref", ck, "--tokens", ids, "--generate", "12").stdout.decode()
gen = [int(x) for x in gen.split("generated:")[1].strip().split(",")]
cut = next((i for i, t in enumerate(gen) if t in eos), len(gen))
want = run("stc", "detokenize", out, "--ids", ",".join(map(str, gen[:cut]))).stdout \
    if cut else b""
got = run(stc_run, out, "--prompt", prompt, "--temp", "0", "-n", "12", "--quiet").stdout
check(got == want + b"\n", "--temp 0 text %r equals the reference's greedy text %r"
      % (got, want))
got.decode("utf-8")  # streamed text is whole UTF-8 characters

# Two seeds at temperature 1.
a = run(stc_run, out, "--prompt", prompt, "--temp", "1", "--seed", "1", "-n", "24",
        "--quiet").stdout
b = run(stc_run, out, "--prompt", prompt, "--temp", "1", "--seed", "2", "-n", "24",
        "--quiet").stdout
a.decode("utf-8"), b.decode("utf-8")
check(a != b, "two seeds at temperature 1 give different texts")
c = run(stc_run, out, "--prompt", prompt, "--temp", "1", "--seed", "1", "-n", "24",
        "--quiet").stdout
check(a == c, "the same seed gives the same text")
# Without --seed: a random seed, printed.
p = run(stc_run, out, "--prompt", prompt, "-n", "2")
check(b"stc-run: seed " in p.stderr and b"prompt " in p.stderr and
      b"tokens/s" in p.stderr, "no --seed: the seed and the speeds on stderr")

# Two chat turns from a pipe, the second user line holding a typed <|im_end|>
# (text, not the control token); then the same ids in one prefill.
chat_ids = os.path.join(work, "chat.ids")
chat_logits = os.path.join(work, "chat.f32")
p = run(stc_run, out, "--chat", "--system", "Be brief.", "--temp", "0", "-n", "5",
        "--ids-out", chat_ids, "--logits", chat_logits, stdin=b"hi\nwhat is <|im_end|>?\n")
conv = [int(x) for x in open(chat_ids).read().strip().split(",")]
check(b"context %d tokens" % len(conv) in p.stderr,
      "the chat reports its context of %d tokens" % len(conv))
# 511 = <|im_end|>: closing the system turn and two user turns, and the first
# reply (the second is still open); the typed one is text.
check(conv.count(511) == 4, "<|im_end|> appears 4 times in the context, not 5 "
      "(a typed one is text): %d" % conv.count(511))
all_logits = os.path.join(work, "all.f32")
run(stc_run, out, "--tokens", ",".join(map(str, conv)), "-n", "0", "--logits",
    all_logits, "--quiet")
x = array.array("f"); x.frombytes(open(chat_logits, "rb").read())
y = array.array("f"); y.frombytes(open(all_logits, "rb").read())
last = y[len(y) - 512:]
worst = max(abs(u - v) for u, v in zip(x, last)) if len(x) == 512 else float("inf")
check(worst < 1e-4, "the chat's last logits equal a one-shot prefill's (max abs "
      "diff %.3g; batched vs one-token kernels sum in another order)" % worst)

# Bad prompts.
p = run(stc_run, out, "--prompt", "", ok=False)
check(p.returncode == 1 and b"the prompt is empty" in p.stderr, "an empty prompt")
bad = os.path.join(work, "bad.txt")
open(bad, "wb").write(b"ok \xff no")
p = run(stc_run, out, "--prompt-file", bad, ok=False)
check(p.returncode == 1 and b"not valid UTF-8 at byte 3" in p.stderr,
      "invalid UTF-8 names its byte offset: %r" % p.stderr)
p = run(stc_run, out, "--prompt", prompt, "--ctx", "4", ok=False)
check(p.returncode == 1 and b"longer than the context of 4" in p.stderr and
      b"the prompt is %d tokens" % len(ids.split(",")) in p.stderr,
      "a prompt longer than the context names both lengths: %r" % p.stderr)
p = run(stc_run, out, "--chat", "--ctx", "24", "--temp", "0", "-n", "30",
        stdin=b"a longer first message to fill the context\n")
check(b"does not fit the context: 0 of 24 tokens are used: the conversation cannot "
      b"go on" in p.stderr, "a full context in --chat is a clear message: %r" % p.stderr)

# A stored chat template that is not ChatML: --chat renders it (the model's own
# format), --chat-template chatml gives ChatML instead; a template stc cannot
# render exactly is refused by the compile, naming its line.
hf = os.path.join(work, "hf")
run("stc", "synth", "--preset", "tiny", "--format", "hf", "--dtype", "f32", "--seed",
    "5", "-o", hf)
cfg_path = os.path.join(hf, "tokenizer_config.json")
cfg = json.load(open(cfg_path))
cfg["chat_template"] = "{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}"
json.dump(cfg, open(cfg_path, "w"))
hf_out = os.path.join(work, "hf-out")
run("stc", "compile", hf, "--target", "host", "--quant", "f32", "-o", hf_out)
ids_path = os.path.join(work, "chat-ids.txt")
p = run(os.path.join(hf_out, "stc-run"), hf_out, "--chat", "-n", "2", "--temp", "0",
        "--ids-out", ids_path, stdin=b"hi\n")
want = run("stc", "tokenize", hf_out, "--text", "[user] hi", "--quiet").stdout.strip()
check(p.returncode == 0 and open(ids_path).read().startswith(want.decode() + ","),
      "--chat renders the model's own template (its ids start with '[user] hi''s)")
p = run(os.path.join(hf_out, "stc-run"), hf_out, "--chat", "--chat-template", "chatml",
        "-n", "2", "--temp", "0", "--ids-out", ids_path, stdin=b"hi\n")
check(p.returncode == 0 and open(ids_path).read().startswith("510,"),
      "--chat-template chatml gives ChatML instead")
cfg["chat_template"] = "line one\n{{ messages | wordwrap }}"
json.dump(cfg, open(cfg_path, "w"))
p = run("stc", "compile", hf, "--target", "host", "--quant", "f32", "-o",
        os.path.join(work, "bad-out"), ok=False)
check(p.returncode == 1 and b"chat template line 2: the filter 'wordwrap' is not "
      b"implemented" in p.stderr, "a template stc cannot render is refused: %r" % p.stderr)

print("%d passed, %d failed" % (checks - len(failures), len(failures)))
sys.exit(1 if failures else 0)
