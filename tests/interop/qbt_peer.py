#!/usr/bin/python3
"""qbittorrent-nox 4.5.2 as a seeder or leecher on 127.0.0.1, driven through its WebUI API v2 (python3 stdlib).

  qbt_peer.py seed  TORRENT DATA_DIR         [--port N] [--tracker URL]... [--skip-check]
  qbt_peer.py leech TORRENT|MAGNET SAVE_DIR  [--peer HOST:PORT]... [--tracker URL]... [--exit-on-done] ...

JSON-lines interface shared with lt_peer.py etc.: see btdriver.py.

The driver makes an isolated profile (--profile=WORK/profile), writes WORK/profile/qBittorrent/config/
qBittorrent.conf before the first start (legal notice accepted -- 4.5.2 has no --confirm-legal-notice, without
LegalNotice\\Accepted=true it asks on the terminal; WebUI on 127.0.0.1:free port with LocalHostAuth=false, so no
login from 127.0.0.1; DHT, LSD, PeX, UPnP/NAT-PMP, peer-country lookups (a GeoIP download) and queueing off;
TCP only; bound to interface lo / 127.0.0.1; listening port chosen here), starts qbittorrent-nox, re-applies the
same preferences through /api/v2/app/setPreferences and checks them with /api/v2/app/preferences, then adds the
torrent with /api/v2/torrents/add (savepath=DIR; seed: libtorrent hash-checks DIR, or skip_checking=true with
--skip-check).  --peer / {"connect": ...} use /api/v2/torrents/addPeers; progress comes from /api/v2/torrents/info.
qBittorrent 4.4+ identifies hybrid (v1+v2) torrents by the truncated v2 hash, so the torrent is looked up by its
infohash_v1 field.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import btdriver  # noqa: E402

SEEDING_STATES = {"uploading", "stalledUP", "queuedUP", "forcedUP", "pausedUP"}
ERROR_STATES = {"error", "missingFiles"}


class QbtPeer(btdriver.Driver):
    name = "qbittorrent"
    poll_interval = 0.1

    # -- WebUI API
    def api(self, path, data=None, files=None, timeout=10):
        url = self.base + "/api/v2/" + path
        headers = {}
        body = None
        if files is not None:
            boundary = uuid.uuid4().hex
            parts = []
            for k, v in (data or {}).items():
                parts.append(b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                             % (boundary.encode(), k.encode(), str(v).encode()))
            for k, (fname, content) in files.items():
                parts.append(b'--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                             b'Content-Type: application/x-bittorrent\r\n\r\n%s\r\n'
                             % (boundary.encode(), k.encode(), fname.encode(), content))
            body = b"".join(parts) + b"--%s--\r\n" % boundary.encode()
            headers["Content-Type"] = "multipart/form-data; boundary=" + boundary
        elif data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(url, body, headers)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def prefs(self):
        a = self.args
        return {
            "listen_port": self.port, "random_port": False, "upnp": False,
            "dht": False, "lsd": False, "pex": False, "anonymous_mode": False,
            "bittorrent_protocol": 1,                       # 0 TCP+uTP, 1 TCP, 2 uTP
            "current_network_interface": "lo", "current_interface_address": "127.0.0.1",
            "enable_multi_connections_from_same_ip": True,
            "queueing_enabled": False, "max_ratio_enabled": False, "max_seeding_time_enabled": False,
            "resolve_peer_countries": False, "web_ui_upnp": False, "add_trackers_enabled": False,
            "ip_filter_enabled": False, "temp_path_enabled": False, "save_path": a.dir,
            "preallocate_all": False, "encryption": 0, "limit_lan_peers": False,
            "dl_limit": 0, "up_limit": 0, "alt_dl_limit": 0, "alt_up_limit": 0,
        }

    def write_config(self, profile, webui_port):
        d = os.path.join(profile, "qBittorrent", "config")
        os.makedirs(d, exist_ok=True)
        conf = """[LegalNotice]
Accepted=true

[Application]
FileLogger\\Enabled=true
FileLogger\\Path={work}

[BitTorrent]
Session\\Port={port}
Session\\UseRandomPort=false
Session\\DHTEnabled=false
Session\\LSDEnabled=false
Session\\PeXEnabled=false
Session\\AnonymousModeEnabled=false
Session\\BTProtocol=TCP
Session\\Interface=lo
Session\\InterfaceName=lo
Session\\InterfaceAddress=127.0.0.1
Session\\MultiConnectionsPerIp=true
Session\\QueueingSystemEnabled=false
Session\\GlobalMaxRatio=-1
Session\\GlobalMaxSeedingMinutes=-1
Session\\AddTrackersEnabled=false
Session\\IPFilteringEnabled=false
Session\\TempPathEnabled=false
Session\\DefaultSavePath={dir}
Session\\Preallocation=false
Session\\Encryption=0
Session\\IgnoreLimitsOnLAN=true

[Network]
PortForwardingEnabled=false

