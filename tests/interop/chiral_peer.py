#!/usr/bin/python3
"""A Chiral node as a BitTorrent seeder or leecher on 127.0.0.1, with the JSON-lines interface of btdriver.py, so
that benchmarks and selftests can put Chiral next to libtorrent, aria2 and qBittorrent.

  chiral_peer.py seed  TORRENT DATA_DIR  [--port N] [--work DIR]
  chiral_peer.py leech TORRENT|MAGNET SAVE_DIR [--peer HOST:PORT]... [--exit-on-done] [--work DIR]

Starts `chiral daemon` with its own data directory under --work (DHT bootstrap none, everything on 127.0.0.1).
seed: `chiral get TORRENT -o DATA_DIR` finds every piece on disk (each is hashed) and seeds.  leech: each connect
runs `chiral get TORRENT -o SAVE_DIR --from HOST:PORT`.  "pid" is the daemon's JVM; "seconds" in the done line is
the node's own transfer time (from the get request to the last verified piece), not the CLI's.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import btdriver  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CHIRAL = os.path.join(ROOT, "chiral")


class ChiralPeer(btdriver.Driver):
    name = "chiral"
    poll_interval = 0.05
    kill_grace = 10.0

    def cli(self, *args, timeout=600):
        r = subprocess.run([CHIRAL, "--data", self.data] + list(args), capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("chiral %s: %s" % (" ".join(args[:2]), (r.stderr or r.stdout).strip()))
        return r.stdout

    def start(self):
        a = self.args
        self.data = os.path.join(self.work, "node")
        port = a.port or btdriver.free_port()
        env = dict(os.environ, CHIRAL_NO_BUILD=os.environ.get("CHIRAL_NO_BUILD", "1"))
        self.daemon = self.spawn([CHIRAL, "daemon", "--data", self.data, "--bind", "127.0.0.1", "--bt-port", str(port),
                                  "--http-port", "0", "--control-port", "0", "--dht-port", "0",
                                  "--mainline-bootstrap", "none"], "daemon.log", env=env)
        deadline = time.time() + a.timeout
        while True:
            if self.daemon.poll() is not None:
                raise RuntimeError("chiral daemon exited (%s); see %s" % (self.daemon.returncode, self.work))
            if os.path.exists(os.path.join(self.data, "config", "control.json")):
                try:
                    if "bittorrent" in self.cli("protocols", timeout=30):
                        break
                except (RuntimeError, subprocess.TimeoutExpired):
                    pass
            if time.time() > deadline:
                raise RuntimeError("chiral daemon not up after %s s" % a.timeout)
            time.sleep(0.2)
        self.getter = None
        self.result = None
        if a.mode == "seed":
            out = json.loads(self.cli("--json", "get", a.torrent, "-o", a.dir))
            if out.get("state") != "COMPLETED":
                raise RuntimeError("seeding needs the complete data in %s: %s" % (a.dir, out.get("error")))
        return {"port": port, "pid": self.daemon.pid}

    def connect(self, host, port):
        self.peer_given()
        if self.args.mode == "seed" or self.getter is not None:
            return  # a seeder waits for leechers; one get per leecher run
        self.getter = subprocess.Popen([CHIRAL, "--data", self.data, "--json", "get", self.args.torrent, "-o",
                                        self.args.dir, "--from", "%s:%d" % (host, port)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def again(self, save_dir):
        # a get of the same torrent into another directory replaces the finished download and fetches it again
        self.getter = None
        self.result = None

    def status(self):
        if self.args.mode == "seed":
            return {"progress": 1.0, "rate": 0, "peers": 0, "complete": True, "total": 0}
        if self.getter is not None and self.result is None and self.getter.poll() is not None:
            out, err = self.getter.communicate()
            if self.getter.returncode != 0:
                return {"error": "chiral get failed: " + (err or out).strip()}
            self.result = json.loads(out)
        if self.result is None:
            return {"progress": 0.0, "rate": 0, "peers": 1 if self.getter else 0, "complete": False, "total": 0}
        r = self.result
        return {"progress": 1.0, "rate": 0, "peers": len(r.get("bytesPerSource", {})), "complete": True,
                "total": r["totalBytes"], "seconds": r["elapsedSeconds"]}

    def stop(self):
        if getattr(self, "data", None) and self.daemon.poll() is None:
            try:
                self.cli("stop", timeout=30)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass


if __name__ == "__main__":
    btdriver.main(ChiralPeer)
