#!/usr/bin/python3
"""awsfake.py - loopback fakes of the AWS credential services, for tests.

Usage:
  awsfake.py --listen 127.0.0.1:PORT --access-key AK --secret-key SK
             [--port-file FILE] [--pidfile FILE] [--ttl SECONDS] [-v]

One port serves all of these (HTTP/1.1, keep-alive, every answer framed by a
Content-Length). --listen 127.0.0.1:0 takes a free port; it is written to
--port-file (tmp + rename) and printed: "awsfake: listening on 127.0.0.1:PORT".
Only 127.0.0.1 is bound. SIGTERM ends the process; the pidfile is removed.

Every service hands out the same keys, AK and SK from the command line (the
test S3 server's, so requests signed with them verify), a session token
"FAKE-<service>-<n>" (n counts every credential issued, by any service, and
is never reset) and an Expiration "YYYY-MM-DDTHH:MM:SSZ", now + ttl (--ttl,
default 3600, or the service's "ttl" in the config).

Services:
  IMDS       PUT /latest/api/token
               needs X-aws-ec2-metadata-token-ttl-seconds (1..21600, else
               400); 403 when the request has X-Forwarded-For; answers a
               random token (text/plain)
             GET /latest/meta-data/iam/security-credentials/
               answers "fake-role"
             GET /latest/meta-data/iam/security-credentials/fake-role
               answers {"Code","LastUpdated","Type","AccessKeyId",
               "SecretAccessKey","Token","Expiration"} (JSON, pretty-printed
               and text/plain, as the real IMDS does)
             Both GETs need X-aws-ec2-metadata-token: an issued, unexpired
             token, else 401 -- unless imds.allow_v1 or mode "v1only". In
             mode "v1only" the token PUT answers 404.
  container  GET /container/...
               when container.auth_token is set, the Authorization header
               must equal it (else 401); answers {"AccessKeyId",
               "SecretAccessKey","Token","Expiration","RoleArn"} (JSON)
  STS        POST / (or /sts, /sts/)
               form body (application/x-www-form-urlencoded): Action=
               AssumeRoleWithWebIdentity, Version=2011-06-15, RoleArn,
               RoleSessionName, WebIdentityToken; no Authorization header.
               Errors are STS's XML ErrorResponse, status 400; a
               WebIdentityToken other than sts.expected_token (when that is
               set) gives InvalidIdentityToken. Answers the
               AssumeRoleWithWebIdentityResponse XML (text/xml).
  proxy      "GET http://127.0.0.1:PORT/path HTTP/1.1" (absolute form) is
             forwarded to that host (127.0.0.1 or localhost only, else 403)
             on a fresh connection: request line in origin form, the other
             header lines as sent, in order (Host included, so SigV4 still
             verifies), minus Proxy-Connection and Proxy-Authorization; the
             body and the answer are relayed as they are framed (a 100
             Continue comes from http.server itself, the upstream's is
             dropped). "CONNECT 127.0.0.1:PORT HTTP/1.1" answers "200
             Connection established" and pipes bytes both ways.

Request checks come first (IMDS token, container Authorization, STS
parameters), then the service's mode acts. The mode acts on the answers that
carry credentials (for IMDS: the credentials document only; the token PUT and
the role listing stay normal):
  ok          credentials
  401, 500    that status, with a short text/plain body
  garbage     200 with a body that is neither JSON nor XML, that contains SK
              and "FAKE-LEAK"
  expired     credentials whose Expiration is 1 minute in the past
  slow:SECS   sleep SECS (a float), then as ok
  v1only      IMDS only: no token needed, the token PUT answers 404

Control endpoint, on the same port (never forwarded, never counted):
  GET    /__fake__/config   the config as JSON
  POST   /__fake__/config   body: JSON merged into the config, e.g.
                            {"imds": {"mode": "ok", "ttl": 900,
                                      "allow_v1": false},
                             "container": {"mode": "500",
                                           "auth_token": "secret-auth"},
                             "sts": {"mode": "slow:2",
                                     "expected_token": "jwt"}}
                            keys: mode, ttl (seconds, null = --ttl) and
                            imds.allow_v1, container.auth_token,
                            sts.expected_token; unknown keys or modes: 400,
                            and nothing changes. Answers the new config.
  DELETE /__fake__/config   back to the defaults (all "ok", no checks)
  GET    /__fake__/stats    {"imds": {"token_puts", "list_gets", "cred_gets",
                                      "unauthorized", "faults"},
                             "container": {"gets", "unauthorized", "faults",
                                           "last_authorization"},
                             "sts": {"calls", "rejected", "faults",
                                     "last_role_arn", "last_session_name",
                                     "last_token"},
                             "issued": {"imds", "container", "sts", "last"},
                             "proxy": {"requests", "connects", "recent"}}
                            recent: the last 200 proxied requests and
                            tunnels, {"method", "target" (host:port), "path",
                            "headers" (lower-case name -> value; authorization
                            reduced to "SignedHeaders=..."), "status"}
                            Counters count requests, whatever the answer;
                            "unauthorized" and "rejected" the ones refused
                            by a request check, "faults" the ones a mode
                            other than ok/slow answered; "issued" the
                            credentials handed out (expired ones included).
                            The proxy adds no X-Forwarded-For or Via; it may
                            forward to this very port (a client whose proxy
                            setting also covers 127.0.0.1), then the request
                            counts once as proxied and once for its service.
  DELETE /__fake__/stats    zeroes the counters and "recent" (the config and
                            the IMDS tokens stay); answers the stats as they
                            were

The secret key is never written to stdout or stderr, except with -v.
"""