[Preferences]
Connection\\ResolvePeerCountries=false
General\\Locale=en
WebUI\\Enabled=true
WebUI\\Address=127.0.0.1
WebUI\\Port={webui}
WebUI\\LocalHostAuth=false
WebUI\\UseUPnP=false
WebUI\\CSRFProtection=false
WebUI\\HostHeaderValidation=false
WebUI\\ClickjackingProtection=false
""".format(work=self.work, port=self.port, dir=self.args.dir, webui=webui_port)
        with open(os.path.join(d, "qBittorrent.conf"), "w") as f:
            f.write(conf)

    def start(self):
        a = self.args
        self.port = a.port or btdriver.free_port()
        webui = btdriver.free_port()
        profile = os.path.join(self.work, "profile")
        self.write_config(profile, webui)
        self.base = "http://127.0.0.1:%d" % webui
        self.spawn(["qbittorrent-nox", "--profile=" + profile, "--webui-port=%d" % webui], "qbittorrent-nox.out",
                   env=dict(os.environ, HOME=self.work, XDG_CONFIG_HOME=os.path.join(self.work, "xdg")))
        deadline = time.time() + a.timeout
        while True:
            if self.children[0].poll() is not None:
                raise RuntimeError("qbittorrent-nox exited with %s: %s" % (self.children[0].returncode, self.tail()))
            try:
                self.version = self.api("app/version", timeout=2)
                break
            except (urllib.error.URLError, OSError):
                pass
            if time.time() > deadline:
                raise RuntimeError("WebUI not up after %s s" % a.timeout)
            time.sleep(0.1)
        want = self.prefs()
        self.api("app/setPreferences", {"json": json.dumps(want)})
        got = self.api("app/preferences")
        bad = {k: (v, got.get(k)) for k, v in want.items() if k in got and got[k] != v}
        if bad:
            raise RuntimeError("preferences not applied: %s" % bad)
        # add the torrent
        fields = {"savepath": a.dir, "paused": "false", "skip_checking": "true" if a.skip_check else "false",
                  "contentLayout": "Original", "autoTMM": "false"}
        if a.is_magnet:
            self.ih_v1 = None
            for part in a.torrent[len("magnet:?"):].split("&"):
                k, _, v = part.partition("=")
                if k == "xt" and v.lower().startswith("urn:btih:"):
                    self.ih_v1 = v[9:].lower()
            fields["urls"] = a.torrent
            r = self.api("torrents/add", fields, files={})
        else:
            self.ih_v1, _meta = btdriver.torrent_info_hash_v1(a.torrent)
            with open(a.torrent, "rb") as f:
                r = self.api("torrents/add", fields, files={"torrents": (os.path.basename(a.torrent), f.read())})
        if str(r).strip() != "Ok.":
            raise RuntimeError("torrents/add answered %r" % r)
        self.hash = None
        while self.hash is None:
            for t in self.api("torrents/info"):
                if self.ih_v1 is None or t.get("infohash_v1") == self.ih_v1 or t.get("hash") == self.ih_v1:
                    self.hash = t["hash"]
            if self.hash is None:
                if time.time() > deadline:
                    raise RuntimeError("torrent did not appear in torrents/info")
                time.sleep(0.1)
        if a.tracker:
            self.api("torrents/addTrackers", {"hash": self.hash, "urls": "\n".join(a.tracker)})
            if a.mode == "leech":
                self.peer_given()
        while a.mode == "seed":
            st = self.status()
            if st.get("error"):
                raise RuntimeError(st["error"])
            if st["complete"]:
                break
            if time.time() > deadline:
                raise RuntimeError("not seeding after %s s: %s" % (a.timeout, self.info()))
            time.sleep(0.1)
        return {"port": self.port, "webui_port": webui, "hash": self.hash, "version": self.version}

    def tail(self):
        try:
            with open(os.path.join(self.work, "qbittorrent-nox.out"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def info(self):
        ts = self.api("torrents/info?hashes=" + self.hash)
        return ts[0] if ts else None

    def status(self):
        t = self.info()
        if t is None:
            return {"error": "torrent vanished"}
        if t["state"] in ERROR_STATES:
            return {"error": "qbittorrent state %s" % t["state"]}
        complete = t["state"] in SEEDING_STATES and t["amount_left"] == 0 and t["progress"] >= 1
        return {"progress": t["progress"], "peers": t["num_seeds"] + t["num_leechs"],
                "rate": t["dlspeed"] if self.args.mode == "leech" else t["upspeed"],
                "complete": complete, "total": t["total_size"] if t["total_size"] > 0 else t["size"]}

    def connect(self, host, port):
        self.peer_given()
        r = self.api("torrents/addPeers", {"hashes": self.hash, "peers": "%s:%d" % (host, port)})
        btdriver.log("qbittorrent: addPeers %s:%d -> %r" % (host, port, r))

    def stop(self):
        if hasattr(self, "base"):
            try:
                self.api("app/shutdown", {}, timeout=2)
                self.children[0].wait(5)
            except Exception:  # noqa: BLE001 - the group is killed anyway
                pass


def extra(ap):
    ap.add_argument("--skip-check", action="store_true", help="seed: skip_checking=true on torrents/add")


if __name__ == "__main__":
    btdriver.main(QbtPeer, extra=extra)
