"""The Kubernetes manifests: deploy/k8s/ and integrations/kubernetes/ (docs/kubernetes.md).

ctest-labels: unit

Offline, no cluster: every object is validated against the Kubernetes JSON
schemas that the pinned kubernetes-validate package ships (strict: unknown
fields are errors), for the oldest and the newest Kubernetes release checked;
the KEDA ScaledObject against the openAPIV3Schema of the CRD of the KEDA
release pinned in deploy/k8s/schemas/ (with jsonschema, and refusing fields
the schema does not declare, which the API server would prune silently), its
kafka trigger's parameters against the list derived from that release's
Kafka scaler. Then what ties the objects together: every ConfigMap and Secret
they reference exists (Secrets as the names of the *.env.example files), every
flag and DTK_* variable a container passes to dtk-worker or dtk-dispatch is in
that binary's --help (as tests/py/test_deploy_files.py does for compose), the
worker's grace period and probes fit its drain and startup timeouts, the
ScaledObject's bounds fit the request partitions of docs/fleet.md and the
dispatch period, each dispatch CronJob's schedule is its configs' interval and
every example config is dispatched exactly once, configs.yaml holds
configs/examples byte for byte, and nothing carries a secret value.

All of that is one function, problems(), run on the real tree (no problems)
and on copies broken on purpose in a temporary directory (each breakage must
be reported), so the test is known to fail on a broken manifest.
`kubectl kustomize` renders deploy/k8s when a kubectl with kustomize v5 is
installed (the machine image has one; none is packaged by Debian 12), else
that one test is skipped.
"""

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import jsonschema
import kubernetes_validate
import yaml

from deploy_helpers import (DISPATCH, FLAG_RE, SOURCE_DIR, VAR_RE, WORKER, help_names,
                            literal_secrets, literal_secrets_in, read, union_names, var_known)

K8S = os.path.join(SOURCE_DIR, "deploy", "k8s")
INTEGRATIONS = os.path.join(SOURCE_DIR, "integrations", "kubernetes")
EXAMPLES = os.path.join(SOURCE_DIR, "configs", "examples")
FLEET_MD = os.path.join(SOURCE_DIR, "docs", "fleet.md")
WORKER_MAIN = os.path.join(SOURCE_DIR, "worker", "main.c")

# The oldest Kubernetes the manifests need (CronJob timeZone is GA in 1.27)
# and the newest kubernetes-validate ships.
K8S_VERSIONS = ("1.27", kubernetes_validate.utils.major_minor(kubernetes_validate.utils.latest_version()))
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# /healthz turns 503 after this long without a main-loop poll (worker.md).
HEALTHZ_IDLE_S = 10
BINARIES = {"dtk-worker": WORKER, "dtk-dispatch": DISPATCH}
IMAGE_CMD = "dtk-worker"  # the Dockerfile's CMD


def manifest_files(d):
    """The object files of a manifest directory (not kustomization.yaml, not schemas/)."""
    return sorted(f for f in os.listdir(d)
                  if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml")


def load_docs(path, problems):
    """[(where, object)] of a YAML file; a parse error is a problem."""
    try:
        with open(path) as f:
            docs = list(yaml.safe_load_all(f))
    except yaml.YAMLError as e:
        problems.append("%s: YAML: %s" % (os.path.basename(path), str(e).replace("\n", " ")))
        return []
    out = []
    for i, d in enumerate(docs):
        if d is None:
            continue
        where = "%s[%d] %s/%s" % (os.path.basename(path), i, d.get("kind") if isinstance(d, dict) else "?",
                                  ((d.get("metadata") or {}).get("name") if isinstance(d, dict) else "?"))
        if not isinstance(d, dict):
            problems.append("%s: not a mapping" % where)
            continue
        out.append((where, d))
    return out


def env_example_keys(path):
    """{key: required} of a *.env.example: `KEY=` lines are required keys,
    `# KEY=` lines optional ones."""
    keys = {}
    for line in read(path).splitlines():
        m = re.match(r"^(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if m:
            keys[m.group(2)] = m.group(1) is None
    return keys


def env_example_values(path):
    """Values written in a *.env.example (must all be empty)."""
    return [(line, m.group(2)) for line in read(path).splitlines()
            for m in [re.match(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)] if m and m.group(2)]


def interval_seconds(text):
    m = re.fullmatch(r"\s*(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)\s*",
                     str(text))
    if not m:
        return None
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)[0]]
    return int(m.group(1)) * unit


def cron_period_seconds(schedule):
    """The period of the cron schedules these manifests use: */N or * in the
    minute field with * elsewhere, a fixed minute (hourly), a fixed minute and
    hour (daily). None for anything else."""
    f = schedule.split()
    if len(f) != 5 or f[2:] != ["*", "*", "*"]:
        return None
    minute, hour = f[0], f[1]
    if hour == "*":
        if minute == "*":
            return 60
        m = re.fullmatch(r"\*/(\d+)", minute)
        if m and 60 % int(m.group(1)) == 0:
            return int(m.group(1)) * 60
        if minute.isdigit():
            return 3600
    elif minute.isdigit() and hour.isdigit():
        return 86400
    return None