import argparse
import json
import os
import secrets
import select
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

MODES = {"ok", "401", "500", "garbage", "expired"}
SERVICE_KEYS = {
    "imds": {"mode", "ttl", "allow_v1"},
    "container": {"mode", "ttl", "auth_token"},
    "sts": {"mode", "ttl", "expected_token"},
}
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ROLE_NAME = "fake-role"
CONTAINER_ROLE_ARN = "arn:aws:iam::123456789012:role/fake"
MAX_BODY = 1024 * 1024
BUF = 64 * 1024
RECENT = 200
UPSTREAM_TIMEOUT = 300.0
TUNNEL_IDLE = 300.0
LOOPBACK_HOSTS = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1"}
HOP_HEADERS = {b"proxy-connection", b"proxy-authorization"}
VERBOSE = False


def log(msg):
    if VERBOSE:
        sys.stderr.write("awsfake: %s\n" % msg)
        sys.stderr.flush()


def utc(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


class BadRequest(Exception):
    pass


# ---------------------------------------------------------------- state

def default_config():
    return {"imds": {"mode": "ok", "ttl": None, "allow_v1": False},
            "container": {"mode": "ok", "ttl": None, "auth_token": ""},
            "sts": {"mode": "ok", "ttl": None, "expected_token": ""}}


def check_mode(service, mode):
    """A mode as a string; ValueError when it is not one."""
    if isinstance(mode, int) and not isinstance(mode, bool):
        mode = str(mode)
    if not isinstance(mode, str):
        raise ValueError("%s.mode: a string" % service)
    if mode in MODES or (mode == "v1only" and service == "imds"):
        return mode
    if mode.startswith("slow:"):
        try:
            secs = float(mode[5:])
        except ValueError:
            secs = -1
        if 0 <= secs <= 3600:
            return mode
    raise ValueError("%s.mode: %r is not one of ok, 401, 500, garbage, "
                     "expired, slow:SECONDS%s"
                     % (service, mode, ", v1only" if service == "imds"
                        else ""))


class State:
    def __init__(self, access_key, secret_key, ttl):
        self.lock = threading.Lock()
        self.access_key = access_key
        self.secret_key = secret_key
        self.default_ttl = ttl
        self.config = default_config()
        self.serial = 0
        self.imds_tokens = {}      # token -> monotonic expiry
        self.reset_stats()

    # -- config

    def merge(self, patch):
        if not isinstance(patch, dict):
            raise ValueError("the config is a JSON object")
        new = json.loads(json.dumps(self.get_config()))
        for svc, sub in patch.items():
            if svc not in SERVICE_KEYS:
                raise ValueError("unknown service %r (imds, container, sts)"
                                 % svc)
            if not isinstance(sub, dict):
                raise ValueError("%s: a JSON object" % svc)
            for k, v in sub.items():
                if k not in SERVICE_KEYS[svc]:
                    raise ValueError("unknown key %s.%s (%s)" % (
                        svc, k, ", ".join(sorted(SERVICE_KEYS[svc]))))
                if k == "mode":
                    v = check_mode(svc, v)
                elif k == "ttl":
                    if v is not None and (isinstance(v, bool) or
                                          not isinstance(v, int) or v < 1):
                        raise ValueError("%s.ttl: a positive integer or "
                                         "null" % svc)
                elif k == "allow_v1":
                    if not isinstance(v, bool):
                        raise ValueError("imds.allow_v1: true or false")
                else:
                    if v is None:
                        v = ""
                    if not isinstance(v, str):
                        raise ValueError("%s.%s: a string" % (svc, k))
                new[svc][k] = v
        with self.lock:
            self.config = new
        return self.get_config()

    def reset_config(self):
        with self.lock:
            self.config = default_config()

    def get_config(self):
        with self.lock:
            out = json.loads(json.dumps(self.config))
        out["default_ttl"] = self.default_ttl
        return out

    def cfg(self, service, key):
        with self.lock:
            return self.config[service][key]

    # -- stats

    def reset_stats(self):
        with self.lock:
            self.stats = {
                "imds": {"token_puts": 0, "list_gets": 0, "cred_gets": 0,
                         "unauthorized": 0, "faults": 0},
                "container": {"gets": 0, "unauthorized": 0, "faults": 0,
                              "last_authorization": None},
                "sts": {"calls": 0, "rejected": 0, "faults": 0,
                        "last_role_arn": None, "last_session_name": None,
                        "last_token": None},
                "issued": {"imds": 0, "container": 0, "sts": 0,
                           "last": None},
                "proxy": {"requests": 0, "connects": 0, "recent": []},
            }

    def count(self, service, key, n=1):
        with self.lock:
            self.stats[service][key] += n

    def note(self, service, **kv):
        with self.lock:
            self.stats[service].update(kv)

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.stats))

    def add_proxy_record(self, kind, rec):
        with self.lock:
            p = self.stats["proxy"]
            p[kind] += 1
            p["recent"].append(rec)
            del p["recent"][:-RECENT]

    # -- credentials

    def issue(self, service, expired=False):
        now = time.time()
        ttl = self.cfg(service, "ttl") or self.default_ttl
        with self.lock:
            self.serial += 1
            token = "FAKE-%s-%d" % (service, self.serial)
            self.stats["issued"][service] += 1
            self.stats["issued"]["last"] = token
        exp = now - 60 if expired else now + ttl
        log("issued %s, expires %s" % (token, utc(exp)))
        return {"AccessKeyId": self.access_key,
                "SecretAccessKey": self.secret_key,
                "Token": token, "Expiration": utc(exp)}

    def new_imds_token(self, ttl):
        tok = secrets.token_urlsafe(40)
        now = time.monotonic()
        with self.lock:
            for t, exp in list(self.imds_tokens.items()):
                if exp <= now:
                    del self.imds_tokens[t]
            if len(self.imds_tokens) >= 10000:
                self.imds_tokens.clear()
            self.imds_tokens[tok] = now + ttl
        return tok

    def imds_token_ok(self, tok):
        if not tok:
            return False
        with self.lock:
            exp = self.imds_tokens.get(tok)
        return exp is not None and exp > time.monotonic()


