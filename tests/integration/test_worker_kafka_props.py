"""dtk-worker's librdkafka properties on a running worker (worker.md "Flags,
variables and the settings file"): the settings file's kafka_prop list loses
to DTK_KAFKA_PROP_<NAME> variables, which lose to --kafka-prop flags (a flag
replaces the file's list, as every flag does); the user's properties beat
the worker's defaults; one list serves both clients, so a consumer-only or
producer-only property is accepted (librdkafka says the other client ignores
it); a secret never shows in the log.

What each client really got is read from librdkafka's own dump of its
configuration (the `debug=conf` property, logged at --log-level debug): one
"Client configuration:" block per client, listing every property that
differs from librdkafka's default, with secrets "[redacted]".

Runs against the real Kafka broker of scripts/services.sh: the worker builds
its consumer only once a broker answers. Without DTK_KAFKA_BROKERS it skips
(exit 77) unless DTK_REQUIRE_SERVICES=1."""
import json
import os
import re
import signal
import subprocess
import time
import unittest

from kafka_helpers import BROKERS, WORKER, KafkaHelpers

PASSWORD = "kafka-props-pw-5813"
CONF_LINE = re.compile(r"^librdkafka CONF: \[thrd:app\]: +(\S+) = (.*)$")


class KafkaProps(KafkaHelpers, unittest.TestCase):
    KEY = "kafka-props-key"

    def setUp(self):
        self.fleet_setup("dtk-kp-%d-%s" % (os.getpid(), self._testMethodName[-10:]))
        self.feed("create", "1", self.topic, self.results, self.dlq)
        # every run dumps both configurations
        self.env["DTK_KAFKA_PROP_DEBUG"] = "conf"

    def settings_file(self, props):
        return self.config("worker-settings", "kafka_prop:\n" +
                           "".join("  - %s\n" % p for p in props))

    def run_worker(self, *args, env=None):
        """Starts the worker, waits for its consumer's configuration dump,
        drains it: ({"producer": {name: value}, "consumer": {...}}, the
        JSON log records)."""
        log = os.path.join(self.tmp.name, "worker-%d.log" % len(self.procs))

        def output():
            with open(log) as f:
                return f.read()

        e = dict(self.env)
        e.update(env or {})
        with open(log, "w") as f:
            p = subprocess.Popen([WORKER, "--brokers", BROKERS, "--group", self.group,
                                  "--topic", self.topic, "--results-topic", self.results,
                                  "--dlq-topic", self.dlq, "--startup-timeout", "30",
                                  "--log-level", "debug", *args],
                                 env=e, stdout=f, stderr=f)
        self.procs.append((p, log))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            if re.search(r"client\.id = \S+-consumer", output()):
                break
            time.sleep(0.2)
        # the dump is written in one go by rd_kafka_new
        time.sleep(1)
        self.assertIsNone(p.poll(), "the worker exited: " + output()[-3000:])
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=60), 0, output()[-3000:])
        text = output()
        self.assertNotIn(PASSWORD, text)
        records = [json.loads(line) for line in text.splitlines()]
        confs, current = {}, None
        for r in records:
            if r["msg"].endswith("Client configuration:"):
                current = {}
                continue
            m = CONF_LINE.match(r["msg"])
            if m and current is not None:
                current[m.group(1)] = m.group(2)
                if m.group(1) == "client.id":
                    confs[m.group(2).rpartition("-")[2]] = current
            elif r["msg"].startswith("librdkafka CONF:"):
                current = None  # the topic configuration
        self.assertEqual(sorted(confs), ["consumer", "producer"], text[-3000:])
        return confs, records

    def test_file_then_environment_then_flags(self):
        path = self.settings_file(["client.rack=from-file", "fetch.max.bytes=2097152"])
        env = {"DTK_KAFKA_PROP_CLIENT_RACK": "from-env",
               "DTK_KAFKA_PROP_SASL_PASSWORD": PASSWORD}
        # the environment beats the file; the file beats the worker's defaults
        confs, _ = self.run_worker("--config", path, env=env)
        for client in ("consumer", "producer"):
            self.assertEqual(confs[client]["client.rack"], "from-env", client)
            self.assertEqual(confs[client]["sasl.password"], "[redacted]", client)
        self.assertEqual(confs["consumer"]["fetch.max.bytes"], "2097152")
        # flags beat the environment and replace the file's list: the
        # worker's own fetch.max.bytes is back
        confs, _ = self.run_worker("--config", path, "--kafka-prop", "client.rack=from-flag",
                                   env=env)
        consumer, producer = confs["consumer"], confs["producer"]
        for client in (consumer, producer):
            self.assertEqual(client["client.rack"], "from-flag")
        self.assertEqual(consumer["fetch.max.bytes"], "1048576")
        # and the worker's defaults are there
        self.assertEqual(consumer["group.id"], self.group)
        self.assertEqual(consumer["enable.auto.offset.store"], "false")
        self.assertEqual(consumer["enable.auto.commit"], "true")
        self.assertEqual(consumer["enable.partition.eof"], "false")
        self.assertEqual(consumer["queued.max.messages.kbytes"], "4096")
        self.assertEqual(consumer["fetch.message.max.bytes"], "262144")
        self.assertTrue(consumer["client.id"].endswith("-consumer"))
        self.assertNotIn("statistics.interval.ms", consumer)  # no --metrics-port
        self.assertEqual(producer["enable.idempotence"], "false")
        self.assertEqual(producer["max.in.flight.requests.per.connection"], "1")
        self.assertEqual(producer["queue.buffering.max.ms"], "1")  # linger.ms
        self.assertTrue(producer["client.id"].endswith("-producer"))

    def test_a_property_of_one_client_type_is_accepted_for_both(self):
        confs, records = self.run_worker("--kafka-prop", "session.timeout.ms=7000",
                                         "--kafka-prop", "compression.codec=lz4")
        self.assertEqual(confs["consumer"]["session.timeout.ms"], "7000")
        self.assertEqual(confs["producer"]["compression.codec"], "lz4")
        warnings = [r["msg"] for r in records if r["level"] == "warn"]
        self.assertTrue(any("session.timeout.ms is a consumer property and will be ignored by "
                            "this producer" in w for w in warnings), warnings)
        self.assertTrue(any("compression.codec is a producer property and will be ignored by "
                            "this consumer" in w for w in warnings), warnings)
        self.assertFalse([r for r in records if r["level"] == "error"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
