"""Differential test: the C YAML loader against PyYAML's safe_load.

For every case in yaml_cases.py, PyYAML's result is turned into the same
canonical type-tagged dump that tests/tools/yaml_dump prints (see that file),
and the two must be equal; when PyYAML raises, yaml_dump must fail too.
Exits non-zero listing every mismatch.
"""

import datetime
import json
import math
import os
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import yaml_cases  # noqa: E402

MIN_SCALARS = 60
MIN_DOCUMENTS = 20


def canon(x):
    if x is None:
        return {"t": "null"}
    if isinstance(x, bool):
        return {"t": "bool", "v": x}
    if isinstance(x, int):
        return {"t": "int", "v": str(x)}
    if isinstance(x, float):
        return {"t": "float", "v": "nan" if math.isnan(x) else repr(x)}
    if isinstance(x, str):
        return {"t": "str", "v": x}
    if isinstance(x, datetime.datetime):
        off = x.utcoffset()
        tz = None if off is None else int(off.total_seconds()) // 60
        return {"t": "datetime", "v": x.replace(tzinfo=None).isoformat(), "tz": tz}
    if isinstance(x, datetime.date):
        return {"t": "date", "v": x.isoformat()}
    if isinstance(x, list):
        return {"t": "list", "v": [canon(i) for i in x]}
    if isinstance(x, dict):
        return {"t": "map", "v": [[canon(k), canon(v)] for k, v in x.items()]}
    raise TypeError("no canonical form for %s" % type(x).__name__)


def python_side(text):
    try:
        return True, canon(yaml.safe_load(text))
    except Exception as e:  # any PyYAML failure: the C loader must fail too
        return False, "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")


def c_side(tool, text):
    p = subprocess.run([tool], input=text.encode("utf-8"), capture_output=True, timeout=30)
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode == 1:
        return False, err.strip(), err
    if p.returncode != 0:  # a crash or a sanitizer report is never a match
        return None, "exit status %d: %s" % (p.returncode, err.strip()), err
    return True, json.loads(p.stdout.decode("utf-8")), err


def main():
    bindir = os.environ.get("DTK_BINARY_DIR")
    if not bindir:
        print("DTK_BINARY_DIR is not set", file=sys.stderr)
        return 2
    tool = os.path.join(bindir, "tests", "yaml_dump")
    if not os.access(tool, os.X_OK):
        print("missing %s: build the tests first" % tool, file=sys.stderr)
        return 2
    if len(yaml_cases.SCALARS) < MIN_SCALARS or len(yaml_cases.DOCUMENTS) < MIN_DOCUMENTS:
        print("too few cases: %d scalars, %d documents"
              % (len(yaml_cases.SCALARS), len(yaml_cases.DOCUMENTS)), file=sys.stderr)
        return 2

    cases = [("scalar %r" % s, s) for s in yaml_cases.SCALARS]
    cases += [("document %s" % n, t) for n, t in yaml_cases.DOCUMENTS]
    mismatches = []
    both_failed = 0
    for name, text in cases:
        py_ok, py_val = python_side(text)
        c_ok, c_val, c_err = c_side(tool, text)
        if c_ok is None:
            mismatches.append("%s: C loader crashed (%s)" % (name, c_val))
            continue
        if py_ok != c_ok:
            mismatches.append("%s: PyYAML %s, C %s"
                              % (name, "loads %s" % json.dumps(py_val) if py_ok
                                 else "fails (%s)" % py_val,
                                 "loads %s" % json.dumps(c_val) if c_ok
                                 else "fails (%s)" % c_val))
            continue
        if not py_ok:
            both_failed += 1
            continue
        if py_val != c_val:
            mismatches.append("%s:\n  PyYAML %s\n  C      %s"
                              % (name, json.dumps(py_val, ensure_ascii=False),
                                 json.dumps(c_val, ensure_ascii=False)))
            continue
        if name.endswith("_dup") and "duplicate key" not in c_err:
            mismatches.append("%s: no duplicate-key warning from the C loader" % name)

    print("%d cases compared (%d scalars, %d documents; %d fail in both), %d mismatches"
          % (len(cases), len(yaml_cases.SCALARS), len(yaml_cases.DOCUMENTS), both_failed,
             len(mismatches)))
    for m in mismatches:
        print("MISMATCH " + m)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
