"""What the tests that load libdtk into Python share (the Python API,
detectk.fleet, Airflow, Prefect): an ASan-built libdtk loads into an
uninstrumented interpreter only with the sanitizer runtimes it links
preloaded. Not a test itself (no test_ prefix)."""
import os
import re
import subprocess


def runtimes(lib):
    """Paths of the libasan/libubsan that lib links, from ldd ([] when none,
    or when lib is absent)."""
    if not os.path.exists(lib):
        return []
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    try:
        out = subprocess.run(["ldd", lib], capture_output=True, text=True, timeout=30,
                             env=env).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return re.findall(r"^\s*lib(?:asan|ubsan)\.so\S*\s+=>\s+(\S+)", out, re.M)


def preload_env(lib, env):
    """env (a dict, changed in place) made to load lib: its sanitizer
    runtimes first in LD_PRELOAD and leak detection off, last so that it
    wins over scripts/test.sh's detect_leaks=1 (the interpreter keeps its
    own memory at exit). Returns the runtimes ([]: env is unchanged)."""
    found = runtimes(lib)
    if found:
        env["LD_PRELOAD"] = ":".join(found + ([env["LD_PRELOAD"]] if env.get("LD_PRELOAD")
                                              else []))
        env["ASAN_OPTIONS"] = (env["ASAN_OPTIONS"] + ":" if env.get("ASAN_OPTIONS")
                               else "") + "detect_leaks=0"
    return found
