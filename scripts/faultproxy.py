#!/usr/bin/python3
"""faultproxy.py - a loopback HTTP/1.1 proxy that injects faults, for tests.

Usage:
  faultproxy.py --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT
                [--pidfile FILE] [--port-file FILE] [--rule JSON]... [-v]

Requests are forwarded to the upstream byte for byte (request line, header
lines in their order and case, Host included, body as sent, chunked or with a
Content-Length), so a SigV4 signature made for the proxy's host:port still
verifies upstream. Client connections are kept alive; each request goes to
the upstream on a fresh connection. "Expect: 100-continue" is honoured: the
upstream's "100 Continue" (or early final answer) is relayed to the client.
--listen 127.0.0.1:0 takes a free port; the port is printed on stdout
("faultproxy: listening on 127.0.0.1:PORT ...") and written to --port-file.

Control endpoint, on the same port (these requests are never forwarded):
  POST   /__fault__   body: one rule (JSON object) or a list of rules; appends
  DELETE /__fault__   drops every rule and zeroes the counters; answers with
                      the counters as they were
  GET    /__fault__   counters as JSON: {"requests", "methods", "faults",
                      "actions", "upstream_errors", "rules", "recent"}

A rule:
  {"match": "PUT",                  method and/or substring of path+query:
                                    "PUT", "uploadId=", "GET /bucket/key",
                                    "" or "*" for every request
   "method": "PUT", "path": "...",  the same, as separate fields (optional)
   "action": "status",              see below
   "count": 2,                      matching requests to affect (default 1,
                                    -1 = every one)
   "skip": 0}                       matching requests to let through first
Rules are tried in order; the first live rule that matches acts.

Actions:
  status        answer "status" (default 503) with an S3 XML error body
                without forwarding: 503 SlowDown, 500 InternalError, ...;
                "code", "message", "headers" ({"Retry-After": "1"}) override.
                The request body is read and dropped first (unless the client
                sent Expect: 100-continue, then the connection is closed after
                the answer).
  reset         close the connection without an answer, before forwarding;
                with "bytes": N, after reading N bytes of the request body.
                "rst": true sends a TCP RST instead of a FIN.
  cut_request   forward, but stop after N ("bytes", default 0) bytes of the
                request body and close both connections (no answer).
  drop_response forward the whole request, read the upstream's answer, then
                close the client connection without it (the request took
                effect, the client never learns).
  cut_response  forward; relay the answer's header and the first N ("bytes",
                default 0) bytes of its body (as sent on the wire, chunk
                framing included), then close the connection.
  delay         sleep "seconds" (default 1) before forwarding; with "bytes":
                N, relay the header and N bytes of the answer's body, then
                sleep, then go on (a stall in mid-body).
"""

import argparse
import json
import os
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from email.utils import formatdate

METHODS = {"GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH",
           "TRACE", "CONNECT"}
ACTIONS = {"status", "reset", "cut_request", "drop_response", "cut_response",
           "delay"}
S3_ERRORS = {
    400: ("BadRequest", "Bad Request"),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    408: ("RequestTimeout", "Your socket connection to the server was not "
          "read from or written to within the timeout period."),
    409: ("OperationAborted", "A conflicting conditional operation is "
          "currently in progress against this resource."),
    429: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try "
          "again."),
    501: ("NotImplemented", "A header you provided implies functionality "
          "that is not implemented."),
    502: ("BadGateway", "Bad Gateway"),
    503: ("SlowDown", "Please reduce your request rate."),
    504: ("GatewayTimeout", "Gateway Timeout"),
}
REASONS = {100: "Continue", 200: "OK", 400: "Bad Request",
           403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
           409: "Conflict", 429: "Too Many Requests",
           500: "Internal Server Error", 501: "Not Implemented",
           502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}
MAX_HEAD = 256 * 1024
BUF = 256 * 1024
VERBOSE = False


def log(msg):
    if VERBOSE:
        sys.stderr.write("faultproxy: %s\n" % msg)
        sys.stderr.flush()


class ProtocolError(Exception):
    pass


class CloseConnection(Exception):
    """End the client connection now (fault or protocol end)."""

    def __init__(self, rst=False):
        Exception.__init__(self)
        self.rst = rst


# ---------------------------------------------------------------- rules