STATE = None


# ---------------------------------------------------------------- HTTP bits

class LineRecorder:
    """Stands in for rfile while http.server reads the header lines, so the
    proxy can send them on as they came."""

    def __init__(self, f):
        self.f = f
        self.lines = []

    def readline(self, limit=-1):
        line = self.f.readline(limit)
        self.lines.append(line)
        return line


def read_head(f):
    """A status line and header lines from an upstream: (raw bytes, status,
    version, [(lower name, value)])."""
    first = f.readline(65537)
    if not first:
        raise BadRequest("upstream closed without an answer")
    parts = first.split(None, 2)
    try:
        version = parts[0].decode("latin-1")
        status = int(parts[1])
    except (IndexError, ValueError):
        raise BadRequest("bad status line %r" % first[:80])
    raw = [first]
    headers = []
    size = len(first)
    while True:
        line = f.readline(65537)
        if not line:
            raise BadRequest("upstream closed inside the header")
        raw.append(line)
        size += len(line)
        if size > 256 * 1024:
            raise BadRequest("upstream header too large")
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + " " + line.strip().decode("latin-1"))
            continue
        name, _, value = line.partition(b":")
        headers.append((name.strip().decode("latin-1").lower(),
                        value.strip().decode("latin-1")))
    return b"".join(raw), status, version, headers


def hget(headers, name):
    vals = [v for n, v in headers if n == name]
    return ", ".join(vals) if vals else None


def has_token(value, token):
    return value is not None and \
        token in [t.strip().lower() for t in value.split(",")]


def body_kind(te, cl):
    """("chunked"|"length"|"none", length) from the framing headers."""
    if has_token(te, "chunked"):
        return "chunked", 0
    if cl is not None:
        try:
            n = int(cl.split(",")[0].strip())
        except ValueError:
            raise BadRequest("bad Content-Length %r" % cl)
        if n < 0:
            raise BadRequest("bad Content-Length %r" % cl)
        return ("length", n) if n > 0 else ("none", 0)
    return "none", 0


