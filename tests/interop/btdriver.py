"""Shared plumbing for the JSON-lines BitTorrent client drivers in this directory (lt_peer.py, aria2_peer.py,
qbt_peer.py, transmission_peer.py).  Plain python3 stdlib; no libtorrent import here.

Uniform interface of every driver:

  DRIVER seed  TORRENT DATA_DIR            [--port N] [--tracker URL]... [--peer HOST:PORT]...
  DRIVER leech TORRENT|MAGNET SAVE_DIR     [--port N] [--tracker URL]... [--peer HOST:PORT]... [--exit-on-done]
         [--work DIR]   (scratch dir for the client's profile/config/logs; default: a new temp dir, removed on exit)

stdout, one JSON object per line (flushed):
  {"ready": true, "port": P, "client": NAME, "pid": PID, ...}
                                                       once, when the client listens (seed: once it seeds);
                                                       PID = the process doing the work (CPU accounting)
  {"progress": f, "rate": B/s, "peers": n, ...}       about once per second
  {"done": true, "seconds": S, "bytes": N}             leech, once complete; S = wall clock from the moment the
                                                       leecher was given its first peer (or its torrent, if the
                                                       peers come from a tracker) to completion
  {"ready": false, "error": "..."} / {"error": "..."}  failures (exit status 1)
stdin, JSON lines:  {"connect": "HOST:PORT"}   {"quit": true}     EOF on stdin == quit.
  {"again": "NEW_SAVE_DIR"}   leech, after done (drivers that implement again(): libtorrent, chiral): forget the
                              finished download and its data, add the torrent again with NEW_SAVE_DIR, answer
                              {"ready": true, "again": true}; the next connect starts a new timed download in the
                              same process (benchmarks of a warm process).
SIGTERM/SIGINT/SIGHUP == quit.  If the driver's parent dies the driver gets SIGTERM (PR_SET_PDEATHSIG); the client
runs in its own process group, with PR_SET_PDEATHSIG=SIGKILL, and the whole group is killed when the driver exits.
"""
import argparse
import ctypes
import http.server
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)

_out_lock = threading.Lock()


def emit(obj):
    with _out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def log(*args):
    sys.stderr.write(" ".join(str(a) for a in args) + "\n")
    sys.stderr.flush()