class Rule:
    def __init__(self, spec, rid):
        if not isinstance(spec, dict):
            raise ValueError("a rule is a JSON object")
        self.spec = spec
        self.id = rid
        self.action = spec.get("action", "status")
        if self.action not in ACTIONS:
            raise ValueError("unknown action %r (one of %s)"
                             % (self.action, ", ".join(sorted(ACTIONS))))
        self.method = spec.get("method")
        self.substr = spec.get("path")
        m = spec.get("match")
        if m is not None and m not in ("", "*"):
            if not isinstance(m, str):
                raise ValueError("match is a string")
            parts = m.split(None, 1)
            if parts and parts[0].upper() in METHODS and parts[0].isupper():
                self.method = parts[0]
                rest = parts[1] if len(parts) > 1 else None
                if rest:
                    self.substr = rest
            else:
                self.substr = m
        if self.method is not None:
            self.method = str(self.method).upper()
        self.count = int(spec.get("count", 1))
        self.skip = int(spec.get("skip", 0))
        self.status = int(spec.get("status", 503))
        self.nbytes = int(spec.get("bytes", -1))
        self.seconds = float(spec.get("seconds", 1.0))
        self.hits = 0       # times the fault acted
        self.seen = 0       # matching requests

    def matches(self, method, target):
        if self.method is not None and method != self.method:
            return False
        if self.substr is not None and self.substr not in target:
            return False
        return True

    def live(self):
        return self.count < 0 or self.hits < self.count

    def describe(self):
        d = dict(self.spec)
        d.update({"id": self.id, "seen": self.seen, "hits": self.hits,
                  "live": self.live()})
        return d


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.next_id = 1
        self.reset_counters()

    def reset_counters(self):
        self.requests = 0
        self.methods = {}
        self.faults = 0
        self.actions = {}
        self.upstream_errors = 0
        self.recent = []

    def add(self, specs):
        if isinstance(specs, dict):
            specs = [specs]
        if not isinstance(specs, list):
            raise ValueError("body must be a rule object or a list of rules")
        with self.lock:
            made = []
            for s in specs:
                r = Rule(s, self.next_id)
                made.append(r)
                self.next_id += 1
            self.rules.extend(made)
            return [r.id for r in made]

    def clear(self):
        with self.lock:
            snap = self.snapshot_locked()
            self.rules = []
            self.reset_counters()
            return snap

    def pick(self, method, target):
        """Count the request; return the rule that acts on it, if any."""
        with self.lock:
            self.requests += 1
            self.methods[method] = self.methods.get(method, 0) + 1
            for r in self.rules:
                if not r.live() or not r.matches(method, target):
                    continue
                r.seen += 1
                if r.seen <= r.skip:
                    continue
                r.hits += 1
                self.faults += 1
                self.actions[r.action] = self.actions.get(r.action, 0) + 1
                return r, self.faults
            return None, 0

    def note(self, method, target, status, fault):
        with self.lock:
            self.recent.append({"method": method, "target": target[:300],
                                "status": status, "fault": fault,
                                "time": round(time.time(), 3)})
            del self.recent[:-200]

    def upstream_error(self):
        with self.lock:
            self.upstream_errors += 1

    def snapshot_locked(self):
        return {"requests": self.requests, "methods": dict(self.methods),
                "faults": self.faults, "actions": dict(self.actions),
                "upstream_errors": self.upstream_errors,
                "rules": [r.describe() for r in self.rules],
                "recent": list(self.recent)}

    def snapshot(self):
        with self.lock:
            return self.snapshot_locked()


STATE = State()


# ---------------------------------------------------------------- HTTP bits

def read_head(rfile):
    """Read a request or status line and header lines. Returns
    (first_line, raw_bytes, headers[list of (lower name, value)]) or None on
    a clean EOF before anything."""
    raw = bytearray()
    first = rfile.readline(65537)
    if not first:
        return None
    # tolerate stray CRLFs between keep-alive requests
    while first in (b"\r\n", b"\n"):
        first = rfile.readline(65537)
        if not first:
            return None
    if not first.endswith(b"\n"):
        raise ProtocolError("overlong or truncated first line")
    raw += first
    headers = []
    while True:
        line = rfile.readline(65537)
        if not line:
            raise ProtocolError("EOF inside header")
        raw += line
        if len(raw) > MAX_HEAD:
            raise ProtocolError("header too large")
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + " " + line.strip().decode("latin-1"))
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError("bad header line %r" % line[:80])
        headers.append((name.strip().decode("latin-1").lower(),
                        value.strip().decode("latin-1")))
    return first.decode("latin-1").rstrip("\r\n"), bytes(raw), headers


def hget(headers, name):
    vals = [v for n, v in headers if n == name]
    return ", ".join(vals) if vals else None