def read1(f, n):
    return f.read1(n) if hasattr(f, "read1") else f.read(n)


def copy_body(f, kind, length, out):
    """Copy a body, framing included, from file f to the callable out (None:
    drop it). kind "eof" reads to the end."""
    if kind == "none":
        return
    if kind == "length":
        left = length
        while left > 0:
            data = read1(f, min(left, BUF))
            if not data:
                raise BadRequest("EOF inside a body")
            left -= len(data)
            if out:
                out(data)
        return
    if kind == "eof":
        while True:
            data = read1(f, BUF)
            if not data:
                return
            if out:
                out(data)
    while True:      # chunked: the framing goes through unchanged
        line = f.readline(65537)
        if not line.endswith(b"\n"):
            raise BadRequest("bad or truncated chunk size line")
        if out:
            out(line)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size line %r" % line[:40])
        if size < 0:
            raise BadRequest("bad chunk size line %r" % line[:40])
        if size == 0:
            while True:
                t = f.readline(65537)
                if not t.endswith(b"\n"):
                    raise BadRequest("EOF inside a chunked trailer")
                if out:
                    out(t)
                if t in (b"\r\n", b"\n"):
                    return
        left = size + 2
        while left > 0:
            data = read1(f, min(left, BUF))
            if not data:
                raise BadRequest("EOF inside a chunk")
            left -= len(data)
            if out:
                out(data)


def dechunk(data):
    out = bytearray()
    i = 0
    while True:
        j = data.index(b"\n", i)
        size = int(data[i:j].split(b";")[0].strip(), 16)
        if size == 0:
            return bytes(out)
        out += data[j + 1:j + 1 + size]
        i = j + 1 + size
        if data[i:i + 2] == b"\r\n":
            i += 2
        elif data[i:i + 1] == b"\n":
            i += 1


def loopback_target(authority, default_port):
    """(connect host, port, "host:port") for a loopback authority; BadRequest
    when it does not parse, PermissionError when it is not loopback."""
    if "@" in authority:
        raise BadRequest("userinfo in the proxy target")
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port = authority.rpartition(":")
        if not sep:
            host, port = authority, ""
    host = host.lower()
    if port == "":
        if default_port is None:
            raise BadRequest("no port in %r" % authority)
        port = default_port
    else:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise BadRequest("bad port in %r" % authority)
        port = int(port)
    if host not in LOOPBACK_HOSTS:
        raise PermissionError("%s is not a loopback host" % host)
    return LOOPBACK_HOSTS[host], port, "%s:%d" % (host, port)


def redact_headers(items):
    out = {}
    for name, value in items:
        name = name.lower()
        if name == "authorization":
            signed = [p.strip() for p in value.replace(",", " ").split()
                      if p.strip().startswith("SignedHeaders=")]
            value = signed[0] if signed else "<redacted>"
        elif name == "proxy-authorization":
            value = value.split(None, 1)[0] + " <redacted>" if value.strip() \
                else ""
        out[name] = out[name] + ", " + value if name in out else value
    return out