def request_partitions():
    """The request topic's partitions per docs/fleet.md ("`--partitions` (24: ...")."""
    m = re.search(r"`--partitions` \((\d+)", read(FLEET_MD))
    return int(m.group(1)) if m else None


def default_allow_env():
    """The worker's default --allow-env prefixes (worker/main.c)."""
    src = read(WORKER_MAIN)
    m = re.search(r"default_allow_env\[\]\s*=\s*\{(.*?)\};", src, re.S)
    return re.findall(r'"([^"]*)"', m.group(1)) if m else []


def example_configs():
    """{file name: parsed config} of configs/examples."""
    out = {}
    for f in sorted(os.listdir(EXAMPLES)):
        if f.endswith((".yaml", ".yml")):
            with open(os.path.join(EXAMPLES, f)) as fh:
                out[f] = yaml.safe_load(fh)
    return out


def dispatch_selection(args, config_dir=EXAMPLES):
    """The config files `dtk-dispatch ARGS --dry-run` selects (no broker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DTK_", "DETECTK_"))}
    sel = [a for a in args if a not in ("--wait",)]
    # --timeout N only matters with a broker; drop it and its value
    clean, skip = [], False
    for a in sel:
        if skip:
            skip = False
            continue
        if a == "--timeout":
            skip = True
            continue
        clean.append(a)
    out = subprocess.run([DISPATCH, "--config-dir", config_dir, *clean, "--dry-run"],
                         capture_output=True, text=True, env=env, timeout=60)
    files = re.findall(r"^selected (\S+)", out.stdout, re.M)
    return out.returncode, sorted(os.path.basename(f) for f in files), out.stderr


class Help:
    """The binaries' --help names, read once."""
    names = {}

    @classmethod
    def of(cls, binary):
        if binary not in cls.names:
            cls.names[binary] = help_names(BINARIES[binary])
        return cls.names[binary]


# ---- KEDA ----------------------------------------------------------------

def keda_crd(schemas):
    with open(os.path.join(schemas, "keda.sh_scaledobjects.yaml")) as f:
        crd = yaml.safe_load(f)
    return crd


def keda_schema(crd, version):
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return v["schema"]["openAPIV3Schema"]
    return None


