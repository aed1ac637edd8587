#!/usr/bin/env python3
"""A local HTTP receiver for the integration tests: the Mattermost, Slack and
webhook endpoints alerts are delivered to, and a scriptable stand-in for HTTP
and Prometheus data sources.

Every request outside /_dtk/ is recorded (method, path, query, headers, body
as text and as parsed JSON when it is JSON, arrival time) in memory and as one
JSON line in --log, then answered with the next scripted response for the
longest matching path prefix, or 200 {"ok": true}.

Control API (JSON in and out):
  GET  /_dtk/health                      200 {"ok": true}
  GET  /_dtk/requests?path=P[&method=M][&min=N&timeout=S]
                                         {"requests": [...]}; with min, waits up
                                         to S seconds for at least N of them
  POST /_dtk/reset[?path=P]              forgets requests, scripts and
                                         concurrency for paths under P (all)
  POST /_dtk/script                      {"path": P, "method": M (optional),
                                          "responses": [R, ...]}: consumed in
                                         order, the last one repeats; R is
                                         {"status", "headers", "body" (text) or
                                          "json" (any value), "content_type",
                                          "delay" (seconds), "drop" (close the
                                          connection without answering)}
  GET  /_dtk/scripts                     the scripts in place
  GET  /_dtk/concurrency?path=P          {"max_in_flight", "in_flight",
                                          "requests"} for paths under P

Parallel tests share one receiver: each uses its own path prefix and passes it
to every call. Python 3 standard library only.
"""

import argparse
import http.server
import json
import os
import signal
import socketserver
import sys
import threading
import time
import urllib.parse

MAX_BODY = 16 * 1024 * 1024
MAX_RECORDS = 20000
MAX_DELAY = 600.0


class State:
    """Recorded requests, scripts and in-flight intervals; one lock guards it all."""

    def __init__(self, log_path):
        self.lock = threading.Condition()
        self.records = []
        self.scripts = {}
        self.seq = 0
        self.event = 0
        self.log = open(log_path, "a", encoding="utf-8") if log_path else None

    def next_event(self):
        self.event += 1
        return self.event

    def begin(self, record):
        """Stores a request and returns the response to give it."""
        with self.lock:
            self.seq += 1
            record["seq"] = self.seq
            record["_start"] = self.next_event()
            record["_end"] = None
            response = self.take_response(record["method"], record["path"])
            record["response"] = {"status": response.get("status", 200),
                                  "delay": response.get("delay", 0),
                                  "drop": bool(response.get("drop"))}
            self.records.append(record)
            if len(self.records) > MAX_RECORDS:
                del self.records[: len(self.records) - MAX_RECORDS]
            if self.log:
                self.log.write(json.dumps(public(record), ensure_ascii=False) + "\n")
                self.log.flush()
            self.lock.notify_all()
            return response

    def end(self, record):
        with self.lock:
            record["_end"] = self.next_event()

    def take_response(self, method, path):
        best = None
        for (prefix, m), script in self.scripts.items():
            if not path.startswith(prefix) or (m and m != method):
                continue
            key = (len(prefix), m is not None)
            if best is None or key > best[0]:
                best = (key, script)
        if best is None:
            return {}
        script = best[1]
        responses = script["responses"]
        i = min(script["next"], len(responses) - 1)
        script["next"] = i + 1
        return responses[i]

    def matching(self, prefix, method=None):
        return [r for r in self.records
                if r["path"].startswith(prefix) and (not method or r["method"] == method)]

    def reset(self, prefix):
        with self.lock:
            self.records = [r for r in self.records if not r["path"].startswith(prefix)]
            self.scripts = {k: v for k, v in self.scripts.items() if not k[0].startswith(prefix)}

    def concurrency(self, prefix):
        with self.lock:
            events = []
            rs = self.matching(prefix)
            for r in rs:
                events.append((r["_start"], 1))
                if r["_end"] is not None:
                    events.append((r["_end"], -1))
            events.sort()
            now = peak = 0
            for _, d in events:
                now += d
                peak = max(peak, now)
            return {"path": prefix, "max_in_flight": peak, "in_flight": now, "requests": len(rs)}


def public(record):
    return {k: v for k, v in record.items() if not k.startswith("_")}


