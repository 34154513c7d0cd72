#!/usr/bin/python3
"""transmission-daemon 3.00 as a seeder or leecher on 127.0.0.1, driven through its RPC (python3 stdlib).

  transmission_peer.py seed  TORRENT DATA_DIR         [--port N] [--tracker URL]...
  transmission_peer.py leech TORRENT|MAGNET SAVE_DIR  [--peer HOST:PORT]... [--tracker URL]... [--exit-on-done]

JSON-lines interface shared with lt_peer.py etc.: see btdriver.py.

The driver writes WORK/config/settings.json (DHT, LPD, PEX, uTP, port forwarding, blocklist, queues, ratio and
idle limits off; peers bound to 127.0.0.1 (IPv4) and ::1 (IPv6; 3.00 cannot switch IPv6 off); peer port chosen
here; RPC on 127.0.0.1:free port without authentication, whitelisted to 127.0.0.1) and runs
`transmission-daemon -f -g WORK/config -e WORK/transmission.log`.  torrent-add (metainfo base64 or a magnet in
"filename", download-dir=DIR); seed: torrent-verify, then ready when status is 6 (seeding) with percentDone 1.

Transmission 3.00 has no RPC to add a peer, so --peer / {"connect": ...} go through a static HTTP tracker
(btdriver.StaticTracker) added with torrent-set trackerAdd; a {"connect"} is followed by torrent-reannounce.
--tracker URLs (e.g. opentracker) are added the same way.
"""
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import btdriver  # noqa: E402

FIELDS = ["id", "hashString", "percentDone", "rateDownload", "rateUpload", "peersConnected", "status", "error",
          "errorString", "leftUntilDone", "sizeWhenDone", "totalSize", "recheckProgress", "metadataPercentComplete"]


