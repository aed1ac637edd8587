"""The deployment files: Dockerfile, docker-compose.yml, deploy/docker/ (docs/docker.md).

ctest-labels: unit

No Docker engine is needed (none runs here): the compose file is validated by
Debian's docker-compose 1.29 (`docker-compose config`), every flag and DTK_*
variable the files use is checked against the binaries' --help, every RUN of
the Dockerfile must call an executable script under deploy/docker/, the files
carry no literal secrets, and the scripts the Dockerfile's RUN lines call are
run here: collect-runtime.sh on the local build, build-stage.sh (a Release
build with -DDTK_TESTS=OFF into a temporary directory) and runtime-stage.sh on
a staging root, which checks that every binary and plugin resolves all its
libraries from the staged files and the listed Debian packages.

Without docker-compose installed the compose validation is skipped when run by
hand and fails under DTK_REQUIRE_SERVICES=1 (CI; scripts/install-deps.sh
installs it).
"""

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

import yaml

from deploy_helpers import (BINARY_DIR, DISPATCH, FLAG_RE, REQUIRE, SOURCE_DIR, VAR_RE, WORKER,
                            help_names, literal_secrets, read, union_names, var_known)

DOCKERFILE = os.path.join(SOURCE_DIR, "Dockerfile")
COMPOSE = os.path.join(SOURCE_DIR, "docker-compose.yml")
DEPLOY = os.path.join(SOURCE_DIR, "deploy", "docker")

# Dummies for the variables the compose file requires (`${VAR:?...}`).
DUMMY_ENV = {"DTK_SIGNING_KEY": "dummy-signing-key", "CLICKHOUSE_PASSWORD": "dummy-password"}
# Our image's services (their commands run dtk binaries).
DTK_IMAGE = "detectk-c:local"
# Variables a binary reads without its --help naming them: none (both name
# DTK_SIGNING_KEY).
DISPATCH_UNLISTED = set()


def dockerfile_instructions():
    """(instruction, arguments) per logical line, continuations joined."""
    out, cur = [], ""
    with open(DOCKERFILE) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.rstrip().endswith("\\"):
                cur += line.rstrip()[:-1] + " "
                continue
            cur += line
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def compose_tool():
    return shutil.which("docker-compose")


