"""Check request v1 on the wire (fleet.md): what the C encoder writes validates
against schemas/check-request.v1.json, the schema and the C decoder agree on
what a request is, and the results a worker publishes without running a check
(rejected, expired) validate against schemas/check-result.v1.json.

The C side is driven through $DTK_BINARY_DIR/tests/msg_tool (tests/tools/msg_tool.c).
"""

import copy
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import unittest

import jsonschema

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cli_helpers import BINARY_DIR, SOURCE_DIR, result_validator  # noqa: E402

MSG_TOOL = os.path.join(BINARY_DIR, "tests", "msg_tool")
REQUEST_SCHEMA = os.path.join(SOURCE_DIR, "schemas", "check-request.v1.json")

RID = "0b7e1e52-9d5b-4e40-8c1e-0e4b5c7d2a11"
DID = "5f0c2a9e-3b7d-4c1a-9e8f-1a2b3c4d5e6f"
CONFIG = ("name: cpu_load\n# caf\u00e9 \U0001F600 \"quoted\" \\ ${CH_PASS}\n"
          "collector:\n  type: clickhouse\n  params: {profile: ch}\n")
PROFILES = {"ch": {"type": "clickhouse", "host": "ch1", "password": "${CH_PASS}"}}
# 2024-11-02T14:30:00Z, dispatched 5.123 s later, one minute to run
EXEC, DISPATCHED_MS, DEADLINE_MS = 1730557800, 1730557805123, 1730557865123

REQUIRED = ["schema", "request_id", "dispatch_id", "metric", "config_yaml", "config_sha256",
            "profiles", "execution_time", "dispatched_at", "deadline", "tags", "attempt",
            "options", "options.store", "options.alerts"]


