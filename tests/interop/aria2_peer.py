#!/usr/bin/python3
"""aria2c 1.36 as a seeder or leecher on 127.0.0.1, driven through its JSON-RPC (plain python3 stdlib).

  aria2_peer.py seed  TORRENT DATA_DIR         [--port N] [--tracker URL]... [--skip-check]
  aria2_peer.py leech TORRENT|MAGNET SAVE_DIR  [--peer HOST:PORT]... [--tracker URL]... [--exit-on-done] ...

JSON-lines interface shared with lt_peer.py etc.: see btdriver.py.

aria2c has no "connect to this peer" option or RPC, and 1.36 ignores x.pe= in magnet links (bittorrent_helper.cc
parseMagnet reads only xt, tr and dn; verified here: a magnet with x.pe=127.0.0.1:P and no tracker never
connects).  So this driver runs a static HTTP tracker (btdriver.StaticTracker) on 127.0.0.1 that answers every
announce with the peers given by --peer / {"connect": ...}, and passes it with --bt-tracker; --tracker URLs are
added the same way.  aria2 re-announces every 2 s (tracker interval), so a {"connect"} takes effect within ~2 s.

aria2c command line (proven on Debian 12, aria2 1.36.0):
  aria2c --enable-rpc=true --rpc-listen-all=false --rpc-listen-port=R --rpc-secret=S
         --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
         --disable-ipv6=true --interface=127.0.0.1 --listen-port=P --bt-external-ip=127.0.0.1
         --seed-ratio=0.0 (seed forever; the default 1.0 stops after uploading one copy)
         --check-integrity=true (seed: hash-check DATA_DIR, then seed; --skip-check: --bt-seed-unverified=true)
         --file-allocation=none --bt-tracker=http://127.0.0.1:T/announce --stop-with-process=DRIVER_PID
         --dir=DIR TORRENT
"""
import json
import os
import secrets
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import btdriver  # noqa: E402


class Aria2Peer(btdriver.Driver):
    name = "aria2"
    poll_interval = 0.1
    kill_grace = 1.5        # aria2c needs ~1.2 s to act on SIGTERM (it polls signals on its 1 s tick)

    def rpc(self, method, *params):
        body = json.dumps({"jsonrpc": "2.0", "id": "d", "method": method,
                           "params": ["token:" + self.secret] + list(params)}).encode()
        req = urllib.request.Request(self.rpc_url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            res = json.loads(r.read())
        if "error" in res:
            raise RuntimeError("aria2 rpc %s: %s" % (method, res["error"]))
        return res["result"]

    def start(self):
        a = self.args
        self.port = a.port or btdriver.free_port()
        rpc_port = btdriver.free_port()
        self.secret = secrets.token_hex(8)
        self.rpc_url = "http://127.0.0.1:%d/jsonrpc" % rpc_port
        self.tracker = btdriver.StaticTracker(a.peers, interval=2)   # peers known before the first announce
        trackers = [self.tracker.url] + list(a.tracker)
        cmd = ["aria2c",
               "--enable-rpc=true", "--rpc-listen-all=false", "--rpc-listen-port=%d" % rpc_port,
               "--rpc-secret=" + self.secret,
               "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
               "--enable-peer-exchange=false", "--disable-ipv6=true", "--interface=127.0.0.1",
               "--listen-port=%d" % self.port, "--bt-external-ip=127.0.0.1",
               "--seed-ratio=0.0", "--file-allocation=none", "--auto-file-renaming=false",
               "--allow-overwrite=true", "--summary-interval=0", "--console-log-level=warn",
               "--log=" + os.path.join(self.work, "aria2.log"), "--log-level=info",
               "--bt-tracker=" + ",".join(trackers), "--stop-with-process=%d" % os.getpid(),
               "--dir=" + a.dir]
        if a.mode == "seed":
            cmd += ["--bt-seed-unverified=true"] if a.skip_check else ["--check-integrity=true"]
        else:
            cmd += ["--check-integrity=true"]   # resume-safe; hashes what is already in SAVE_DIR
        cmd.append(a.torrent)
        self.spawn(cmd, "aria2c.out")
        if a.mode == "leech" and a.tracker:
            self.peer_given()
        deadline = time.time() + a.timeout
        while True:
            if self.children[0].poll() is not None:
                raise RuntimeError("aria2c exited with %s: %s" % (self.children[0].returncode, self.tail()))
            try:
                st = self.status()
            except OSError:
                st = None
            if st is not None:
                if st.get("error"):
                    raise RuntimeError(st["error"])
                if a.mode == "leech" or st.get("complete"):
                    break
            if time.time() > deadline:
                raise RuntimeError("not ready after %s s: %s" % (a.timeout, st))
            time.sleep(0.1)
        return {"port": self.port, "rpc_port": rpc_port, "tracker": self.tracker.url}

    def tail(self):
        try:
            with open(os.path.join(self.work, "aria2c.out"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def downloads(self):
        keys = ["gid", "status", "totalLength", "completedLength", "downloadSpeed", "uploadSpeed", "connections",
                "seeder", "followedBy", "errorCode", "errorMessage", "bittorrent", "verifiedLength",
                "verifyIntegrityPending"]
        return self.rpc("aria2.tellActive", keys) + self.rpc("aria2.tellWaiting", 0, 100, keys) + \
            self.rpc("aria2.tellStopped", 0, 100, keys)

    def status(self):
        ds = [d for d in self.downloads() if not d.get("followedBy")]   # a magnet's metadata download is followed
        if not ds:
            return {"progress": 0.0, "rate": 0, "peers": 0, "complete": False, "total": 0}
        d = ds[0]
        if d["status"] == "error":
            return {"error": "aria2 download error %s: %s" % (d.get("errorCode"), d.get("errorMessage"))}
        total, got = int(d["totalLength"]), int(d["completedLength"])
        is_meta = "info" not in d.get("bittorrent", {})
        complete = (not is_meta and total > 0 and got == total and d["status"] in ("active", "complete")
                    and "verifiedLength" not in d and d.get("verifyIntegrityPending") != "true")
        if self.args.mode == "seed":
            complete = complete and d.get("seeder") == "true"
        return {"progress": (got / total) if total and not is_meta else 0.0,
                "rate": int(d["downloadSpeed"] if self.args.mode == "leech" else d["uploadSpeed"]),
                "peers": int(d["connections"]), "complete": complete, "total": total}

    def connect(self, host, port):
        self.peer_given()
        self.tracker.add(host, port)

    def stop(self):
        # No aria2.forceShutdown: it schedules the shutdown 3 s later.  SIGTERM (kill_children) exits at once.
        if hasattr(self, "tracker"):
            self.tracker.close()


def extra(ap):
    ap.add_argument("--skip-check", action="store_true", help="seed: trust DATA_DIR (--bt-seed-unverified)")


if __name__ == "__main__":
    btdriver.main(Aria2Peer, extra=extra)