def has_token(headers, name, token):
    v = hget(headers, name)
    if v is None:
        return False
    return token in [t.strip().lower() for t in v.split(",")]


class Body:
    """How a message body is framed."""

    def __init__(self, kind, length=0):
        self.kind = kind      # "none", "length", "chunked", "eof"
        self.length = length


def request_body(headers):
    if has_token(headers, "transfer-encoding", "chunked"):
        return Body("chunked")
    cl = hget(headers, "content-length")
    if cl is not None:
        try:
            n = int(cl.split(",")[0])
        except ValueError:
            raise ProtocolError("bad Content-Length %r" % cl)
        return Body("length", n) if n > 0 else Body("none")
    return Body("none")


def response_body(method, status, headers):
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        return Body("none")
    if has_token(headers, "transfer-encoding", "chunked"):
        return Body("chunked")
    cl = hget(headers, "content-length")
    if cl is not None:
        try:
            return Body("length", int(cl.split(",")[0]))
        except ValueError:
            raise ProtocolError("bad Content-Length in response")
    return Body("eof")


def copy_body(rfile, body, out, limit=-1, stall=None):
    """Copy a body from rfile to out (a callable taking bytes, or None to
    drop). Stops after `limit` bytes when limit >= 0 and returns False then;
    returns True when the whole body was copied. stall = (nbytes, seconds):
    sleep once after nbytes."""
    sent = [0]
    stalled = [stall is None]

    def emit(data):
        while data:
            n = len(data)
            if limit >= 0:
                n = min(n, limit - sent[0])
            if not stalled[0]:
                n = min(n, max(stall[0] - sent[0], 0))
                if n == 0:
                    time.sleep(stall[1])
                    stalled[0] = True
                    continue
            if n <= 0:
                return False
            if out is not None:
                out(data[:n])
            sent[0] += n
            data = data[n:]
        return True

    def at_limit():
        return limit >= 0 and sent[0] >= limit

    if not stalled[0] and stall[0] == 0:
        time.sleep(stall[1])
        stalled[0] = True
    if body.kind == "none":
        return True
    if at_limit():
        return False
    if body.kind == "length":
        left = body.length
        while left > 0:
            data = rfile.read1(min(left, BUF)) if hasattr(rfile, "read1") \
                else rfile.read(min(left, BUF))
            if not data:
                raise ProtocolError("EOF inside body (%d bytes short)" % left)
            left -= len(data)
            if not emit(data):
                return False
        return True
    if body.kind == "eof":
        while True:
            data = rfile.read1(BUF) if hasattr(rfile, "read1") \
                else rfile.read(BUF)
            if not data:
                return True
            if not emit(data):
                return False
    # chunked: pass the framing through unchanged
    while True:
        line = rfile.readline(65537)
        if not line:
            raise ProtocolError("EOF inside chunked body")
        if not emit(line):
            return False
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError("bad chunk size line %r" % line[:40])
        if size == 0:
            while True:
                t = rfile.readline(65537)
                if not t:
                    raise ProtocolError("EOF inside chunked trailer")
                if not emit(t):
                    return False
                if t in (b"\r\n", b"\n"):
                    return True
        left = size + 2
        while left > 0:
            data = rfile.read1(min(left, BUF)) if hasattr(rfile, "read1") \
                else rfile.read(min(left, BUF))
            if not data:
                raise ProtocolError("EOF inside chunk")
            left -= len(data)
            if not emit(data):
                return False


def s3_error(status, code=None, message=None, resource="", rid=""):
    dcode, dmsg = S3_ERRORS.get(status, ("InternalError", "Injected fault"))
    code = code or dcode
    message = message or dmsg
    esc = (lambda s: s.replace("&", "&amp;").replace("<", "&lt;")
           .replace(">", "&gt;"))
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<Error><Code>%s</Code><Message>%s</Message>"
            "<Resource>%s</Resource><RequestId>%s</RequestId></Error>"
            % (esc(code), esc(message), esc(resource), rid)).encode()


# ---------------------------------------------------------------- handler

