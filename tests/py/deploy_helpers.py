"""What the deployment-file tests share (tests/py/test_deploy_files.py for the
Dockerfile and docker-compose.yml, tests/py/test_k8s_manifests.py for
deploy/k8s/ and integrations/kubernetes/): the binaries' paths, the flags and
DTK_* variables their --help names, and the scanners for literal secrets. Not
a test itself (no test_ prefix)."""

import os
import re
import subprocess

SOURCE_DIR = os.environ.get(
    "DTK_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY_DIR = os.environ.get("DTK_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
REQUIRE = os.environ.get("DTK_REQUIRE_SERVICES") == "1"
WORKER = os.path.join(BINARY_DIR, "worker", "dtk-worker")
DISPATCH = os.path.join(BINARY_DIR, "dispatcher", "dtk-dispatch")

FLAG_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
VAR_RE = re.compile(r"\b(?:DTK|DETECTK)_[A-Z0-9_]+\b")
SECRET_WORD = r"(?:password|passwd|pass|secret|token|key|auth|hmac|credential)"
# user:password@ in a URL, unless the password is a ${VAR} reference
URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:(?!\$\{)[^@\s/]+@")


def read(path):
    with open(path) as f:
        return f.read()


def help_text(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def help_names(binary):
    """(flags, variables, variable prefixes) that `binary --help` names; a
    prefix comes from a DTK_..._<NAME> pattern such as DTK_KAFKA_PROP_<NAME>."""
    text = help_text(binary)
    flags = set(FLAG_RE.findall(text))
    variables = set(VAR_RE.findall(text))
    prefixes = {m.group(1) for m in re.finditer(r"\b((?:DTK|DETECTK)_[A-Z0-9_]+_)<NAME>", text)}
    return flags, variables, prefixes


def union_names(*names):
    """The union of several help_names() triples."""
    return tuple(set().union(*(n[i] for n in names)) for i in range(3))


def var_known(var, variables, prefixes):
    return var in variables or any(var.startswith(p) and len(var) > len(p) for p in prefixes)


def strip_comment(line):
    # YAML and Dockerfile comments start a line or follow a space.
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0]


def secret_name(name):
    return re.search(SECRET_WORD, name, re.IGNORECASE) is not None


def allowed_secret_value(value):
    """Nothing, or a ${VAR} reference without a non-empty default."""
    return (value == "" or re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", value)
            or re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}", value)
            or re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-\}", value))


def literal_secrets(text):
    """Lines that assign a literal value to a secret-looking name (line-based:
    Dockerfile, compose files)."""
    bad = []
    for n, line in enumerate(text.splitlines(), 1):
        code = strip_comment(line)
        m = re.search(r"([A-Za-z0-9_.-]*" + SECRET_WORD + r"[A-Za-z0-9_.-]*)\s*[:=]\s*(.*)$",
                      code, re.IGNORECASE)
        if m:
            value = m.group(2).strip().strip("\"'")
            if not allowed_secret_value(value):
                bad.append((n, line.strip()))
        if URL_CREDENTIALS.search(code):
            bad.append((n, line.strip()))
    return bad


# Keys whose value names something (a Secret, one of its keys, a variable)
# rather than holding a value, in Kubernetes objects.
_NAMING_KEYS = {"name", "key", "secretName", "secretKeyRef", "configMapKeyRef", "secretRef",
                "configMapRef", "authenticationRef"}


def literal_secrets_in(obj, path=""):
    """Literal secrets in a parsed YAML/JSON document (Kubernetes manifests):
    a secret-looking key with a non-empty scalar value (except keys that only
    name things: secretKeyRef's `key`, a `name`), an env entry {name:
    SECRET_LOOKING, value: non-empty}, a Secret with data or stringData
    values, and in any string what literal_secrets() finds (user:password@,
    `password: x` in embedded text). Returns [(path, text)]."""
    bad = []
    if isinstance(obj, dict):
        if obj.get("kind") == "Secret":
            for field in ("data", "stringData"):
                for k, v in (obj.get(field) or {}).items():
                    if v not in ("", None):
                        bad.append(("%s.%s.%s" % (path, field, k), "a committed Secret value"))
        if isinstance(obj.get("name"), str) and "value" in obj and secret_name(obj["name"]):
            v = obj["value"]
            if isinstance(v, (str, int, float)) and not allowed_secret_value(str(v).strip()):
                bad.append(("%s.value" % path, "%s: %s" % (obj["name"], v)))
        for k, v in obj.items():
            sub = "%s.%s" % (path, k) if path else str(k)
            if (isinstance(k, str) and k not in _NAMING_KEYS and secret_name(k)
                    and isinstance(v, (str, int, float)) and not isinstance(v, bool)
                    and not allowed_secret_value(str(v).strip())):
                bad.append((sub, "%s: %s" % (k, v)))
            bad.extend(literal_secrets_in(v, sub))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            bad.extend(literal_secrets_in(v, "%s[%d]" % (path, i)))
    elif isinstance(obj, str):
        # embedded text (a config file in a ConfigMap, an argument such as
        # sasl.password=...) by the line-based rules
        bad.extend((path, line) for _, line in literal_secrets(obj))
    return bad