def compose_config(extra_env=None, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DTK_", "CLICKHOUSE_"))}
    env.update(DUMMY_ENV)
    env.update(extra_env or {})
    return subprocess.run([compose_tool(), "-f", COMPOSE, "--project-directory", SOURCE_DIR,
                           "--profile", "dispatch", "config", *args],
                          capture_output=True, text=True, env=env, cwd=SOURCE_DIR, timeout=120)


class ComposeFile(unittest.TestCase):
    def setUp(self):
        if compose_tool() is None:
            msg = "docker-compose is not installed (scripts/install-deps.sh installs it)"
            if REQUIRE:
                self.fail(msg)
            self.skipTest(msg)

    def resolved(self):
        out = compose_config()
        self.assertEqual(out.returncode, 0, out.stderr)
        return yaml.safe_load(out.stdout)

    def test_config_validates(self):
        ver = subprocess.run([compose_tool(), "version", "--short"], capture_output=True, text=True)
        print("docker-compose", ver.stdout.strip(), file=sys.stderr)
        cfg = self.resolved()
        self.assertEqual(set(cfg["services"]),
                         {"kafka", "create-topics", "redis", "clickhouse", "worker", "dispatch"})

    def test_required_secrets_have_no_default(self):
        for var in DUMMY_ENV:
            env = dict(DUMMY_ENV)
            del env[var]
            full = {k: v for k, v in os.environ.items() if not k.startswith(("DTK_", "CLICKHOUSE_"))}
            full.update(env)
            out = subprocess.run([compose_tool(), "-f", COMPOSE, "config", "-q"], capture_output=True,
                                 text=True, env=full, cwd=SOURCE_DIR, timeout=120)
            self.assertNotEqual(out.returncode, 0, var + " has a default in docker-compose.yml")
            self.assertIn(var, out.stderr)

    def test_services(self):
        svc = self.resolved()["services"]
        # Kafka: the official image, a pinned 4.x tag, KRaft.
        for name in ("kafka", "create-topics"):
            self.assertRegex(svc[name]["image"], r"^apache/kafka:4\.\d+\.\d+$")
        self.assertIn("controller", svc["kafka"]["environment"]["KAFKA_PROCESS_ROLES"])
        self.assertRegex(svc["clickhouse"]["image"], r"^clickhouse/clickhouse-server:\d+\.\d+")
        self.assertRegex(svc["redis"]["image"], r"^redis:\d+\.\d+")
        # Topics with fleet.md's partition counts and message size.
        script = " ".join(svc["create-topics"]["command"]).replace("\\\n", " ")
        script = re.sub(r"\s+", " ", script)
        self.assertIn("kafka-topics.sh", script)
        for topic, conf in (("dtk.check-requests", True), ("dtk.check-results", False),
                            ("dtk.check-requests.dlq", True)):
            m = re.search(r"--topic " + re.escape(topic) + r" (--partitions \d+)( --replication-factor 1)"
                          r"( --config max\.message\.bytes=16777216)?(?=\s|$)", script)
            self.assertIsNotNone(m, topic)
            self.assertEqual(m.group(1), "--partitions 24", topic)
            self.assertEqual(bool(m.group(3)), conf, topic)
        self.assertEqual(svc["create-topics"]["depends_on"]["kafka"]["condition"], "service_healthy")
        # The worker scales: no fixed name, no host ports.
        w = svc["worker"]
        self.assertNotIn("container_name", w)
        self.assertNotIn("ports", w)
        self.assertIn("build", w)
        self.assertEqual(w["depends_on"]["create-topics"]["condition"], "service_completed_successfully")
        # The dispatch job: a profile, --tags ... --wait once.
        d = svc["dispatch"]
        self.assertEqual(d["profiles"], ["dispatch"])
        self.assertEqual(d["command"][0], "dtk-dispatch")
        self.assertIn("--tags", d["command"])
        self.assertIn("--wait", d["command"])
        self.assertNotIn("restart", {k for k, v in d.items() if v not in ("no", None)})
        for s in (w, d):
            self.assertEqual(s["image"], DTK_IMAGE)
            vols = [v if isinstance(v, str) else "%s:%s" % (v["source"], v["target"]) for v in s["volumes"]]
            self.assertTrue(any(v.startswith(os.path.join(SOURCE_DIR, "configs", "examples") + ":/etc/dtk/configs")
                                for v in vols), vols)
            env = s["environment"]
            self.assertEqual(env["DTK_KAFKA_BROKERS"], "kafka:9092")
            self.assertTrue(env["DTK_REDIS_URL"].startswith("redis://redis:"))
            self.assertEqual(env["DTK_SIGNING_KEY"], DUMMY_ENV["DTK_SIGNING_KEY"])
        self.assertIn("DTK_STORAGE_URL", w["environment"])
        # The metrics port the image's HEALTHCHECK probes.
        self.assertEqual(str(w["environment"]["DTK_METRICS_PORT"]), "9464")


class FlagsAndVariables(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.worker = help_names(WORKER)
        cls.dispatch = help_names(DISPATCH)

    def check(self, where, text, names, extra=frozenset()):
        flags, variables, prefixes = names
        for var in set(VAR_RE.findall(text)) - set(extra):
            self.assertTrue(var_known(var, variables, prefixes), "%s: %s is not in --help" % (where, var))

    def test_compose(self):
        with open(COMPOSE) as f:
            raw = yaml.safe_load(f)
        text = read(COMPOSE)
        # Every DTK_* anywhere in the file (comments too) is known to a binary.
        union = union_names(self.worker, self.dispatch)
        self.check("docker-compose.yml", text, union)
        # And per service, to the binary that service runs.
        anchors = raw.get("x-dtk-env", {})
        for name, svc in raw["services"].items():
            if svc.get("image") != DTK_IMAGE:
                continue
            cmd = svc.get("command") or ["dtk-worker"]
            binary = {"dtk-worker": self.worker, "dtk-dispatch": self.dispatch}[cmd[0]]
            extra = DISPATCH_UNLISTED if cmd[0] == "dtk-dispatch" else set()
            env = dict(anchors)
            env.update(svc.get("environment") or {})
            self.check(name, " ".join(env) + " " + " ".join(map(str, cmd)), binary, extra)
            for flag in FLAG_RE.findall(" ".join(map(str, cmd))):
                self.assertIn(flag, binary[0], "%s: %s is not in %s --help" % (name, flag, cmd[0]))

    def test_dockerfile(self):
        union = union_names(self.worker, self.dispatch)
        text = read(DOCKERFILE)
        self.check("Dockerfile", text, union)
        for ins, args in dockerfile_instructions():
            if ins in ("CMD", "ENTRYPOINT"):
                words = json.loads(args) if args.startswith("[") else args.split()
                if words and words[0] in ("dtk-worker", "dtk-dispatch"):
                    binary = self.worker if words[0] == "dtk-worker" else self.dispatch
                    for flag in FLAG_RE.findall(" ".join(words)):
                        self.assertIn(flag, binary[0], flag)
        # The healthcheck's port is the image's DTK_METRICS_PORT and EXPOSEd.
        self.assertRegex(text, r"DTK_METRICS_PORT=9464\b")
        self.assertRegex(text, r"(?m)^EXPOSE 9464$")
        self.assertRegex(text, r"(?m)^HEALTHCHECK .*\n?.*dtk-healthcheck.*/healthz")

    def test_signing_key_is_named_by_both_helps(self):
        self.assertIn("DTK_SIGNING_KEY", self.worker[1])
        self.assertIn("DTK_SIGNING_KEY", self.dispatch[1])


class DockerfileShape(unittest.TestCase):
    def test_every_run_calls_a_deploy_script(self):
        stages, runs = 0, []
        copied = {}  # destination dir -> copied from deploy/docker
        for ins, args in dockerfile_instructions():
            if ins == "FROM":
                stages += 1
                self.assertTrue(args.startswith("debian:12-slim"), args)
                copied = {}
            elif ins == "COPY" and not args.startswith("--from"):
                parts = json.loads(args) if args.startswith("[") else args.split()
                for src in parts[:-1]:
                    if src.rstrip("/").startswith("deploy/docker"):
                        copied[parts[-1].rstrip("/")] = src.rstrip("/")
            elif ins == "RUN":
                runs.append(args)
                words = json.loads(args) if args.startswith("[") else args.split()
                self.assertFalse(any(op in args for op in ("&&", "||", ";", "|")),
                                 "RUN does more than call a script: " + args)
                script = words[0]
                self.assertIn("/deploy/docker/", script, args)
                name = os.path.basename(script)
                path = os.path.join(DEPLOY, name)
                self.assertTrue(os.path.isfile(path), path)
                self.assertTrue(os.access(path, os.X_OK), path + " is not executable")
                # A COPY of this stage put the script where RUN calls it.
                d = os.path.dirname(script)
                self.assertTrue(d in copied or script in copied, "%s is not COPYed: %s" % (script, copied))
        self.assertEqual(stages, 2)
        self.assertEqual(len(runs), 2)

    def test_runtime_stage(self):
        text = read(DOCKERFILE)
        runtime = text[text.index("AS runtime"):]
        self.assertRegex(runtime, r"(?m)^USER dtk")
        self.assertRegex(runtime, r"(?m)^HEALTHCHECK ")
        self.assertIn("COPY --from=build /out/ /usr/local/", runtime)
        self.assertIn("DTK_CONFIG_DIR=/etc/dtk/configs", runtime)
        build = text[:text.index("AS runtime")]
        self.assertIn("build-stage.sh", build)
        with open(os.path.join(DEPLOY, "build-stage.sh")) as f:
            script = f.read()
        self.assertIn("-DDTK_TESTS=OFF", script)
        self.assertIn("-DCMAKE_BUILD_TYPE=Release", script)

    def test_no_literal_secrets(self):
        for path in (DOCKERFILE, COMPOSE):
            with open(path) as f:
                self.assertEqual(literal_secrets(f.read()), [], path)
        # The scanner itself catches literals.
        self.assertTrue(literal_secrets("      DTK_SIGNING_KEY: hunter2\n"))
        self.assertTrue(literal_secrets("ENV CLICKHOUSE_PASSWORD=hunter2\n"))
        self.assertTrue(literal_secrets("  X: ${DTK_SIGNING_KEY:-hunter2}\n"))
        self.assertTrue(literal_secrets("  DTK_STORAGE_URL: clickhouse://dtk:hunter2@ch:8123/dtk\n"))
        self.assertFalse(literal_secrets("  DTK_SIGNING_KEY: ${DTK_SIGNING_KEY:?set it}\n"))


class Scripts(unittest.TestCase):
    STAGED_LIBS = {"libdtk.so.0", "libdtk-fleet.so.0", "libdtk-http.so", "libdtk-postgres.so",
                   "libdtk-mysql.so"}

    def check_staged(self, root):
        prefix = os.path.join(root, "usr", "local")
        self.assertEqual(sorted(os.listdir(os.path.join(prefix, "bin"))),
                         ["dtk", "dtk-dispatch", "dtk-healthcheck", "dtk-worker"])
        libs = set(os.listdir(os.path.join(prefix, "lib")))
        self.assertTrue(self.STAGED_LIBS <= libs, libs)
        # Only those and the real files the soname links point at.
        for extra in libs - self.STAGED_LIBS:
            self.assertRegex(extra, r"^libdtk(-fleet)?\.so\.0\.\d+\.\d+$")
        with open(os.path.join(prefix, "share", "dtk", "runtime-packages.txt")) as f:
            packages = set(f.read().split())
        for p in ("librdkafka1", "libcurl4", "libpq5", "libmariadb3", "libyaml-0-2", "libsqlite3-0",
                  "libssl3"):
            self.assertIn(p, packages)
        self.assertTrue(any(p.startswith("libhiredis") for p in packages), packages)
        self.assertFalse(any(p.endswith("-dev") for p in packages), packages)
        # runtime-stage.sh: packages present, every library resolves, binaries run.
        out = subprocess.run([os.path.join(DEPLOY, "runtime-stage.sh"), root], capture_output=True,
                             text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("resolve all their libraries", out.stderr)
        # The staged binaries' NEEDED libraries are staged or listed.
        listed = {}
        with open(os.path.join(prefix, "share", "dtk", "runtime-libs.txt")) as f:
            for line in f:
                path, pkg = line.rstrip("\n").split("\t")
                listed[os.path.basename(path)] = pkg
        for b in ("dtk", "dtk-dispatch", "dtk-worker"):
            dyn = subprocess.run(["readelf", "-d", os.path.join(prefix, "bin", b)], capture_output=True,
                                 text=True).stdout
            for lib in re.findall(r"Shared library: \[([^\]]+)\]", dyn):
                self.assertTrue(lib in libs or lib in listed, "%s needs %s" % (b, lib))

    def test_collect_runtime_on_local_build(self):
        with tempfile.TemporaryDirectory() as root:
            prefix = os.path.join(root, "usr", "local")
            out = subprocess.run([os.path.join(DEPLOY, "collect-runtime.sh"), BINARY_DIR, prefix],
                                 capture_output=True, text=True, timeout=300)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.check_staged(root)

    def test_build_stage_release(self):
        # The build stage's steps, as the Dockerfile runs them (the deps step is
        # a no-op where install-deps.sh ran), from this tree's sources.
        with tempfile.TemporaryDirectory() as tmp:
            build, root = os.path.join(tmp, "build"), os.path.join(tmp, "root")
            env = dict(os.environ, DTK_DOCKER_BUILD_DIR=build, DTK_DOCKER_STEPS="deps build stage")
            out = subprocess.run([os.path.join(DEPLOY, "build-stage.sh"), SOURCE_DIR,
                                  os.path.join(root, "usr", "local")],
                                 capture_output=True, text=True, env=env, timeout=900)
            self.assertEqual(out.returncode, 0, out.stderr[-4000:])
            with open(os.path.join(build, "CMakeCache.txt")) as f:
                cache = f.read()
            self.assertIn("CMAKE_BUILD_TYPE:STRING=Release", cache)
            self.assertIn("DTK_TESTS:BOOL=OFF", cache)
            # No RPATH into the build directory: the image finds libraries via ldconfig.
            dyn = subprocess.run(["readelf", "-d", os.path.join(root, "usr", "local", "bin", "dtk-worker")],
                                 capture_output=True, text=True).stdout
            self.assertNotIn("RUNPATH", dyn)
            self.assertNotIn("RPATH", dyn)
            self.check_staged(root)

    def test_healthcheck(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                code = 200 if self.path == "/healthz" else 503
                self.send_response(code)
                self.end_headers()
                try:
                    self.wfile.write(b"ok\n" if code == 200 else b"not ready\n")
                except OSError:
                    pass  # the healthcheck hangs up after the status line

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            port = srv.server_address[1]
            script = os.path.join(DEPLOY, "healthcheck.sh")
            env = dict(os.environ, DTK_METRICS_PORT=str(port))
            self.assertEqual(subprocess.run([script], env=env, timeout=30).returncode, 0)
            bad = subprocess.run([script, "/readyz"], env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(bad.returncode, 1)
            self.assertIn("503", bad.stderr)
        finally:
            srv.shutdown()
            srv.server_close()
        # Nothing listening: unhealthy, with a message.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        out = subprocess.run([script], env=dict(os.environ, DTK_METRICS_PORT=str(free)),
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 1)
        self.assertIn("nothing listens", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