def check_response(r):
    """Raises ValueError unless r is a valid scripted response."""
    if not isinstance(r, dict):
        raise ValueError("each response must be an object")
    known = {"status", "headers", "body", "json", "content_type", "delay", "drop"}
    extra = set(r) - known
    if extra:
        raise ValueError("unknown response fields: %s" % ", ".join(sorted(extra)))
    status = r.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError("status must be an integer 100..599")
    headers = r.get("headers", {})
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in headers.items()):
        raise ValueError("headers must be an object of strings")
    for k, v in headers.items():
        if any(c in str(k) + str(v) for c in "\r\n"):
            raise ValueError("headers must not contain line breaks")
    if "body" in r and not isinstance(r["body"], str):
        raise ValueError("body must be a string (use json for JSON values)")
    if "body" in r and "json" in r:
        raise ValueError("give body or json, not both")
    if "content_type" in r and not isinstance(r["content_type"], str):
        raise ValueError("content_type must be a string")
    delay = r.get("delay", 0)
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY:
        raise ValueError("delay must be a number of seconds 0..%d" % MAX_DELAY)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Malformed request lines get a status line and headers, not HTTP/0.9's bare body.
    default_request_version = "HTTP/1.0"
    server_version = "dtk-receiver/1"
    timeout = 120

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def do_any(self):
        try:
            self.handle_request()
        except (ConnectionError, TimeoutError, BrokenPipeError):
            self.close_connection = True
        except Exception as e:  # never let one bad request take the server down
            self.close_connection = True
            sys.stderr.write("receiver: %s %s: %r\n" % (self.command, self.path, e))
            try:
                self.reply(500, {"error": "receiver: %s" % e})
            except Exception:
                pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_any

    def read_body(self):
        """The request body as bytes, or None after answering 4xx itself."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            return self.read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self.reply(400, {"error": "bad Content-Length"})
            return None
        if n > MAX_BODY:
            # Drained first when not absurd, so the client reads the 413
            # instead of a broken pipe.
            left = n if n <= 4 * MAX_BODY else 0
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
            self.close_connection = True
            self.reply(413, {"error": "body over %d bytes" % MAX_BODY})
            return None
        data = self.rfile.read(n)
        if len(data) < n:
            raise ConnectionError("body cut short")
        return data

    def read_chunked(self):
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionError("chunked body cut short")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                self.reply(400, {"error": "bad chunk size"})
                return None
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                self.reply(413, {"error": "body over %d bytes" % MAX_BODY})
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

    def reply(self, status, obj=None, body=None, content_type=None, headers=None):
        if obj is not None:
            body = (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")
            content_type = content_type or "application/json"
        body = body or b""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def handle_request(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path or "/"
        raw = self.read_body()
        if raw is None:
            return
        if path.startswith("/_dtk/"):
            self.control(path, urllib.parse.parse_qs(url.query), raw)
            return
        text = raw.decode("utf-8", errors="replace")
        parsed = None
        if text.strip():
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        now = time.time()
        record = {
            "time": now,
            "time_iso": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%06dZ" % int((now % 1) * 1e6),
            "method": self.command,
            "path": path,
            "query": url.query,
            "query_params": urllib.parse.parse_qs(url.query, keep_blank_values=True),
            "headers": {k: v for k, v in self.headers.items()},
            "body": text,
            "json": parsed,
            "client": self.client_address[0],
        }
        state = self.server.state
        response = state.begin(record)
        try:
            delay = response.get("delay", 0)
            if delay:
                time.sleep(delay)
            if response.get("drop"):
                self.close_connection = True
                return
            if "json" in response:
                body = (json.dumps(response["json"], ensure_ascii=False)).encode("utf-8")
                ctype = response.get("content_type", "application/json")
            elif "body" in response:
                body = response["body"].encode("utf-8")
                ctype = response.get("content_type", "text/plain; charset=utf-8")
            elif response.get("status", 200) >= 300:
                body, ctype = b"", response.get("content_type")
            else:
                body, ctype = b'{"ok": true}\n', response.get("content_type", "application/json")
            self.reply(response.get("status", 200), body=body, content_type=ctype,
                       headers=response.get("headers"))
        finally:
            state.end(record)

    def control(self, path, q, raw):
        state = self.server.state
        prefix = q.get("path", [""])[0]
        if path == "/_dtk/health":
            self.reply(200, {"ok": True})
        elif path == "/_dtk/requests" and self.command == "GET":
            method = q.get("method", [None])[0]
            try:
                want = int(q.get("min", ["0"])[0])
                timeout = min(float(q.get("timeout", ["10"])[0]), MAX_DELAY)
            except ValueError:
                self.reply(400, {"error": "min and timeout must be numbers"})
                return
            deadline = time.monotonic() + timeout
            with state.lock:
                while True:
                    rs = [public(r) for r in state.matching(prefix, method)]
                    left = deadline - time.monotonic()
                    if len(rs) >= want or left <= 0:
                        break
                    state.lock.wait(left)
            self.reply(200, {"requests": rs})
        elif path == "/_dtk/reset" and self.command == "POST":
            state.reset(prefix)
            self.reply(200, {"ok": True})
        elif path == "/_dtk/script" and self.command == "POST":
            try:
                spec = json.loads(raw.decode("utf-8"))
                if not isinstance(spec, dict):
                    raise ValueError("the script must be an object")
                p = spec.get("path")
                if not isinstance(p, str) or not p.startswith("/") or p.startswith("/_dtk/"):
                    raise ValueError("path must be a prefix starting with / and outside /_dtk/")
                m = spec.get("method")
                if m is not None and not isinstance(m, str):
                    raise ValueError("method must be a string")
                responses = spec.get("responses")
                if not isinstance(responses, list) or not responses:
                    raise ValueError("responses must be a non-empty list")
                for r in responses:
                    check_response(r)
            except (ValueError, UnicodeDecodeError) as e:
                self.reply(400, {"error": str(e)})
                return
            with state.lock:
                state.scripts[(p, m.upper() if m else None)] = {"responses": responses, "next": 0}
            self.reply(200, {"ok": True})
        elif path == "/_dtk/scripts" and self.command == "GET":
            with state.lock:
                out = [{"path": k[0], "method": k[1], "responses": v["responses"], "next": v["next"]}
                       for k, v in state.scripts.items()]
            self.reply(200, {"scripts": out})
        elif path == "/_dtk/concurrency" and self.command == "GET":
            self.reply(200, state.concurrency(prefix))
        else:
            self.reply(404, {"error": "unknown control endpoint %s %s" % (self.command, path)})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--log", help="append every recorded request here as a JSON line")
    ap.add_argument("--port-file", help="write the port listened on here once ready")
    ap.add_argument("--verbose", action="store_true", help="log each request on stderr")
    args = ap.parse_args()
    server = Server((args.host, args.port), Handler)
    server.state = State(args.log)
    server.verbose = args.verbose
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    sys.stderr.write("receiver: listening on http://%s:%d\n" % (args.host, port))
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main()