def set_pdeathsig(sig=signal.SIGTERM):
    _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def free_port(host="127.0.0.1", udp_too=True):
    """A port that is currently free for TCP (and UDP) on host.  Racy by nature, but ports are handed out by the
    kernel's ephemeral allocator so two drivers started together do not collide in practice."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        if not udp_too:
            return port
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
    raise RuntimeError("no free port")


def parse_hostport(s):
    host, _, port = s.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


# ---------------------------------------------------------------------------------------------------------------
# bencode (for the static tracker and for reading .torrent files)

def bencode(x):
    if isinstance(x, bool):
        x = int(x)
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, (bytes, bytearray)):
        return b"%d:%s" % (len(x), bytes(x))
    if isinstance(x, (list, tuple)):
        return b"l" + b"".join(bencode(i) for i in x) + b"e"
    if isinstance(x, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in x.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(type(x))


def bdecode(data, i=0, spans=None):
    """Returns (value, end).  If spans is a dict, spans['info'] = (start, end) of the top-level info dict."""
    c = data[i:i + 1]
    if c == b"i":
        e = data.index(b"e", i)
        return int(data[i + 1:e]), e + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = bdecode(data, i)
            start = i
            v, i = bdecode(data, i)
            if spans is not None and k == b"info":
                spans["info"] = (start, i)
            out[k] = v
        return out, i + 1
    colon = data.index(b":", i)
    n = int(data[i:colon])
    return data[colon + 1:colon + 1 + n], colon + 1 + n


def torrent_info_hash_v1(path):
    import hashlib
    data = open(path, "rb").read()
    spans = {}
    meta, _ = bdecode(data, 0, spans)
    s, e = spans["info"]
    return hashlib.sha1(data[s:e]).hexdigest(), meta


def torrent_total_size(meta):
    info = meta[b"info"]
    if b"length" in info:
        return info[b"length"]
    if b"files" in info:
        return sum(f[b"length"] for f in info[b"files"] if b"attr" not in f or b"p" not in f.get(b"attr", b""))
    return None


# ---------------------------------------------------------------------------------------------------------------
# A static HTTP tracker: answers every announce with a fixed, mutable list of peers (compact).  This is how peers
# are handed to clients that have no "connect to this peer" API (aria2c 1.36, transmission-daemon 3.00).

class StaticTracker:
    def __init__(self, peers=(), interval=2):
        self.peers = list(peers)          # [(host, port)]
        self.interval = interval
        self.announces = []               # [(query dict)] for debugging / proofs
        tracker = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query, keep_blank_values=True, encoding="latin-1")
                tracker.announces.append({k: v[0] for k, v in q.items()})
                compact = b"".join(socket.inet_aton(h) + p.to_bytes(2, "big") for h, p in tracker.peers)
                body = bencode({"interval": tracker.interval, "min interval": 1, "complete": len(tracker.peers),
                                "incomplete": 0, "peers": compact})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):
                log("static-tracker:", fmt % args)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/announce" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, host, port):
        if (host, port) not in self.peers:
            self.peers.append((host, port))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------------------------

def parse_args(argv, extra=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["seed", "leech"])
    ap.add_argument("torrent", help=".torrent file (seed, leech) or magnet URI (leech, where supported)")
    ap.add_argument("dir", help="seed: directory holding the data; leech: save directory")
    ap.add_argument("--peer", action="append", default=[], help="HOST:PORT to connect to (repeatable)")
    ap.add_argument("--tracker", action="append", default=[], help="tracker URL to announce to (repeatable)")
    ap.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    ap.add_argument("--work", help="scratch dir for profile/config/logs (default: new temp dir, removed on exit)")
    ap.add_argument("--exit-on-done", action="store_true", help="leech: exit after printing done")
    ap.add_argument("--timeout", type=float, default=60, help="seconds to wait for the client to get ready")
    if extra:
        extra(ap)
    a = ap.parse_args(argv)
    a.peers = [parse_hostport(p) for p in a.peer]
    a.is_magnet = a.torrent.startswith("magnet:")
    a.dir = os.path.abspath(a.dir)
    if not a.is_magnet:
        a.torrent = os.path.abspath(a.torrent)
    return a


class Driver:
    """Base class.  Subclasses implement start() -> ready dict, status() -> dict(progress, rate, peers, bytes,
    total, seeding, error?), connect(host, port), stop()."""
    name = "?"
    poll_interval = 0.2     # status() polling period while leeching (after done / when seeding: once a second)
    kill_grace = 3.0        # seconds between SIGTERM and SIGKILL of the client's process group

    def __init__(self, args):
        self.args = args
        self.children = []
        self.stop_event = threading.Event()
        self.commands = queue.Queue()
        self.t_peer_given = None
        self.own_work = args.work is None
        self.work = args.work or tempfile.mkdtemp(prefix="%s-peer." % self.name)
        os.makedirs(self.work, exist_ok=True)
        os.makedirs(args.dir, exist_ok=True)

    # -- process management
    def spawn(self, cmd, log_name, **kw):
        logf = open(os.path.join(self.work, log_name), "ab")

        def pre():
            os.setsid()
            set_pdeathsig(signal.SIGKILL)
        log("%s: starting %s" % (self.name, " ".join(cmd)))
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             preexec_fn=pre, **kw)
        self.children.append(p)
        return p

    def kill_children(self, grace=3.0):
        for p in self.children:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + grace
        for p in self.children:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)   # also any stragglers in its group
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                pass

    # -- to override
    def start(self):
        raise NotImplementedError

    def status(self):
        raise NotImplementedError

    def connect(self, host, port):
        raise NotImplementedError

    def stop(self):
        pass

    def again(self, save_dir):
        """Leech mode, after done: drop the finished download and its files, add the torrent again into save_dir."""
        raise NotImplementedError("%s cannot download again in the same process" % self.name)

    # -- main loop
    def _stdin_reader(self):
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                self.commands.put(json.loads(line))
            except ValueError:
                emit({"error": "bad command line: %r" % line})
        self.commands.put({"quit": True, "eof": True})

    def _on_signal(self, signum, frame):
        self.commands.put({"quit": True, "signal": signum})

    def peer_given(self):
        if self.t_peer_given is None:
            self.t_peer_given = time.time()

    def run(self):
        set_pdeathsig(signal.SIGTERM)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._on_signal)
        threading.Thread(target=self._stdin_reader, daemon=True).start()
        rc = 0
        try:
            ready = self.start()
            ready = dict({"ready": True, "client": self.name}, **ready)
            # the process doing the work (for CPU accounting): the client child, or this driver (libtorrent)
            ready.setdefault("pid", self.children[0].pid if self.children else os.getpid())
            emit(ready)
            if self.args.mode == "leech" and self.args.peers:
                for h, p in self.args.peers:
                    self.connect(h, p)
            rc = self.loop()
        except Exception as e:  # noqa: BLE001 - report any failure as JSON
            import traceback
            traceback.print_exc()
            emit({"ready": False, "error": "%s: %s" % (type(e).__name__, e)})
            rc = 1
        finally:
            try:
                self.stop()
            except Exception as e:  # noqa: BLE001
                log("stop failed:", e)
            self.kill_children(self.kill_grace)
            if self.own_work:
                shutil.rmtree(self.work, ignore_errors=True)
        return rc

    def loop(self):
        done = self.args.mode == "seed"
        next_progress = time.time() + 1.0
        next_poll = 0.0
        while True:
            try:
                cmd = self.commands.get(timeout=0.05)
            except queue.Empty:
                cmd = None
            if cmd is not None:
                if cmd.get("quit"):
                    return 0
                if "connect" in cmd:
                    h, p = parse_hostport(cmd["connect"])
                    self.connect(h, p)
                if "again" in cmd:
                    if self.args.mode != "leech" or not done:
                        emit({"error": "again: only a leecher that is done can download again"})
                        return 1
                    self.args.dir = os.path.abspath(cmd["again"])
                    os.makedirs(self.args.dir, exist_ok=True)
                    self.again(self.args.dir)
                    done = False
                    self.t_peer_given = None
                    emit({"ready": True, "again": True})
            for c in self.children:
                if c.poll() is not None:
                    emit({"error": "%s exited with status %s (log in %s)" % (self.name, c.returncode, self.work)})
                    return 1
            now = time.time()
            if (not done and now >= next_poll) or now >= next_progress:
                next_poll = now + self.poll_interval
                st = self.status()
                if st.get("error"):
                    emit({"error": st["error"]})
                    return 1
                if now >= next_progress:
                    emit({"progress": round(st["progress"], 4), "rate": int(st["rate"]), "peers": st["peers"]})
                    next_progress = now + 1.0
                if not done and st.get("complete"):
                    t0 = self.t_peer_given or now
                    done = True
                    # a driver may know the client's own transfer time better than this polling loop does
                    seconds = st.get("seconds", time.time() - t0)
                    emit({"done": True, "seconds": round(seconds, 3), "bytes": st["total"]})
                    if self.args.exit_on_done:
                        return 0


def main(cls, argv=None, extra=None):
    args = parse_args(sys.argv[1:] if argv is None else argv, extra)
    sys.exit(cls(args).run())