def request_validator():
    with open(REQUEST_SCHEMA, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def tool(*args, stdin=b""):
    p = subprocess.run([MSG_TOOL, *args], input=stdin, capture_output=True, timeout=30)
    if p.returncode == 2:
        raise AssertionError("msg_tool usage error: %s" % p.stderr.decode())
    return p


def set_path(doc, path, value):
    *parents, key = path.split(".")
    for p in parents:
        doc = doc[p]
    doc[key] = value


def del_path(doc, path):
    *parents, key = path.split(".")
    for p in parents:
        doc = doc[p]
    del doc[key]


class RequestSchemaCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.validator = request_validator()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.config_path = os.path.join(cls.tmp.name, "cpu_load.yaml")
        with open(cls.config_path, "w", encoding="utf-8") as f:
            f.write(CONFIG)
        cls.base_bytes = cls.encode()
        cls.base = json.loads(cls.base_bytes)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def encode(cls, *extra):
        p = tool("encode", "--metric", "cpu_load", "--config", cls.config_path,
                 "--request-id", RID, "--dispatch-id", DID,
                 "--profiles", json.dumps(PROFILES), "--tags", "critical,db",
                 "--execution-time", str(EXEC), "--dispatched-at-ms", str(DISPATCHED_MS),
                 "--deadline-ms", str(DEADLINE_MS), *extra)
        if p.returncode != 0:
            raise AssertionError("encode failed: %s" % p.stderr.decode())
        return p.stdout

    def decode(self, data, *extra):
        if not isinstance(data, bytes):
            data = json.dumps(data).encode()
        p = tool("decode", "--allow-unsigned", *extra, stdin=data)
        out = json.loads(p.stdout)
        self.assertEqual(p.returncode, 0 if out["code"] == "ok" else 1, out)
        return out

    def schema_errors(self, doc):
        return list(self.validator.iter_errors(doc))


class EncoderOutput(RequestSchemaCase):
    def test_encoded_request_validates(self):
        self.assertEqual(self.schema_errors(self.base), [])

    def test_encoded_fields_are_fleet_md_values(self):
        d = self.base
        self.assertEqual(d["schema"], "dtk.check.request/v1")
        self.assertEqual((d["request_id"], d["dispatch_id"], d["metric"]), (RID, DID, "cpu_load"))
        self.assertEqual(d["config_yaml"], CONFIG)
        self.assertEqual(d["config_sha256"], hashlib.sha256(CONFIG.encode()).hexdigest())
        self.assertEqual(d["profiles"], PROFILES)
        self.assertEqual(d["execution_time"], "2024-11-02T14:30:00Z")
        self.assertEqual(d["dispatched_at"], "2024-11-02T14:30:05.123Z")
        self.assertEqual(d["deadline"], "2024-11-02T14:31:05.123Z")
        self.assertEqual(d["tags"], ["critical", "db"])
        self.assertEqual(d["attempt"], 1)
        self.assertEqual(d["options"], {"store": True, "alerts": True})

    def test_encoding_is_compact_ascii_json(self):
        self.assertTrue(all(b < 0x80 for b in self.base_bytes))
        self.assertEqual(self.base_bytes,
                         json.dumps(self.base, separators=(",", ":")).encode())

    def test_options_and_fresh_ids_validate(self):
        raw = tool("encode", "--metric", "m-2", "--config", self.config_path,
                   "--no-store", "--no-alerts", "--reply-to", "team.results_1",
                   "--attempt", "3").stdout
        d = json.loads(raw)
        self.assertEqual(self.schema_errors(d), [])
        self.assertEqual(d["options"], {"store": False, "alerts": False,
                                        "reply_to": "team.results_1"})
        self.assertEqual((d["profiles"], d["tags"], d["attempt"]), ({}, [], 3))
        for key in ("request_id", "dispatch_id"):
            self.assertEqual(d[key][14], "4", "a version 4 UUID")
            self.assertIn(d[key][19], "89ab", "the RFC 4122 variant")
        self.assertNotEqual(d["request_id"], d["dispatch_id"])

    def test_decoding_then_encoding_gives_the_same_bytes(self):
        out = self.decode(self.base_bytes)
        self.assertEqual(out["code"], "ok")
        self.assertEqual(out["reencoded"].encode(), self.base_bytes)
        self.assertEqual(out["request"], self.base)


class SchemaAndDecoderAgree(RequestSchemaCase):
    """The schema is not vacuous, and it refuses what the C decoder refuses."""

    def test_every_required_field_missing_is_refused_by_both(self):
        for path in REQUIRED:
            with self.subTest(path=path):
                doc = copy.deepcopy(self.base)
                del_path(doc, path)
                self.assertNotEqual(self.schema_errors(doc), [], "schema took it")
                out = self.decode(doc)
                self.assertEqual(out["code"], "missing_field")
                self.assertEqual(out["stage"], "schema")
                self.assertEqual(out["error"], "field '%s' is missing" % path)

    def test_reply_to_is_optional_for_both(self):
        for value in (None, "other-results"):
            doc = copy.deepcopy(self.base)
            set_path(doc, "options.reply_to", value)
            self.assertEqual(self.schema_errors(doc), [])
            self.assertEqual(self.decode(doc)["code"], "ok")

    def test_mutations_are_judged_alike(self):
        cases = [
            # (path, value, accepted, C code when refused)
            ("schema", "dtk.check.request/v1.4", True, None),
            ("schema", "dtk.check.request/v2", False, "unknown_schema"),
            ("schema", "dtk.check.request/v10", False, "unknown_schema"),
            ("schema", "dtk.check.result/v1", False, "unknown_schema"),
            ("schema", 1, False, "bad_field"),
            ("request_id", "abc", False, "bad_field"),
            ("request_id", RID.upper(), False, "bad_field"),
            ("request_id", None, False, "bad_field"),
            ("dispatch_id", RID.replace("-", ""), False, "bad_field"),
            ("metric", "cpu load", False, "bad_field"),
            ("metric", "", False, "bad_field"),
            ("metric", ["cpu_load"], False, "bad_field"),
            ("config_yaml", 5, False, "bad_field"),
            ("config_sha256", "ABC", False, "bad_field"),
            ("config_sha256", self.base["config_sha256"].upper(), False, "bad_field"),
            ("profiles", [], False, "bad_field"),
            ("profiles", {"ch": "clickhouse"}, False, "bad_field"),
            ("profiles", {}, True, None),
            ("execution_time", "2024-11-02T14:30:00.5Z", True, None),
            ("execution_time", "2024-11-02 14:30:00Z", False, "bad_field"),
            ("execution_time", "2024-11-02T14:30:00+00:00", False, "bad_field"),
            ("execution_time", "2024-11-02T14:30:00", False, "bad_field"),
            ("execution_time", 1730557800, False, "bad_field"),
            ("dispatched_at", "2024-11-02T14:30:05Z", True, None),
            ("dispatched_at", "2024-11-02T14:30:05.123456789Z", True, None),
            ("dispatched_at", "2024-11-02T14:30:05.1234567891Z", False, "bad_field"),
            ("deadline", "soon", False, "bad_field"),
            ("tags", [], True, None),
            ("tags", "critical", False, "bad_field"),
            ("tags", ["a", 1], False, "bad_field"),
            ("attempt", 0, True, None),
            ("attempt", -1, False, "bad_field"),
            ("attempt", 1.5, False, "bad_field"),
            ("attempt", "1", False, "bad_field"),
            ("attempt", True, False, "bad_field"),
            ("options", [], False, "bad_field"),
            ("options.store", "true", False, "bad_field"),
            ("options.alerts", 1, False, "bad_field"),
            ("options.reply_to", "two words", False, "bad_field"),
            ("options.reply_to", "", False, "bad_field"),
            ("options.reply_to", "t" * 250, False, "bad_field"),
            ("options.reply_to", 7, False, "bad_field"),
        ]
        for path, value, accepted, code in cases:
            with self.subTest(path=path, value=value):
                doc = copy.deepcopy(self.base)
                set_path(doc, path, value)
                self.assertEqual(self.schema_errors(doc) == [], accepted, "schema")
                out = self.decode(doc)
                self.assertEqual(out["code"], "ok" if accepted else code, out["error"])
                if not accepted:
                    self.assertIn("schema" if code == "unknown_schema" else "'" + path,
                                  out["error"])
                    # the request id is read for the `rejected` result
                    if path != "request_id":
                        self.assertEqual(out["request_id"], RID)

    def test_unknown_fields_are_accepted_by_both(self):
        doc = copy.deepcopy(self.base)
        doc["priority"] = {"level": [1, 2.5]}
        doc["options"]["shadow"] = True
        self.assertEqual(self.schema_errors(doc), [])
        self.assertEqual(self.decode(doc)["code"], "ok")

    def test_hash_mismatch_is_for_the_decoder_alone(self):
        doc = copy.deepcopy(self.base)
        doc["config_yaml"] += "# appended in flight\n"
        self.assertEqual(self.schema_errors(doc), [], "a schema cannot see hashes")
        out = self.decode(doc)
        self.assertEqual((out["code"], out["stage"]), ("sha_mismatch", "schema"))
        self.assertIn("config_sha256", out["error"])


class Envelope(RequestSchemaCase):
    def test_envelope_failures_have_their_codes(self):
        for data, code in [(b"", "not_json"), (b"{not json", "not_json"),
                           (b'{"a": NaN}', "not_json"), (b"[]", "not_object"),
                           (b'"x"', "not_object")]:
            with self.subTest(data=data):
                out = self.decode(data)
                self.assertEqual((out["code"], out["stage"]), (code, "envelope"))
                self.assertIsNone(out["request_id"])

    def test_oversize(self):
        n = len(self.base_bytes)
        self.assertEqual(self.decode(self.base_bytes, "--max", str(n))["code"], "ok")
        out = self.decode(self.base_bytes, "--max", str(n - 1))
        self.assertEqual((out["code"], out["stage"]), ("oversize", "envelope"))


class Signatures(RequestSchemaCase):
    def sign(self, key):
        p = tool("sign", key, stdin=self.base_bytes)
        self.assertEqual(p.returncode, 0)
        return p.stdout.decode().strip()

    def test_signature_is_hmac_sha256_of_the_value_bytes(self):
        want = hmac.new(b"s3cret", self.base_bytes, hashlib.sha256).hexdigest()
        self.assertEqual(self.sign("s3cret"), "sha256=" + want)

    def test_verify_with_rotated_keys(self):
        sig = self.sign("old")

        def run(*args):
            p = tool("decode", *args, stdin=self.base_bytes)
            return json.loads(p.stdout)

        self.assertEqual(run("--signature", sig, "--keys", "new,old")["code"], "ok")
        out = run("--signature", sig, "--keys", "new")
        self.assertEqual((out["code"], out["stage"]), ("bad_signature", "signature"))
        self.assertEqual(out["request_id"], RID)
        self.assertIsNone(out["request"])
        out = run("--keys", "new")
        self.assertEqual((out["code"], out["stage"]), ("unsigned", "signature"))
        self.assertEqual(run("--keys", "new", "--allow-unsigned")["code"], "ok")


class Results(RequestSchemaCase):
    def result(self, kind, data, *extra):
        p = tool(kind, "--now-ms", str(DEADLINE_MS + 500), *extra, stdin=data)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        doc = json.loads(p.stdout)
        errors = list(result_validator().iter_errors(doc))
        self.assertEqual(errors, [], "%s result does not validate: %s" % (kind, errors[:1]))
        return doc

    def test_rejected_result_of_a_request_whose_config_did_not_load(self):
        doc = self.result("rejected", self.base_bytes, "--message",
                          "start the worker with --storage")
        self.assertEqual(doc["status"], "rejected")
        self.assertEqual((doc["request_id"], doc["dispatch_id"], doc["metric"]),
                         (RID, DID, "cpu_load"))
        self.assertEqual(doc["errors"], [{"stage": "config",
                                          "message": "start the worker with --storage"}])
        self.assertIsNone(doc["datapoint"])
        self.assertEqual((doc["detections"], doc["alerts"]), ([], []))
        self.assertEqual(doc["alert"], {"sent": False, "reason": None, "suppressed_by": None})
        self.assertEqual(doc["tags"], ["critical", "db"])
        self.assertEqual(doc["execution_time"], "2024-11-02T14:30:00Z")
        self.assertEqual(doc["timings_ms"]["queued"], DEADLINE_MS + 500 - DISPATCHED_MS)

    def test_rejected_result_of_a_refused_request_keeps_its_id(self):
        doc = copy.deepcopy(self.base)
        del doc["attempt"]
        res = self.result("rejected", json.dumps(doc).encode())
        self.assertEqual(res["request_id"], RID)
        self.assertEqual(res["errors"][0]["message"], "field 'attempt' is missing")

    def test_rejected_result_without_any_id(self):
        res = self.result("rejected", b"not json at all")
        self.assertIsNone(res["request_id"])
        self.assertIsNone(res["dispatch_id"])
        self.assertEqual(res["metric"], "unknown")

    def test_expired_result(self):
        res = self.result("expired", self.base_bytes)
        self.assertEqual(res["status"], "expired")
        self.assertEqual(res["errors"], [])
        self.assertIn("2024-11-02T14:31:05.123Z", res["warnings"][0])
        self.assertEqual(res["finished_at"], "2024-11-02T14:31:05.623Z")


class Headers(RequestSchemaCase):
    def test_cloudevents_headers(self):
        sig = tool("sign", "k", stdin=self.base_bytes).stdout.decode().strip()
        p = tool("headers", "request", "--source", "//dtk-dispatch/host1", "--signature", sig,
                 stdin=self.base_bytes)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(json.loads(p.stdout), {
            "ce_specversion": "1.0", "ce_type": "dtk.check.request.v1", "ce_id": RID,
            "ce_source": "//dtk-dispatch/host1", "ce_time": "2024-11-02T14:30:05.123Z",
            "content-type": "application/json", "dtk-signature": sig})
        res = tool("expired", "--now-ms", str(DEADLINE_MS), stdin=self.base_bytes).stdout
        p = tool("headers", "result", "--source", "//dtk-worker/w1", stdin=res)
        self.assertEqual(json.loads(p.stdout), {
            "ce_specversion": "1.0", "ce_type": "dtk.check.result.v1", "ce_id": RID,
            "ce_source": "//dtk-worker/w1", "ce_time": "2024-11-02T14:31:05.123Z",
            "content-type": "application/json"})


if __name__ == "__main__":
    unittest.main(verbosity=1)