# ---------------------------------------------------------------- handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "awsfake"
    timeout = 300

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP,
                                       socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if VERBOSE:
            sys.stderr.write("awsfake: %s %s\n"
                             % (self.address_string(), fmt % args))
            sys.stderr.flush()

    def parse_request(self):
        real = self.rfile
        self.rfile = LineRecorder(real)
        try:
            return BaseHTTPRequestHandler.parse_request(self)
        finally:
            self.raw_headers = self.rfile.lines
            self.rfile = real

    # every method goes to dispatch
    def do_GET(self):
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = \
        do_TRACE = do_CONNECT = do_GET

    # -- answers

    def reply(self, status, body=b"", ctype="text/plain", extra=(),
              close=False):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.responded = True
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def reply_json(self, status, obj, ctype="application/json", indent=None):
        self.reply(status, json.dumps(obj, indent=indent) + "\n", ctype)

    def read_body(self):
        """The request body (dechunked), up to MAX_BODY."""
        kind, n = body_kind(self.headers.get("Transfer-Encoding"),
                            self.headers.get("Content-Length"))
        if kind == "length" and n > MAX_BODY:
            raise BadRequest("body too large")
        chunks = []
        size = [0]

        def take(d):
            size[0] += len(d)
            if size[0] > 2 * MAX_BODY:
                raise BadRequest("body too large")
            chunks.append(d)
        copy_body(self.rfile, kind, n, take)
        data = b"".join(chunks)
        if kind == "chunked":
            try:
                data = dechunk(data)
            except ValueError:
                raise BadRequest("bad chunked body")
        return data

    def dispatch(self):
        self.responded = False
        try:
            self.route()
        except BadRequest as e:
            log("bad request: %s" % e)
            if not self.responded:
                self.reply(400, "awsfake: %s\n" % e, close=True)
            self.close_connection = True
        except (OSError, ValueError) as e:
            log("connection error: %s" % e)
            self.close_connection = True
        except Exception as e:           # never die on a request
            log("internal error: %r" % e)
            self.close_connection = True
            if not self.responded:
                try:
                    self.reply(500, "awsfake: internal error\n", close=True)
                except OSError:
                    pass

    def route(self):
        target = self.path
        if self.command == "CONNECT":
            return self.tunnel()
        low = target[:8].lower()
        if low.startswith("http://"):
            rest = target[7:]
            cut = min([i for i in (rest.find("/"), rest.find("?"))
                       if i >= 0] or [len(rest)])
            authority, origin = rest[:cut], rest[cut:]
            if not origin.startswith("/"):
                origin = "/" + origin
            if origin.startswith("/__fake__/"):
                return self.control(origin)
            return self.forward(authority, origin)
        if low.startswith("https://"):
            self.read_body()
            return self.reply(400, "awsfake: https:// through the proxy "
                              "takes CONNECT\n")
        path = target.split("?", 1)[0]
        if path.startswith("/__fake__/"):
            return self.control(target)
        if path.startswith("/latest/"):
            return self.imds(path)
        if path.startswith("/container/"):
            return self.container()
        if path in ("/", "/sts", "/sts/"):
            return self.sts()
        self.read_body()
        self.reply(404, "awsfake: nothing at %s\n" % path[:200])

    # -- control

    def control(self, target):
        body = self.read_body()
        path = target.split("?", 1)[0]
        m = self.command
        if path == "/__fake__/config":
            if m == "GET":
                return self.reply_json(200, STATE.get_config(), indent=1)
            if m == "DELETE":
                STATE.reset_config()
                log("config reset")
                return self.reply_json(200, STATE.get_config(), indent=1)
            if m in ("POST", "PUT"):
                try:
                    patch = json.loads(body.decode("utf-8") or "{}")
                    cfg = STATE.merge(patch)
                except (ValueError, UnicodeDecodeError) as e:
                    return self.reply_json(400, {"error": str(e)})
                log("config now %s" % json.dumps(cfg))
                return self.reply_json(200, cfg, indent=1)
        elif path == "/__fake__/stats":
            if m == "GET":
                return self.reply_json(200, STATE.snapshot(), indent=1)
            if m == "DELETE":
                snap = STATE.snapshot()
                STATE.reset_stats()
                snap["cleared"] = True
                return self.reply_json(200, snap, indent=1)
        else:
            return self.reply(404, "awsfake: /__fake__/config or "
                              "/__fake__/stats\n")
        self.reply(405, "awsfake: method not allowed\n",
                   extra=[("Allow", "GET, POST, DELETE")])

    # -- modes

    def mode(self, service):
        """Act on the service's mode. True when the caller should answer with
        credentials; "expired" when they should be expired."""
        mode = STATE.cfg(service, "mode")
        if mode.startswith("slow:"):
            secs = float(mode[5:])
            log("%s: slow, sleeping %gs" % (service, secs))
            time.sleep(secs)
            return True
        if mode == "401":
            STATE.count(service, "faults")
            self.reply(401, "awsfake: %s: 401 Unauthorized (mode)\n"
                       % service)
            return False
        if mode == "500":
            STATE.count(service, "faults")
            self.reply(500, "awsfake: %s: 500 Internal Server Error (mode)\n"
                       % service)
            return False
        if mode == "garbage":
            STATE.count(service, "faults")
            ctype = {"imds": "text/plain", "container": "application/json",
                     "sts": "text/xml"}[service]
            self.reply(200, "FAKE-LEAK this is no credentials document; "
                       "secret %s; FAKE-LEAK ]]]\n" % STATE.secret_key,
                       ctype)
            return False
        if mode == "expired":
            STATE.count(service, "faults")
            return "expired"
        return True

    # -- IMDS

    def imds(self, path):
        self.read_body()
        mode = STATE.cfg("imds", "mode")
        m = self.command
        if path == "/latest/api/token":
            if m != "PUT":
                return self.reply(405, "", extra=[("Allow", "PUT")])
            STATE.count("imds", "token_puts")
            if mode == "v1only":
                return self.reply(404, "awsfake: imds: no IMDSv2 (v1only)\n")
            if self.headers.get("X-Forwarded-For") is not None:
                return self.reply(403, "awsfake: imds: X-Forwarded-For\n")
            ttl = (self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
                   or "").strip()
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "awsfake: imds: bad or missing "
                                  "X-aws-ec2-metadata-token-ttl-seconds\n")
            tok = STATE.new_imds_token(int(ttl))
            return self.reply(200, tok, extra=[
                ("X-aws-ec2-metadata-token-ttl-seconds", ttl)])
        base = "/latest/meta-data/iam/security-credentials"
        if path not in (base, base + "/", base + "/" + ROLE_NAME):
            return self.reply(404, "awsfake: imds: nothing at %s\n"
                              % path[:200])
        if m not in ("GET", "HEAD"):
            return self.reply(405, "", extra=[("Allow", "GET")])
        is_doc = path.endswith("/" + ROLE_NAME)
        STATE.count("imds", "cred_gets" if is_doc else "list_gets")
        if mode != "v1only" and not STATE.cfg("imds", "allow_v1") and \
                not STATE.imds_token_ok(
                    self.headers.get("X-aws-ec2-metadata-token")):
            STATE.count("imds", "unauthorized")
            return self.reply(401, "")
        if not is_doc:
            return self.reply(200, ROLE_NAME)
        ok = self.mode("imds")
        if not ok:
            return
        c = STATE.issue("imds", expired=(ok == "expired"))
        doc = {"Code": "Success", "LastUpdated": utc(time.time()),
               "Type": "AWS-HMAC", "AccessKeyId": c["AccessKeyId"],
               "SecretAccessKey": c["SecretAccessKey"], "Token": c["Token"],
               "Expiration": c["Expiration"]}
        self.reply(200, json.dumps(doc, indent=2), "text/plain")

    # -- container

    def container(self):
        self.read_body()
        if self.command not in ("GET", "HEAD"):
            return self.reply(405, "", extra=[("Allow", "GET")])
        STATE.count("container", "gets")
        got = self.headers.get("Authorization")
        STATE.note("container", last_authorization=got)
        want = STATE.cfg("container", "auth_token")
        if want and got != want:
            STATE.count("container", "unauthorized")
            return self.reply(401, "awsfake: container: bad or missing "
                              "Authorization\n")
        ok = self.mode("container")
        if not ok:
            return
        c = STATE.issue("container", expired=(ok == "expired"))
        c["RoleArn"] = CONTAINER_ROLE_ARN
        self.reply_json(200, c)

    # -- STS

    def sts_error(self, code, message, status=400):
        STATE.count("sts", "rejected")
        body = ('<ErrorResponse xmlns="%s"><Error><Type>Sender</Type>'
                '<Code>%s</Code><Message>%s</Message></Error>'
                '<RequestId>%s</RequestId></ErrorResponse>\n'
                % (STS_NS, code, xml_escape(message), uuid.uuid4()))
        self.reply(status, body, "text/xml")

    def sts(self):
        body = self.read_body()
        if self.command != "POST":
            return self.reply(405, "awsfake: sts: POST\n",
                              extra=[("Allow", "POST")])
        STATE.count("sts", "calls")
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            form = {}
        p = {k: v[0] for k, v in form.items()}
        STATE.note("sts", last_role_arn=p.get("RoleArn"),
                   last_session_name=p.get("RoleSessionName"),
                   last_token=p.get("WebIdentityToken"))
        ctype = (self.headers.get("Content-Type") or "").lower()
        if not ctype.startswith("application/x-www-form-urlencoded"):
            return self.sts_error("InvalidRequest", "awsfake: the body must "
                                  "be application/x-www-form-urlencoded")
        if self.headers.get("Authorization") is not None:
            return self.sts_error("InvalidRequest", "awsfake: "
                                  "AssumeRoleWithWebIdentity is an unsigned "
                                  "call; the request has an Authorization "
                                  "header")
        if p.get("Action") != "AssumeRoleWithWebIdentity":
            return self.sts_error("InvalidAction", "Could not find operation "
                                  "%s" % (p.get("Action") or "")[:100])
        if p.get("Version") != "2011-06-15":
            return self.sts_error("InvalidParameterValue", "Version must be "
                                  "2011-06-15")
        for k in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
            if not p.get(k):
                return self.sts_error("MissingParameter", "The request must "
                                      "contain the parameter %s" % k)
        want = STATE.cfg("sts", "expected_token")
        if want and p["WebIdentityToken"] != want:
            return self.sts_error("InvalidIdentityToken", "Couldn't "
                                  "retrieve verification key from your "
                                  "identity provider")
        ok = self.mode("sts")
        if not ok:
            return
        c = STATE.issue("sts", expired=(ok == "expired"))
        role = p["RoleArn"].rsplit("/", 1)[-1]
        sess = p["RoleSessionName"]
        arn = "arn:aws:sts::123456789012:assumed-role/%s/%s" % (role, sess)
        rid = "AROAFAKEFAKEFAKEFAKE:%s" % sess
        x = xml_escape
        out = ('<AssumeRoleWithWebIdentityResponse xmlns="%s">'
               '<AssumeRoleWithWebIdentityResult>'
               '<SubjectFromWebIdentityToken>fake-subject'
               '</SubjectFromWebIdentityToken>'
               '<Credentials><AccessKeyId>%s</AccessKeyId>'
               '<SecretAccessKey>%s</SecretAccessKey>'
               '<SessionToken>%s</SessionToken>'
               '<Expiration>%s</Expiration></Credentials>'
               '<AssumedRoleUser><Arn>%s</Arn>'
               '<AssumedRoleId>%s</AssumedRoleId></AssumedRoleUser>'
               '</AssumeRoleWithWebIdentityResult>'
               '<ResponseMetadata><RequestId>%s</RequestId>'
               '</ResponseMetadata></AssumeRoleWithWebIdentityResponse>\n'
               % (STS_NS, x(c["AccessKeyId"]), x(c["SecretAccessKey"]),
                  x(c["Token"]), c["Expiration"], x(arn), x(rid),
                  uuid.uuid4()))
        self.reply(200, out, "text/xml")

    # -- forward proxy

    def forward(self, authority, origin):
        rec = {"method": self.command, "target": authority, "path": origin,
               "headers": redact_headers(self.headers.items()),
               "status": None}
        kind, n = body_kind(self.headers.get("Transfer-Encoding"),
                            self.headers.get("Content-Length"))
        try:
            host, port, rec["target"] = loopback_target(authority, 80)
        except PermissionError as e:
            rec["status"] = 403
            STATE.add_proxy_record("requests", rec)
            copy_body(self.rfile, kind, n, None)
            return self.reply(403, "awsfake: proxy: %s\n" % e)
        except BadRequest:
            rec["status"] = 400
            STATE.add_proxy_record("requests", rec)
            raise
        STATE.add_proxy_record("requests", rec)
        try:
            up = socket.create_connection((host, port),
                                          timeout=UPSTREAM_TIMEOUT)
        except OSError as e:
            rec["status"] = 502
            copy_body(self.rfile, kind, n, None)
            return self.reply(502, "awsfake: proxy: %s:%d: %s\n"
                              % (host, port, e.strerror or e))
        try:
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            head = [("%s %s %s\r\n" % (self.command, origin,
                                       self.request_version))
                    .encode("latin-1")]
            skipping = False
            for line in self.raw_headers:
                if line[:1] in (b" ", b"\t") and line.strip():
                    if not skipping:
                        head.append(line)
                    continue
                name = line.split(b":", 1)[0].strip().lower()
                skipping = name in HOP_HEADERS
                if not skipping:
                    head.append(line)
            try:
                up.sendall(b"".join(head))
                copy_body(self.rfile, kind, n, up.sendall)
            except OSError as e:
                # the upstream may have answered early and closed: relay
                # its answer, then drop the client connection (the rest
                # of its body was not read)
                log("proxy: sending the request: %s" % e)
                self.close_connection = True
            uf = up.makefile("rb", buffering=BUF)
            while True:
                raw, status, version, hdrs = read_head(uf)
                if 100 <= status < 200 and status != 101:
                    continue        # http.server sent our own 100 Continue
                break
            rec["status"] = status
            if self.command == "HEAD" or status < 200 or \
                    status in (204, 304):
                rkind, rn = "none", 0
            else:
                rkind, rn = body_kind(hget(hdrs, "transfer-encoding"),
                                      hget(hdrs, "content-length"))
                if rkind == "none" and \
                        hget(hdrs, "transfer-encoding") is None and \
                        hget(hdrs, "content-length") is None:
                    rkind = "eof"
            self.responded = True
            self.wfile.write(raw)
            copy_body(uf, rkind, rn, self.wfile.write)
            conn = hget(hdrs, "connection")
            if rkind == "eof" or status == 101 or \
                    has_token(conn, "close") or \
                    (version == "HTTP/1.0" and
                     not has_token(conn, "keep-alive")):
                self.close_connection = True
            log("proxy %s %s%s -> %d" % (self.command, rec["target"],
                                         origin[:200], status))
        except (BadRequest, OSError) as e:
            log("proxy: %s" % e)
            self.close_connection = True
            if not self.responded:
                status = 504 if isinstance(e, socket.timeout) else 502
                self.reply(status, "awsfake: proxy: upstream: %s\n" % e,
                           close=True)
                rec["status"] = status
        finally:
            up.close()

    def tunnel(self):
        rec = {"method": "CONNECT", "target": self.path, "path": "",
               "headers": redact_headers(self.headers.items()),
               "status": None}
        try:
            host, port, rec["target"] = loopback_target(self.path, None)
        except PermissionError as e:
            rec["status"] = 403
            STATE.add_proxy_record("connects", rec)
            return self.reply(403, "awsfake: proxy: %s\n" % e)
        except BadRequest:
            rec["status"] = 400
            STATE.add_proxy_record("connects", rec)
            raise
        STATE.add_proxy_record("connects", rec)
        try:
            up = socket.create_connection((host, port),
                                          timeout=UPSTREAM_TIMEOUT)
        except OSError as e:
            rec["status"] = 502
            return self.reply(502, "awsfake: proxy: %s:%d: %s\n"
                              % (host, port, e.strerror or e))
        rec["status"] = 200
        self.close_connection = True
        self.responded = True
        cl = self.connection
        try:
            # a 2xx answer to CONNECT has no Content-Length (RFC 9110 9.3.6)
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            # bytes the client sent after its header, already buffered
            cl.setblocking(False)
            try:
                early = self.rfile.peek(BUF)
            except (BlockingIOError, OSError):
                early = b""
            finally:
                cl.settimeout(self.timeout)
            if early:
                up.sendall(self.rfile.read1(len(early)))
            log("tunnel to %s open" % rec["target"])
            pipe(cl, up)
        finally:
            up.close()
            log("tunnel to %s closed" % rec["target"])