class Handler(socketserver.BaseRequestHandler):

    def setup(self):
        self.sock = self.request
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(self.server.client_timeout)
        self.rfile = self.sock.makefile("rb", buffering=BUF)

    def send(self, data):
        self.sock.sendall(data)

    def handle(self):
        try:
            while self.one_request():
                pass
        except CloseConnection as e:
            if e.rst:
                # linger 0: close() sends a RST, and no FIN goes first
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                    self.rfile.close()
                    self.sock.close()
                except OSError:
                    pass
        except ProtocolError as e:
            log("protocol error: %s" % e)
        except (OSError, socket.timeout) as e:
            log("connection error: %s" % e)

    def finish(self):
        try:
            self.rfile.close()
        except OSError:
            pass

    # -- answers made here

    def answer(self, status, body, ctype="application/json", extra=None,
               close=False, head_only=False):
        lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status")),
                 "Date: %s" % formatdate(usegmt=True),
                 "Content-Type: %s" % ctype,
                 "Content-Length: %d" % len(body)]
        for k, v in (extra or {}).items():
            lines.append("%s: %s" % (k, v))
        if close:
            lines.append("Connection: close")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") +
                  (b"" if head_only else body))

    def control(self, method, headers, body):
        if method == "GET":
            out = STATE.snapshot()
        elif method == "DELETE":
            out = STATE.clear()
            out["cleared"] = True
        elif method in ("POST", "PUT"):
            try:
                spec = json.loads(body.decode("utf-8") or "null")
                ids = STATE.add(spec)
            except (ValueError, TypeError) as e:
                self.answer(400, json.dumps({"error": str(e)}).encode())
                return
            out = {"ok": True, "ids": ids}
        else:
            self.answer(405, b'{"error": "GET, POST or DELETE"}')
            return
        self.answer(200, (json.dumps(out, indent=1) + "\n").encode())

    # -- one request

    def one_request(self):
        head = read_head(self.rfile)
        if head is None:
            return False
        first, raw, headers = head
        parts = first.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise ProtocolError("bad request line %r" % first[:100])
        method, target, version = parts
        client_close = (has_token(headers, "connection", "close") or
                        (version == "HTTP/1.0" and
                         not has_token(headers, "connection", "keep-alive")))
        reqbody = request_body(headers)
        expect = has_token(headers, "expect", "100-continue") and \
            reqbody.kind != "none"

        if target.split("?", 1)[0] == "/__fault__":
            chunks = []
            if expect:
                self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            copy_body(self.rfile, reqbody, chunks.append)
            data = b"".join(chunks)
            if reqbody.kind == "chunked":
                data = dechunk(data)
            self.control(method, headers, data)
            return not client_close

        rule, seq = STATE.pick(method, target)
        fault = rule.action if rule else None
        if rule:
            log("%s %s -> fault %s" % (method, target, rule.describe()))

        if rule and rule.action == "status":
            close = client_close
            if expect:
                close = True          # body never sent; don't read it
            else:
                copy_body(self.rfile, reqbody, None)
            rid = "FAULTPROXY%08d" % seq
            body = s3_error(rule.status, rule.spec.get("code"),
                            rule.spec.get("message"),
                            target.split("?", 1)[0], rid)
            extra = {"x-amz-request-id": rid}
            extra.update(rule.spec.get("headers") or {})
            self.answer(rule.status, body, "application/xml", extra,
                        close=close, head_only=(method == "HEAD"))
            STATE.note(method, target, rule.status, fault)
            return not close

        if rule and rule.action == "reset":
            if rule.nbytes > 0 and reqbody.kind != "none":
                if expect:
                    self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                copy_body(self.rfile, reqbody, None, limit=rule.nbytes)
            STATE.note(method, target, None, fault)
            raise CloseConnection(rst=bool(rule.spec.get("rst")))

        if rule and rule.action == "delay" and rule.nbytes < 0:
            time.sleep(rule.seconds)

        # ---- forward
        try:
            up = socket.create_connection(self.server.upstream,
                                          timeout=self.server.upstream_timeout)
        except OSError as e:
            STATE.upstream_error()
            log("upstream connect failed: %s" % e)
            if not expect:
                copy_body(self.rfile, reqbody, None)
            self.answer(502, s3_error(502, "BadGateway",
                                      "faultproxy: upstream: %s" % e),
                        "application/xml", close=True,
                        head_only=(method == "HEAD"))
            STATE.note(method, target, 502, "upstream_error")
            return False
        try:
            return self.forward(up, method, target, raw, reqbody, expect,
                                client_close, rule)
        finally:
            try:
                up.close()
            except OSError:
                pass

    def forward(self, up, method, target, raw, reqbody, expect, client_close,
                rule):
        fault = rule.action if rule else None
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        urfile = up.makefile("rb", buffering=BUF)
        up.sendall(raw)
        final = None
        body_sent = reqbody.kind == "none"
        limit = rule.nbytes if (rule and rule.action == "cut_request") else -1
        if rule and rule.action == "cut_request" and limit < 0:
            limit = 0

        if not body_sent and expect:
            # wait for 100 Continue (or an early final answer) from upstream
            r, _, _ = select.select([up], [], [], self.server.expect_wait)
            if r:
                head = read_head(urfile)
                if head is None:
                    raise ProtocolError("upstream closed")
                status = int(head[0].split(" ", 2)[1])
                if status == 100:
                    self.send(head[1])
                else:
                    final = head
        if not body_sent and final is None:
            copy_body(self.rfile, reqbody, up.sendall, limit=limit)
            body_sent = True
        if rule and rule.action == "cut_request":
            # the upstream saw at most N bytes of the body; nobody answers
            STATE.note(method, target, None, fault)
            raise CloseConnection()

        # ---- response (relay 1xx until the final answer)
        while True:
            head = final or read_head(urfile)
            final = None
            if head is None:
                raise ProtocolError("upstream closed without an answer")
            first, hraw, hdrs = head
            try:
                status = int(first.split(" ", 2)[1])
            except (IndexError, ValueError):
                raise ProtocolError("bad status line %r" % first[:100])
            if 100 <= status < 200:
                if status != 100 or expect:
                    self.send(hraw)
                continue
            break

        rbody = response_body(method, status, hdrs)
        if rule and rule.action == "drop_response":
            copy_body(urfile, rbody, None)
            STATE.note(method, target, status, fault)
            raise CloseConnection()

        self.send(hraw)
        rlimit = -1
        stall = None
        if rule and rule.action == "cut_response":
            rlimit = max(rule.nbytes, 0)
        if rule and rule.action == "delay" and rule.nbytes >= 0:
            stall = (rule.nbytes, rule.seconds)
        ok = copy_body(urfile, rbody, self.send, limit=rlimit, stall=stall)
        STATE.note(method, target, status, fault)
        if not ok:
            raise CloseConnection()
        if rlimit >= 0 and rbody.kind != "none":
            # whole body fitted under the cut: still cut the connection
            raise CloseConnection()
        if not body_sent:
            return False          # client may still send the body: close
        if rbody.kind == "eof" or client_close or \
                has_token(hdrs, "connection", "close"):
            return False
        return True