def pruned_fields(obj, schema, path=""):
    """Fields of obj that a structural schema does not declare: the API server
    drops them silently (a misspelt cooldownPeriod would just vanish)."""
    out = []
    if not isinstance(schema, dict):
        return out
    if isinstance(obj, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return out
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        for k, v in obj.items():
            sub = "%s.%s" % (path, k) if path else k
            if props is not None and k in props:
                out.extend(pruned_fields(v, props[k], sub))
            elif isinstance(addl, dict):
                out.extend(pruned_fields(v, addl, sub))
            elif props is not None and addl is not True:
                out.append(sub)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(obj):
            out.extend(pruned_fields(v, schema["items"], "%s[%d]" % (path, i)))
    return out


def kafka_params(schemas):
    with open(os.path.join(schemas, "keda-kafka-scaler-params.json")) as f:
        return {p["name"]: p for p in json.load(f)["params"]}


# ---- the checks ----------------------------------------------------------

class Tree:
    """The objects of deploy/k8s (and integrations/kubernetes) with what the
    checks need to find them by kind and name."""

    def __init__(self, k8s, integrations, problems):
        self.k8s, self.integrations = k8s, integrations
        self.docs = []  # (dir tag, file, where, obj)
        for tag, d in (("k8s", k8s), ("integrations", integrations)):
            for f in manifest_files(d):
                for where, obj in load_docs(os.path.join(d, f), problems):
                    self.docs.append((tag, f, where, obj))
        self.configmaps = {o["metadata"]["name"]: o for _, _, _, o in self.docs
                           if o.get("kind") == "ConfigMap" and (o.get("metadata") or {}).get("name")}
        self.secrets = {}
        for name, example in (("dtk-secrets", "secrets.env.example"),
                              ("dtk-config-secrets", "config-secrets.env.example")):
            path = os.path.join(k8s, example)
            self.secrets[name] = env_example_keys(path) if os.path.exists(path) else {}

    def objects(self, kind, tag=None):
        return [(w, o) for t, _, w, o in self.docs if o.get("kind") == kind and (tag is None or t == tag)]


def pod_specs(obj):
    """(pod spec, path) of a workload object."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [((spec.get("template") or {}).get("spec") or {}, "spec.template.spec")]
    if kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        return [((job.get("template") or {}).get("spec") or {}, "spec.jobTemplate.spec.template.spec")]
    return []


def container_env(tree, container, where, problems):
    """{variable: value or None (from a Secret)} a container gets, and the
    keys coming from each Secret; missing references are problems."""
    env, from_secrets = {}, {}
    for src in container.get("envFrom") or []:
        if "configMapRef" in src:
            name = src["configMapRef"].get("name")
            cm = tree.configmaps.get(name)
            if cm is None:
                if not src["configMapRef"].get("optional"):
                    problems.append("%s: envFrom ConfigMap %s does not exist" % (where, name))
                continue
            env.update({k: str(v) for k, v in (cm.get("data") or {}).items()})
        elif "secretRef" in src:
            name = src["secretRef"].get("name")
            if name not in tree.secrets:
                problems.append("%s: envFrom Secret %s is not one of %s" % (where, name, sorted(tree.secrets)))
                continue
            for k in tree.secrets[name]:
                env[k] = None
                from_secrets[k] = name
    for e in container.get("env") or []:
        name = e.get("name")
        vf = e.get("valueFrom") or {}
        if "secretKeyRef" in vf:
            ref = vf["secretKeyRef"]
            keys = tree.secrets.get(ref.get("name"))
            if keys is None:
                problems.append("%s: env %s: Secret %s is not one of %s"
                                % (where, name, ref.get("name"), sorted(tree.secrets)))
            elif ref.get("key") not in keys:
                problems.append("%s: env %s: key %s is not in the example of Secret %s"
                                % (where, name, ref.get("key"), ref.get("name")))
            elif not ref.get("optional") and not keys[ref["key"]]:
                problems.append("%s: env %s: key %s is optional in the Secret's example, so the "
                                "reference must be optional: true" % (where, name, ref.get("key")))
            env[name] = None
            from_secrets[name] = ref.get("name")
        elif "configMapKeyRef" in vf:
            ref = vf["configMapKeyRef"]
            cm = tree.configmaps.get(ref.get("name"))
            if cm is None or ref.get("key") not in (cm.get("data") or {}):
                problems.append("%s: env %s: ConfigMap key %s/%s does not exist"
                                % (where, name, ref.get("name"), ref.get("key")))
            env[name] = str((cm or {}).get("data", {}).get(ref.get("key")))
        else:
            env[name] = str(e.get("value", ""))
    return env, from_secrets


def check_container_names(tree, where, container, problems):
    """Flags and DTK_* variables of a dtk container against its binary's --help."""
    cmd = container.get("command") or [IMAGE_CMD]
    binary = cmd[0]
    if binary not in BINARIES:
        return None
    names = Help.of(binary)
    words = [str(w) for w in cmd[1:] + (container.get("args") or [])]
    for flag in FLAG_RE.findall(" ".join(words)):
        if flag not in names[0]:
            problems.append("%s: %s is not in %s --help" % (where, flag, binary))
    env, from_secrets = container_env(tree, container, where, problems)
    allow = default_allow_env()
    for var in env:
        if VAR_RE.fullmatch(var):
            if not var_known(var, names[1], names[2]):
                problems.append("%s: %s is not in %s --help" % (where, var, binary))
        elif from_secrets.get(var) == "dtk-config-secrets":
            if not any(var.startswith(p) for p in allow):
                problems.append("%s: %s (dtk-config-secrets) has none of the worker's default "
                                "--allow-env prefixes %s: no config could read it" % (where, var, allow))
    return binary, env, words


def check_objects(tree, problems):
    for tag, f, where, obj in tree.docs:
        meta = obj.get("metadata") or {}
        for key in ("apiVersion", "kind"):
            if key not in obj:
                problems.append("%s: no %s" % (where, key))
        name = meta.get("name")
        if not name or not DNS_LABEL.match(str(name)) or len(str(name)) > 52:
            problems.append("%s: metadata.name %r is not a DNS label of at most 52 characters "
                            "(CronJob names are)" % (where, name))
        if "namespace" in meta:
            problems.append("%s: a namespace in the object (kustomization.yaml or -n sets it)" % where)
        for path, text in literal_secrets_in(obj):
            problems.append("%s: a literal secret at %s: %s" % (where, path, text))
        if obj.get("apiVersion", "").startswith("keda.sh/"):
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append("%s: Kubernetes %s schema: %s at %s"
                                % (where, version, e.message, "/".join(map(str, e.path))))
            except (kubernetes_validate.SchemaNotFoundError,
                    kubernetes_validate.InvalidSchemaError) as e:
                problems.append("%s: Kubernetes %s: %s" % (where, version, e.message))


def check_keda(tree, problems):
    """Every ScaledObject against the pinned CRD and Kafka scaler; returns
    [(where, object, trigger metadata)]."""
    schemas = os.path.join(tree.k8s, "schemas")
    crd = keda_crd(schemas)
    params = kafka_params(schemas)
    out = []
    for where, so in tree.objects("ScaledObject"):
        group, _, version = so.get("apiVersion", "").partition("/")
        schema = keda_schema(crd, version) if group == crd["spec"]["group"] else None
        if schema is None:
            problems.append("%s: apiVersion %s is not served by the pinned CRD" % (where, so.get("apiVersion")))
            continue
        for err in jsonschema.Draft7Validator(schema).iter_errors(so):
            problems.append("%s: KEDA CRD schema: %s at %s" % (where, err.message, "/".join(map(str, err.path))))
        for field in pruned_fields(so, schema):
            if not field.startswith("metadata."):
                problems.append("%s: %s is not in the KEDA CRD schema (the API server would drop it)"
                                % (where, field))
        try:  # metadata as the ObjectMeta of any object
            kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": so.get("metadata")}, K8S_VERSIONS[-1], strict=True)
        except kubernetes_validate.ValidationError as e:
            problems.append("%s: metadata: %s" % (where, e.message))
        spec = so.get("spec") or {}
        for i, trig in enumerate(spec.get("triggers") or []):
            if trig.get("type") != "kafka":
                problems.append("%s: trigger %d is %r, not kafka" % (where, i, trig.get("type")))
                continue
            md = trig.get("metadata") or {}
            given = set()
            for key, value in md.items():
                base = key[:-len("FromEnv")] if key.endswith("FromEnv") else key
                p = params.get(base)
                if p is None:
                    problems.append("%s: kafka trigger parameter %s is unknown to KEDA's Kafka scaler"
                                    % (where, key))
                    continue
                if key.endswith("FromEnv") and "resolvedEnv" not in p["order"]:
                    problems.append("%s: %s cannot come from the environment" % (where, key))
                if not key.endswith("FromEnv") and "triggerMetadata" not in p["order"]:
                    problems.append("%s: %s belongs in a TriggerAuthentication" % (where, key))
                if "enum" in p and not key.endswith("FromEnv") and value not in p["enum"]:
                    problems.append("%s: %s=%r is not one of %s" % (where, key, value, p["enum"]))
                if not isinstance(value, str):
                    problems.append("%s: %s must be a string (trigger metadata is a string map)"
                                    % (where, key))
                given.add(base)
            for name, p in params.items():
                if not p["optional"] and name not in given:
                    problems.append("%s: the kafka trigger needs %s" % (where, name))
            out.append((where, so, md))
    return out


def check_worker(tree, scaled, problems):
    """The worker Deployment, its ScaledObject, probes and timeouts."""
    deployments = {o["metadata"]["name"]: (w, o) for w, o in tree.objects("Deployment")}
    workers = []
    for name, (where, dep) in deployments.items():
        for pod, path in pod_specs(dep):
            for c in pod.get("containers") or []:
                got = check_container_names(tree, "%s container %s" % (where, c.get("name")), c, problems)
                if got and got[0] == "dtk-worker":
                    workers.append((where, dep, pod, c, got[1]))
    if not workers:
        problems.append("no Deployment runs dtk-worker")
        return
    partitions = request_partitions()
    periods = [cron_period_seconds((o.get("spec") or {}).get("schedule", ""))
               for _, o in tree.objects("CronJob", "k8s")]
    periods = [p for p in periods if p]
    dispatch_period = min(periods) if periods else None
    version = subprocess.run([WORKER, "--version"], capture_output=True, text=True).stdout.split()[-1]
    for where, dep, pod, c, env in workers:
        spec = dep.get("spec") or {}
        if "replicas" in spec:
            problems.append("%s: spec.replicas is set, but KEDA owns the replica count "
                            "(re-applying would reset it)" % where)

        def num(var):
            try:
                return int(env.get(var))
            except (TypeError, ValueError):
                problems.append("%s: %s is not set to a number for the worker" % (where, var))
                return None

        drain, startup, port = num("DTK_DRAIN_TIMEOUT"), num("DTK_STARTUP_TIMEOUT"), num("DTK_METRICS_PORT")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if drain is not None and grace < drain + 15:
            problems.append("%s: terminationGracePeriodSeconds %s is not above DTK_DRAIN_TIMEOUT %s "
                            "plus 15 s to flush, commit and leave the group" % (where, grace, drain))
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        if port is not None and port not in ports.values():
            problems.append("%s: no containerPort is DTK_METRICS_PORT %s" % (where, port))

        def probe(kind, path):
            p = c.get(kind)
            if not p:
                problems.append("%s: no %s" % (where, kind))
                return None
            get = p.get("httpGet") or {}
            target = ports.get(get.get("port"), get.get("port"))
            if get.get("path") != path or target != port:
                problems.append("%s: %s is not GET %s on the metrics port %s (got %s on %s)"
                                % (where, kind, path, port, get.get("path"), target))
            return p.get("initialDelaySeconds", 0) + p.get("periodSeconds", 10) * p.get("failureThreshold", 3)

        live = probe("livenessProbe", "/healthz")
        start = probe("startupProbe", "/healthz")
        probe("readinessProbe", "/readyz")
        if live is not None and drain is not None and live <= HEALTHZ_IDLE_S + drain:
            problems.append("%s: the liveness probe gives up after %d s, not above %d s without a poll "
                            "plus DTK_DRAIN_TIMEOUT %d s (a revoke waits that long)"
                            % (where, live, HEALTHZ_IDLE_S, drain))
        if start is not None and startup is not None and start <= startup:
            problems.append("%s: the startup probe gives up after %d s, before DTK_STARTUP_TIMEOUT %d s: "
                            "a worker waiting for its broker would be killed instead of exiting 1 "
                            "with its message" % (where, start, startup))
        res = c.get("resources") or {}
        for k in ("requests", "limits"):
            if "memory" not in (res.get(k) or {}):
                problems.append("%s: no resources.%s.memory" % (where, k))
        if "cpu" not in (res.get("requests") or {}):
            problems.append("%s: no resources.requests.cpu" % where)
        image = c.get("image", "")
        if image.rpartition(":")[2] != version:
            problems.append("%s: image %s is not tagged with the binaries' version %s" % (where, image, version))
        if c.get("terminationMessagePolicy") != "FallbackToLogsOnError":
            problems.append("%s: terminationMessagePolicy is not FallbackToLogsOnError (the worker's "
                            "last log line says why it exited)" % where)

        # the ScaledObject over this Deployment
        sos = [(w, so, md) for w, so, md in scaled
               if ((so.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == dep["metadata"]["name"]]
        if len(sos) != 1:
            problems.append("%s: %d ScaledObjects scale it (want 1)" % (where, len(sos)))
            continue
        sw, so, md = sos[0]
        sspec = so["spec"]
        ref = sspec.get("scaleTargetRef") or {}
        if ref.get("kind", "Deployment") != "Deployment" or ref.get("envSourceContainerName",
                                                                     c.get("name")) != c.get("name"):
            problems.append("%s: scaleTargetRef does not name the worker container's Deployment" % sw)
        if sspec.get("minReplicaCount") != 1:
            problems.append("%s: minReplicaCount is %r, not 1" % (sw, sspec.get("minReplicaCount")))
        if partitions is None or sspec.get("maxReplicaCount") != partitions:
            problems.append("%s: maxReplicaCount %r is not the request partitions of fleet.md (%r)"
                            % (sw, sspec.get("maxReplicaCount"), partitions))
        if dispatch_period is None:
            problems.append("%s: no dispatch CronJob to take the dispatch period from" % sw)
        else:
            if not sspec.get("cooldownPeriod", 300) > dispatch_period:
                problems.append("%s: cooldownPeriod %r is not above the dispatch period %d s"
                                % (sw, sspec.get("cooldownPeriod", 300), dispatch_period))
            down = (((sspec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {})
                    .get("behavior") or {}).get("scaleDown") or {}
            if not down.get("stabilizationWindowSeconds", 300) > dispatch_period:
                problems.append("%s: the HPA's scaleDown stabilizationWindowSeconds %r is not above the "
                                "dispatch period %d s (with minReplicaCount 1 it, not cooldownPeriod, "
                                "decides scaling down)" % (sw, down.get("stabilizationWindowSeconds", 300),
                                                           dispatch_period))
        # the trigger reads the worker's own settings
        for key, value in md.items():
            if key.endswith("FromEnv"):
                if value not in env or env[value] is None:
                    problems.append("%s: %s names %s, which the worker container does not get from a "
                                    "ConfigMap" % (sw, key, value))
        for key, var in (("bootstrapServers", "DTK_KAFKA_BROKERS"), ("consumerGroup", "DTK_GROUP"),
                         ("topic", "DTK_TOPIC")):
            if key in md and md[key] != env.get(var):
                problems.append("%s: %s %r differs from the worker's %s %r" % (sw, key, md[key], var, env.get(var)))
        if md.get("offsetResetPolicy", "latest") != "earliest":
            problems.append("%s: offsetResetPolicy is not earliest (the worker's auto.offset.reset)" % sw)


def check_dispatch(tree, problems):
    configs = example_configs()
    covered = {}
    for tag, f, where, cj in [(t, f, w, o) for t, f, w, o in tree.docs if o.get("kind") in ("CronJob", "Job")]:
        for pod, _ in pod_specs(cj):
            for c in pod.get("containers") or []:
                cwhere = "%s container %s" % (where, c.get("name"))
                got = check_container_names(tree, cwhere, c, problems)
                if not got or got[0] != "dtk-dispatch":
                    continue
                _, env, words = got
                config_dir = env.get("DTK_CONFIG_DIR")
                mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts") or []}
                vols = {v.get("name"): v for v in pod.get("volumes") or []}
                vol = vols.get(mounts.get(config_dir)) or {}
                cm = (vol.get("configMap") or {}).get("name")
                if cm not in tree.configmaps:
                    problems.append("%s: no ConfigMap of configs mounted at DTK_CONFIG_DIR %r" % (cwhere, config_dir))
                if "DTK_SIGNING_KEY" not in env and "--create-topics" not in words:
                    problems.append("%s: no DTK_SIGNING_KEY: the workers would refuse its requests" % cwhere)
                if cj["kind"] != "CronJob":
                    continue
                spec = cj.get("spec") or {}
                job = (spec.get("jobTemplate") or {}).get("spec") or {}
                period = cron_period_seconds(spec.get("schedule", ""))
                if period is None:
                    problems.append("%s: schedule %r: not a period these checks understand" % (where, spec.get("schedule")))
                    continue
                if job.get("backoffLimit") != 0:
                    problems.append("%s: backoffLimit %r: a retry publishes the requests again (want 0)"
                                    % (where, job.get("backoffLimit")))
                deadline = job.get("activeDeadlineSeconds")
                if not deadline or deadline >= period:
                    problems.append("%s: activeDeadlineSeconds %r is not below the period %d s" % (where, deadline, period))
                if "--wait" in words:
                    t = words[words.index("--timeout") + 1] if "--timeout" in words else None
                    if t is None or not deadline or not int(t) < deadline:
                        problems.append("%s: --timeout %r is not below activeDeadlineSeconds %r" % (where, t, deadline))
                if spec.get("timeZone") not in ("Etc/UTC", "UTC"):
                    problems.append("%s: timeZone %r: the configs' interval grids are UTC" % (where, spec.get("timeZone")))
                # what it selects, and that its schedule is their interval
                rc, selected, err = dispatch_selection(words)
                if rc != 0:
                    problems.append("%s: dtk-dispatch %s --dry-run exits %d: %s" % (where, " ".join(words), rc, err.strip()))
                    continue
                if "--due" in words:
                    if period != 60:
                        problems.append("%s: --due selects the slots starting this minute: run it every minute" % where)
                    continue
                if not selected:
                    problems.append("%s: selects no example config" % where)
                for name in selected:
                    iv = interval_seconds(((configs.get(name) or {}).get("schedule") or {}).get("interval"))
                    if iv != period:
                        problems.append("%s: runs every %d s but selects %s, whose interval is %r s"
                                        % (where, period, name, iv))
                    if tag == "k8s":
                        covered.setdefault(name, []).append(where)
    if not covered and not any(o.get("kind") == "CronJob" for t, _, _, o in tree.docs if t == "k8s"):
        problems.append("deploy/k8s has no dispatch CronJob")
    for name in configs:
        if len(covered.get(name, [])) != 1:
            problems.append("configs/examples/%s is dispatched by %d CronJobs of deploy/k8s (want 1): %s"
                            % (name, len(covered.get(name, [])), covered.get(name, [])))


def check_configmap_of_configs(tree, problems):
    cm = tree.configmaps.get("dtk-configs")
    if cm is None:
        problems.append("no ConfigMap dtk-configs")
        return
    data = cm.get("data") or {}
    files = sorted(f for f in os.listdir(EXAMPLES) if f.endswith((".yaml", ".yml")))
    if sorted(data) != files:
        problems.append("ConfigMap dtk-configs has %s, configs/examples has %s" % (sorted(data), files))
    for f in files:
        if f in data and data[f] != read(os.path.join(EXAMPLES, f)):
            problems.append("ConfigMap dtk-configs: %s differs from configs/examples/%s" % (f, f))


def check_files(tree, problems):
    """kustomization.yaml, the secret examples, the pinned schema hashes, and
    DTK_* names anywhere in the text."""
    kpath = os.path.join(tree.k8s, "kustomization.yaml")
    try:
        with open(kpath) as f:
            kust = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        problems.append("kustomization.yaml: %s" % e)
        kust = {}
    listed = list(kust.get("resources") or [])
    for r in listed:
        if not os.path.isfile(os.path.join(tree.k8s, r)):
            problems.append("kustomization.yaml: resource %s does not exist" % r)
    for f in manifest_files(tree.k8s):
        if f not in listed:
            problems.append("kustomization.yaml does not list %s" % f)
    for example in ("secrets.env.example", "config-secrets.env.example"):
        path = os.path.join(tree.k8s, example)
        if not os.path.exists(path):
            problems.append("no %s" % example)
            continue
        for line, value in env_example_values(path):
            problems.append("%s: a value in the example: %s" % (example, line))
        for n, line in literal_secrets(read(path)):
            if not re.match(r"^#?\s*[A-Za-z_][A-Za-z0-9_]*=$", line):
                problems.append("%s:%d: %s" % (example, n, line))
    keys = tree.secrets.get("dtk-config-secrets", {})
    for k in keys:
        if k.startswith("DTK_"):
            problems.append("config-secrets.env.example: %s would override a worker setting" % k)
    # every ${VAR} without a default that a shipped config uses is a config secret
    for name, text in ((tree.configmaps.get("dtk-configs") or {}).get("data") or {}).items():
        for var in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text):
            if var not in keys:
                problems.append("dtk-configs %s: ${%s} is not in config-secrets.env.example" % (name, var))
    # pinned schemas: the README's hashes
    schemas = os.path.join(tree.k8s, "schemas")
    readme = read(os.path.join(schemas, "README.md"))
    for f in ("keda.sh_scaledobjects.yaml", "keda-kafka-scaler-params.json"):
        with open(os.path.join(schemas, f), "rb") as fh:
            h = hashlib.sha256(fh.read()).hexdigest()
        if h not in readme:
            problems.append("schemas/%s: sha256 %s is not the one schemas/README.md records" % (f, h))
    # DTK_* anywhere (comments too) is known to one of the binaries (not in
    # configs.yaml: its text is the configs', checked against configs/examples)
    union = union_names(Help.of("dtk-worker"), Help.of("dtk-dispatch"))
    for d in (tree.k8s, tree.integrations):
        for f in sorted(os.listdir(d)):
            path = os.path.join(d, f)
            if not os.path.isfile(path) or f == "configs.yaml":
                continue
            for var in sorted(set(VAR_RE.findall(read(path)))):
                if not var_known(var, union[1], union[2]):
                    problems.append("%s: %s is in neither binary's --help" % (f, var))


def problems(k8s=K8S, integrations=INTEGRATIONS):
    out = []
    tree = Tree(k8s, integrations, out)
    check_objects(tree, out)
    check_worker(tree, check_keda(tree, out), out)
    check_dispatch(tree, out)
    check_configmap_of_configs(tree, out)
    check_files(tree, out)
    return out


# ---- tests -----------------------------------------------------------------

class Manifests(unittest.TestCase):
    def test_no_problems(self):
        found = problems()
        self.assertEqual(found, [], "\n".join(found))

    def test_objects(self):
        """What the issue asks for is there."""
        tree = Tree(K8S, INTEGRATIONS, [])
        kinds = sorted(o["kind"] for t, _, _, o in tree.docs if t == "k8s")
        for kind in ("Deployment", "ScaledObject", "ConfigMap", "CronJob", "Service"):
            self.assertIn(kind, kinds)
        self.assertGreaterEqual(kinds.count("CronJob"), 2)
        self.assertEqual([o["kind"] for t, _, _, o in tree.docs if t == "integrations"], ["CronJob"])
        self.assertNotIn("Secret", kinds)
        self.assertEqual(request_partitions(), 24)
        self.assertEqual(cron_period_seconds("*/5 * * * *"), 300)
        self.assertEqual(cron_period_seconds("0 * * * *"), 3600)
        self.assertEqual(cron_period_seconds("* * * * *"), 60)
        self.assertIsNone(cron_period_seconds("*/7 * * * *"))
        self.assertEqual(interval_seconds("1 hour"), 3600)
        self.assertEqual(interval_seconds("10 minutes"), 600)
        self.assertTrue(default_allow_env())

    def test_schemas_ship_with_the_package(self):
        """kubernetes-validate validates offline: its schemas are files of the package."""
        import importlib.resources
        root = importlib.resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
        for v in K8S_VERSIONS:
            d = root.joinpath("v%s.0-local-strict" % v)
            self.assertTrue(d.joinpath("deployment-apps-v1.json").is_file(), d)
            self.assertTrue(d.joinpath("cronjob-batch-v1.json").is_file(), d)

    def test_broken_copies_are_caught(self):
        """Each deliberate breakage of a copy is reported."""
        cases = [
            # (file, old, new, a word the problem must contain)
            ("worker-deployment.yaml", "terminationGracePeriodSeconds: 60",
             "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds"),
            ("worker-deployment.yaml", "          livenessProbe:", "          livenesProbe:",
             "'livenesProbe' was unexpected"),
            ("worker-deployment.yaml", "containerPort: 9464", 'containerPort: "9464x"',
             "is not of type 'integer'"),
            ("worker-deployment.yaml", "            failureThreshold: 18", "            failureThreshold: 6",
             "startup probe"),
            ("worker-deployment.yaml", "  revisionHistoryLimit: 5\n", "  revisionHistoryLimit: 5\n  replicas: 2\n",
             "spec.replicas"),
            ("worker-deployment.yaml", "                  key: DTK_REDIS_URL",
             "                  key: DTK_REDIS_URI", "DTK_REDIS_URI is not in the example"),
            ("worker-deployment.yaml",
             "            - name: DTK_SIGNING_KEYS\n              valueFrom:\n                secretKeyRef:\n"
             "                  name: dtk-secrets\n                  key: DTK_SIGNING_KEYS\n"
             "                  optional: true\n",
             "            - name: DTK_SIGNING_KEYS\n              value: hunter2\n", "literal secret"),
            ("worker-deployment.yaml", "  selector:\n    matchLabels:", "  selector:\n    matchLabel:",
             "matchLabel"),
            ("worker-scaledobject.yaml", "minReplicaCount: 1", 'minReplicaCount: "one"', "KEDA CRD schema"),
            ("worker-scaledobject.yaml", "cooldownPeriod: 600", "cooldownPeriods: 600",
             "spec.cooldownPeriods is not in the KEDA CRD schema"),
            ("worker-scaledobject.yaml", "cooldownPeriod: 600", "cooldownPeriod: 120", "cooldownPeriod 120"),
            ("worker-scaledobject.yaml", 'lagThreshold: "20"', 'lagTreshold: "20"', "lagTreshold is unknown"),
            ("worker-scaledobject.yaml", "maxReplicaCount: 24", "maxReplicaCount: 30", "maxReplicaCount 30"),
            ("worker-scaledobject.yaml", "topicFromEnv: DTK_TOPIC", "topicFromEnv: DTK_TOPICS",
             "DTK_TOPICS"),
            ("worker-scaledobject.yaml", "offsetResetPolicy: earliest", "offsetResetPolicy: oldest",
             "offsetResetPolicy='oldest'"),
            ("dispatch-cronjobs.yaml", '"--tags", "ops", "--wait"', '"--tags", "ops", "--wiat"',
             "--wiat is not in dtk-dispatch --help"),
            ("dispatch-cronjobs.yaml", 'schedule: "*/10 * * * *"', 'schedule: "*/5 * * * *"',
             "orders_10min.yaml, whose interval"),
            ("dispatch-cronjobs.yaml", '"--tags", "growth"', '"--tags", "sales"', "dispatched by 2 CronJobs"),
            ("dispatch-cronjobs.yaml", "      backoffLimit: 0\n      activeDeadlineSeconds: 270",
             "      backoffLimit: 3\n      activeDeadlineSeconds: 270", "backoffLimit 3"),
            ("settings.yaml", 'DTK_CONCURRENCY: "4"', 'DTK_CONCURENCY: "4"',
             "DTK_CONCURENCY is not in dtk-worker --help"),
            ("settings.yaml", 'DTK_LOG_FORMAT: "json"', 'DTK_LOG_FORMAT: "json"\n  DTK_SIGNING_KEY: "hunter2"',
             "literal secret"),
            ("settings.yaml", "  name: dtk-worker-settings", "  name: dtk-worker-setting",
             "envFrom ConfigMap dtk-worker-settings does not exist"),
            ("settings.yaml", "data:\n  DTK_GROUP", "data:\n  DTK_GROUP: [\n  DTK_GROUP", "YAML"),
            ("configs.yaml", "    base: 120", "    base: 121", "differs from configs/examples"),
            ("secrets.env.example", "DTK_SIGNING_KEY=\n", "DTK_SIGNING_KEY=hunter2\n", "a value in the example"),
            ("kustomization.yaml", "  - worker-pdb.yaml\n", "  - worker-pdb.yaml\n  - worker-hpa.yaml\n",
             "worker-hpa.yaml does not exist"),
            ("kustomization.yaml", "  - worker-pdb.yaml\n", "", "does not list worker-pdb.yaml"),
            ("schemas/keda-kafka-scaler-params.json", '"name": "lagThreshold"', '"name": "lagThresh"',
             "sha256"),
            ("../integrations/dtk-dispatch-due-cronjob.yaml", 'args: ["--due"]', 'args: ["--due", "--wait"]',
             "--timeout None is not below"),
            ("../integrations/dtk-dispatch-due-cronjob.yaml", 'schedule: "* * * * *"',
             'schedule: "*/5 * * * *"', "run it every minute"),
            ("../integrations/dtk-dispatch-due-cronjob.yaml", "  timeZone: Etc/UTC\n", "  timeZone: Local\n",
             "timeZone 'Local'"),
        ]
        with tempfile.TemporaryDirectory() as tmp:
            k8s, integ = os.path.join(tmp, "k8s"), os.path.join(tmp, "integrations")
            for fname, old, new, expect in cases:
                for d in (k8s, integ):
                    shutil.rmtree(d, ignore_errors=True)
                shutil.copytree(K8S, k8s)
                shutil.copytree(INTEGRATIONS, integ)
                self.assertEqual(problems(k8s, integ), [], "the unbroken copy has problems")
                path = os.path.normpath(os.path.join(k8s, fname))
                text = read(path)
                self.assertEqual(text.count(old), 1, "%s: %r must occur once" % (fname, old))
                with open(path, "w") as f:
                    f.write(text.replace(old, new))
                found = problems(k8s, integ)
                if os.environ.get("DTK_SHOW_PROBLEMS"):
                    print("%s: %r -> %r:\n  %s" % (fname, old, new, "\n  ".join(found)))
                self.assertTrue(any(expect in p for p in found),
                                "%s: %r -> %r: no problem mentions %r; found:\n%s"
                                % (fname, old, new, expect, "\n".join(found) or "(none)"))


class Kustomize(unittest.TestCase):
    def test_renders_and_validates(self):
        kubectl = shutil.which("kubectl")
        ver = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True,
                             timeout=60).stdout if kubectl else ""
        if not re.search(r"Kustomize Version: v[5-9]", ver):
            self.skipTest("no kubectl with kustomize v5+ (not packaged by Debian 12); "
                          "the manifests were validated one by one")
        out = subprocess.run([kubectl, "kustomize", K8S], capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        docs = [d for d in yaml.safe_load_all(out.stdout) if d]
        files = []
        for f in manifest_files(K8S):
            with open(os.path.join(K8S, f)) as fh:
                files.extend(d for d in yaml.safe_load_all(fh) if d)
        self.assertEqual(sorted((d["kind"], d["metadata"]["name"]) for d in docs),
                         sorted((d["kind"], d["metadata"]["name"]) for d in files))
        for d in docs:
            if d["kind"] != "Namespace":
                self.assertEqual(d["metadata"].get("namespace"), "detectk", d["metadata"])
            if d["kind"] == "ScaledObject":
                continue
            for v in K8S_VERSIONS:
                kubernetes_validate.validate(copy.deepcopy(d), v, strict=True)
        self.assertIn("image: detectk-c:0.1.0", out.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
