"""What the tests that point an http collector at a local server share: the
server (a JSON value, after a delay, failing on request), the check config
that collects from it, and a port nothing listens on. Standard library only:
test_prefect.py imports it inside the Prefect venv. Not a test itself (no
test_ prefix)."""
import http.server
import json
import re
import socket
import threading
import time

HTTP_CHECK = """\
name: {name}
{tags}collector:
  type: http
  params: {{url: "{url}", value_path: value, retry_count: 0, timeout: {timeout}}}
detector: {{type: threshold, params: {{threshold: 1000}}}}
storage: {{type: sqlite, params: {{path: "{db}"}}}}
schedule: {{interval: "10 minutes", timeout: "{deadline}"}}
"""


def http_check(name, url, db, timeout, deadline="10 minutes", tags=None):
    """The YAML of check name: one try of timeout seconds to read `value`
    from url, threshold 1000, stored in the SQLite file db, deadline the
    schedule's timeout; a tags line only when tags (a list) is given."""
    tag_line = "" if tags is None else "tags: %s\n" % json.dumps(tags)
    return HTTP_CHECK.format(name=name, tags=tag_line, url=url, timeout=timeout, db=db,
                             deadline=deadline)


class _JsonHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        with server.lock:
            server.paths.append(self.path)
            n = server.paths.count(self.path)
        m = re.match(r"/fail/(\d+)/", self.path)
        if m and n <= int(m.group(1)):
            self.send_response(500)
            self.end_headers()
            return
        time.sleep(server.delay)
        body = json.dumps({"value": server.value}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class JsonServer(http.server.ThreadingHTTPServer):
    """Serves on 127.0.0.1 (self.url) from a daemon thread: every GET
    answers {"value": value} after delay seconds, except that a path
    /fail/N/... answers 500 to its first N requests. Thread-safe."""

    def __init__(self, value=5, delay=0.0):
        super().__init__(("127.0.0.1", 0), _JsonHandler)
        self.value, self.delay = value, delay
        self.lock = threading.Lock()
        self.paths = []
        self.url = "http://127.0.0.1:%d" % self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def seen(self):
        """A new list of the paths requested so far, in arrival order."""
        with self.lock:
            return list(self.paths)

    def stop(self):
        self.shutdown()
        self.server_close()


def serve_json(test, value=5, delay=0.0):
    """A started JsonServer that test (a unittest.TestCase) stops at its
    cleanup."""
    server = JsonServer(value, delay)
    test.addCleanup(server.stop)
    return server


def closed_port():
    """A local TCP port that was free a moment ago: connecting is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