def dechunk(data):
    out = bytearray()
    i = 0
    while True:
        j = data.index(b"\r\n", i)
        size = int(data[i:j].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[j + 2:j + 2 + size]
        i = j + 2 + size + 2


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def hostport(s):
    host, sep, port = s.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError("want HOST:PORT, got %r" % s)
    return host.strip("[]"), int(port)


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(
        description="loopback HTTP proxy with fault injection (see the "
                    "docstring at the top of this file)")
    ap.add_argument("--listen", type=hostport, required=True,
                    help="HOST:PORT to listen on (PORT 0: any free port)")
    ap.add_argument("--upstream", type=hostport, required=True,
                    help="HOST:PORT to forward to")
    ap.add_argument("--pidfile", help="write the process id here")
    ap.add_argument("--port-file", help="write the listening port here")
    ap.add_argument("--rule", action="append", default=[],
                    help="a rule as JSON, set at start (repeatable)")
    ap.add_argument("--upstream-timeout", type=float, default=300.0)
    ap.add_argument("--client-timeout", type=float, default=600.0)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    VERBOSE = a.verbose

    for r in a.rule:
        try:
            STATE.add(json.loads(r))
        except ValueError as e:
            ap.error("--rule %s: %s" % (r, e))

    srv = Server(a.listen, Handler)
    srv.upstream = a.upstream
    srv.upstream_timeout = a.upstream_timeout
    srv.client_timeout = a.client_timeout
    srv.expect_wait = 1.0
    port = srv.server_address[1]

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        if a.pidfile:
            with open(a.pidfile + ".tmp", "w") as f:
                f.write("%d\n" % os.getpid())
            os.rename(a.pidfile + ".tmp", a.pidfile)
        if a.port_file:
            with open(a.port_file + ".tmp", "w") as f:
                f.write("%d\n" % port)
            os.rename(a.port_file + ".tmp", a.port_file)
        print("faultproxy: listening on %s:%d, upstream %s:%d, pid %d"
              % (a.listen[0], port, a.upstream[0], a.upstream[1],
                 os.getpid()), flush=True)
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        if a.pidfile:
            try:
                os.unlink(a.pidfile)
            except OSError:
                pass


if __name__ == "__main__":
    main()
