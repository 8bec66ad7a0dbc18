# lit configuration for stc: IR round trips, verifier diagnostics, importer output, passes.
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "stc"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["unit", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "compare_logits.py",
                   "check_sparsity.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.stc_obj_root, "test")

# LLVM 19's FileCheck, not, count first on PATH (another LLVM's may be there too).
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.stc_tools_dir, append_path=True)
llvm_config.use_default_substitutions()
llvm_config.add_tool_substitutions(["stc", "stc-opt"], [config.stc_tools_dir])

# The Hugging Face tokenizers oracle (npm, installed by tools/setup/install-deps.sh).
config.environment["NODE_PATH"] = os.path.join(
    os.environ.get("STC_NPM_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stc", "npm"),
    "node_modules")
config.excludes += ["cases.json", "hf_oracle.js", "make_llama_fixtures.py", "compare_ids.py",
                    "serve_client.py", "pty_run.py", "memcg.py",
                    "gguf_active_bytes.py"]

# The kernel cache of this test run (stc compile's default is the user's
# $XDG_CACHE_HOME/stc/kernels): shared by the tests of one build, never by two.
config.environment["XDG_CACHE_HOME"] = os.path.join(config.stc_obj_root, "test-cache")

# arm64: stc compile cross-links for AArch64 when the cross compiler is installed, and
# the tests run the result under qemu-aarch64 (both come with tools/setup/install-deps.sh).
import shutil
if (shutil.which("qemu-aarch64") and os.path.isdir("/usr/aarch64-linux-gnu")
        and os.path.isdir(os.path.join(config.stc_obj_root, "lib", "aarch64"))):
    config.available_features.add("aarch64-qemu")

# The ASan + UBSan build: tests too slow under its instrumentation, or that need memory
# limits its shadow memory and quarantine exceed, say `UNSUPPORTED: sanitizer` (lit
# reports them as such, with the reason in the test).
if getattr(config, "stc_sanitize", ""):
    config.available_features.add("sanitizer")

# A memory cgroup this process may make a child of (test/e2e/memcg.py): tests that
# measure what a hard memory limit charges say `REQUIRES: memcg`.
import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "e2e"))
import memcg
if memcg.can_create():
    config.available_features.add("memcg")