class TransmissionPeer(btdriver.Driver):
    name = "transmission"
    poll_interval = 0.1

    def rpc(self, method, **arguments):
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(3):
            req = urllib.request.Request(self.rpc_url, body, {"Content-Type": "application/json",
                                                              "X-Transmission-Session-Id": self.session_id})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    res = json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code == 409:       # CSRF dance: take the session id and retry
                    self.session_id = e.headers.get("X-Transmission-Session-Id", "")
                    continue
                raise
            if res.get("result") != "success":
                raise RuntimeError("transmission rpc %s: %s" % (method, res.get("result")))
            return res.get("arguments", {})
        raise RuntimeError("transmission rpc %s: no session id" % method)

    def write_settings(self, confdir, rpc_port):
        os.makedirs(confdir, exist_ok=True)
        s = {
            "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
            "peer-port": self.port, "peer-port-random-on-start": False, "port-forwarding-enabled": False,
            "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
            "rpc-enabled": True, "rpc-bind-address": "127.0.0.1", "rpc-port": rpc_port,
            "rpc-authentication-required": False, "rpc-whitelist-enabled": True, "rpc-whitelist": "127.0.0.1",
            "rpc-host-whitelist-enabled": False,
            "download-dir": self.args.dir, "incomplete-dir-enabled": False, "watch-dir-enabled": False,
            "rename-partial-files": False, "start-added-torrents": True, "trash-original-torrent-files": False,
            "ratio-limit-enabled": False, "idle-seeding-limit-enabled": False,
            "speed-limit-down-enabled": False, "speed-limit-up-enabled": False,
            "alt-speed-enabled": False, "alt-speed-time-enabled": False, "blocklist-enabled": False,
            "download-queue-enabled": False, "seed-queue-enabled": False, "queue-stalled-enabled": False,
            "encryption": 1, "preallocation": 0, "message-level": 2, "peer-limit-global": 200,
            "peer-limit-per-torrent": 50, "scrape-paused-torrents-enabled": False, "cache-size-mb": 4,
        }
        with open(os.path.join(confdir, "settings.json"), "w") as f:
            json.dump(s, f, indent=1)

    def start(self):
        a = self.args
        self.port = a.port or btdriver.free_port()
        rpc_port = btdriver.free_port()
        confdir = os.path.join(self.work, "config")
        self.write_settings(confdir, rpc_port)
        self.rpc_url = "http://127.0.0.1:%d/transmission/rpc" % rpc_port
        self.session_id = ""
        self.tracker = btdriver.StaticTracker(a.peers, interval=2)
        self.spawn(["transmission-daemon", "-f", "-g", confdir, "-e", os.path.join(self.work, "transmission.log")],
                   "transmission-daemon.out", env=dict(os.environ, HOME=self.work))
        deadline = time.time() + a.timeout
        while True:
            if self.children[0].poll() is not None:
                raise RuntimeError("transmission-daemon exited with %s" % self.children[0].returncode)
            try:
                self.version = self.rpc("session-get", fields=["version"]).get("version")
                break
            except (urllib.error.URLError, OSError):
                pass
            if time.time() > deadline:
                raise RuntimeError("RPC not up after %s s" % a.timeout)
            time.sleep(0.1)
        args = {"download-dir": a.dir, "paused": False}
        if a.is_magnet:
            args["filename"] = a.torrent
        else:
            with open(a.torrent, "rb") as f:
                args["metainfo"] = base64.b64encode(f.read()).decode()
        r = self.rpc("torrent-add", **args)
        t = r.get("torrent-added") or r.get("torrent-duplicate")
        self.id = t["id"]
        if a.tracker:
            self.rpc("torrent-set", ids=[self.id], trackerAdd=list(a.tracker))
        self.tracker_added = False
        if a.peers:
            self.add_static_tracker()
        if a.mode == "leech" and a.tracker:
            self.peer_given()
        if a.mode == "seed":
            self.rpc("torrent-verify", ids=[self.id])
            time.sleep(0.2)
            while True:
                st = self.status()
                if st.get("error"):
                    raise RuntimeError(st["error"])
                if st["complete"]:
                    break
                if time.time() > deadline:
                    raise RuntimeError("not seeding after %s s: %s" % (a.timeout, self.info()))
                time.sleep(0.1)
        return {"port": self.port, "rpc_port": rpc_port, "hash": t["hashString"], "version": self.version,
                "tracker": self.tracker.url}

    def info(self):
        ts = self.rpc("torrent-get", ids=[self.id], fields=FIELDS)["torrents"]
        return ts[0] if ts else None

    def status(self):
        t = self.info()
        if t is None:
            return {"error": "torrent vanished"}
        if t["error"] in (3,):       # 1, 2: tracker warning/error (not fatal), 3: local error
            return {"error": "transmission: %s" % t["errorString"]}
        complete = t["status"] == 6 and t["leftUntilDone"] == 0 and t["percentDone"] >= 1 and \
            t["metadataPercentComplete"] >= 1
        return {"progress": t["percentDone"], "peers": t["peersConnected"],
                "rate": t["rateDownload"] if self.args.mode == "leech" else t["rateUpload"],
                "complete": complete, "total": t["sizeWhenDone"]}

    def add_static_tracker(self):
        # only when a peer is given: with several trackers transmission may keep announcing to just one of them
        if not self.tracker_added:
            self.rpc("torrent-set", ids=[self.id], trackerAdd=[self.tracker.url])
            self.tracker_added = True

    def connect(self, host, port):
        self.peer_given()
        if host.startswith("127.") or host == "::1":
            btdriver.emit({"warning": "transmission 3.00 drops tracker-supplied loopback peers as martian "
                                      "(net.c isMartianAddr); %s:%d has to connect to this client instead" % (host, port)})
        self.tracker.add(host, port)
        self.add_static_tracker()
        try:
            self.rpc("torrent-reannounce", ids=[self.id])
        except RuntimeError as e:
            btdriver.log("reannounce:", e)

    def stop(self):
        if hasattr(self, "tracker"):
            self.tracker.close()


if __name__ == "__main__":
    btdriver.main(TransmissionPeer)