def pipe(a, b):
    """Copy bytes both ways until both sides are done."""
    peer = {a: b, b: a}
    readers = [a, b]
    while readers:
        r, _, _ = select.select(readers, [], [], TUNNEL_IDLE)
        if not r:
            return
        for s in r:
            try:
                data = s.recv(BUF)
            except OSError:
                data = b""
            if data:
                try:
                    peer[s].sendall(data)
                except OSError:
                    return
                continue
            readers.remove(s)
            try:
                peer[s].shutdown(socket.SHUT_WR)
            except OSError:
                pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def server_bind(self):
        # not HTTPServer's: its getfqdn() would ask the resolver
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def handle_error(self, request, client_address):
        if VERBOSE:
            ThreadingHTTPServer.handle_error(self, request, client_address)


def listen_addr(s):
    host, sep, port = s.rpartition(":")
    if not sep or host not in ("127.0.0.1", "localhost") or \
            not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError("want 127.0.0.1:PORT, got %r" % s)
    return "127.0.0.1", int(port)


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def main():
    global VERBOSE, STATE
    ap = argparse.ArgumentParser(
        description="loopback fakes of IMDS, the container credentials "
                    "endpoint and STS, plus a forward proxy (see the "
                    "docstring at the top of this file)")
    ap.add_argument("--listen", type=listen_addr, required=True,
                    help="127.0.0.1:PORT to listen on (0: any free port)")
    ap.add_argument("--port-file", help="write the listening port here")
    ap.add_argument("--pidfile", help="write the process id here")
    ap.add_argument("--access-key", required=True,
                    help="access key id of the credentials handed out")
    ap.add_argument("--secret-key", required=True,
                    help="secret key of the credentials handed out")
    ap.add_argument("--ttl", type=int, default=3600,
                    help="lifetime of the credentials, seconds (3600)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.ttl < 1:
        ap.error("--ttl: at least 1")
    VERBOSE = a.verbose
    STATE = State(a.access_key, a.secret_key, a.ttl)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, stop)
    srv = Server(a.listen, Handler)
    port = srv.server_address[1]
    try:
        if a.pidfile:
            write_atomic(a.pidfile, "%d\n" % os.getpid())
        if a.port_file:
            write_atomic(a.port_file, "%d\n" % port)
        print("awsfake: listening on 127.0.0.1:%d" % port, flush=True)
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
