#!/usr/bin/python3
"""libtorrent 2.0.8 as a seeder or leecher on 127.0.0.1 (run with Debian's /usr/bin/python3).

  lt_peer.py seed  TORRENT DATA_DIR          [--port N] [--tracker URL]... [--high-performance] [--pex]
  lt_peer.py leech TORRENT|MAGNET SAVE_DIR   [--peer HOST:PORT]... [--tracker URL]... [--exit-on-done] ...

JSON-lines interface shared with aria2_peer.py, qbt_peer.py, transmission_peer.py: see btdriver.py.
The session listens on 127.0.0.1 only (TCP; uTP off), DHT, LSD, UPnP and NAT-PMP off, PEX off per torrent unless
--pex.  seed: ready once libtorrent has checked DATA_DIR and seeds.  leech: ready once listening; --peer and
{"connect": "HOST:PORT"} use torrent_handle.connect_peer (works on a magnet before the metadata arrived).
--high-performance applies libtorrent's high_performance_seed() settings pack (larger buffers and queues).
--encryption forced|rc4 makes libtorrent insist on protocol encryption (MSE) instead of trying it first.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import btdriver  # noqa: E402

import libtorrent as lt  # noqa: E402


class LtPeer(btdriver.Driver):
    name = "libtorrent"
    poll_interval = 0.02

    def start(self):
        a = self.args
        settings = {}
        if a.high_performance:
            settings.update(lt.high_performance_seed())
        settings.update({
            "listen_interfaces": "127.0.0.1:%d" % a.port,
            "outgoing_interfaces": "127.0.0.1",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_incoming_utp": False,
            "enable_outgoing_utp": False,
            "allow_multiple_connections_per_ip": True,
            "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
                          | lt.alert.category_t.tracker_notification,
        })
        if a.encryption != "default":
            # forced: only MSE-encrypted handshakes, in and out (no fallback to a plaintext handshake);
            # rc4: and the stream after it enciphered too (plaintext not allowed)
            settings.update({"out_enc_policy": int(lt.enc_policy.forced), "in_enc_policy": int(lt.enc_policy.forced),
                             "allowed_enc_level": int(lt.enc_level.rc4 if a.encryption == "rc4" else lt.enc_level.both),
                             "prefer_rc4": a.encryption == "rc4"})
        self.ses = lt.session(settings)
        self.add(a.dir)
        deadline = time.time() + a.timeout
        while True:
            self.drain_alerts()
            st = self.h.status()
            if st.errc.value() != 0:
                raise RuntimeError(st.errc.message())
            if self.ses.listen_port() != 0 and (a.mode == "leech" or st.is_seeding):
                break
            if time.time() > deadline:
                raise RuntimeError("not ready after %s s: state %s, progress %.3f" % (a.timeout, st.state, st.progress))
            time.sleep(0.02)
        return {"port": self.ses.listen_port(), "info_hash": str(self.h.info_hashes().v1)}

    def add(self, save_dir):
        a = self.args
        if a.is_magnet:
            atp = lt.parse_magnet_uri(a.torrent)
        else:
            atp = lt.add_torrent_params()
            atp.ti = lt.torrent_info(a.torrent)
        atp.save_path = save_dir
        flags = atp.flags & ~lt.torrent_flags.auto_managed & ~lt.torrent_flags.paused
        flags |= lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
        if not a.pex:
            flags |= lt.torrent_flags.disable_pex
        atp.flags = flags
        if a.tracker:   # the binding returns a copy of the list: assign, do not append
            atp.trackers = list(atp.trackers) + list(a.tracker)
        self.h = self.ses.add_torrent(atp)
        if a.tracker and a.mode == "leech":
            self.peer_given()

    def again(self, save_dir):
        self.ses.remove_torrent(self.h, lt.session.delete_files)
        deadline = time.time() + 60
        while self.ses.get_torrents():
            if time.time() > deadline:
                raise RuntimeError("libtorrent did not remove the torrent within 60 s")
            self.drain_alerts()
            time.sleep(0.02)
        self.add(save_dir)

    def drain_alerts(self):
        for al in self.ses.pop_alerts():
            btdriver.log("lt:", al.message())

    def connect(self, host, port):
        self.peer_given()
        self.h.connect_peer((host, port))

    def status(self):
        self.drain_alerts()
        st = self.h.status()
        if st.errc.value() != 0:
            return {"error": st.errc.message()}
        complete = st.has_metadata and (st.is_finished or st.is_seeding)
        return {"progress": st.progress, "peers": st.num_peers,
                "rate": st.download_payload_rate if self.args.mode == "leech" else st.upload_payload_rate,
                "complete": complete, "total": st.total_wanted}

    def stop(self):
        if hasattr(self, "ses"):
            self.ses.pause()


def extra(ap):
    ap.add_argument("--high-performance", action="store_true")
    ap.add_argument("--pex", action="store_true", help="leave ut_pex on for this torrent")
    ap.add_argument("--encryption", choices=["default", "forced", "rc4"], default="default",
                    help="protocol encryption (MSE): libtorrent's default (try it, fall back to plaintext), forced "
                         "(encrypted handshake only), rc4 (encrypted handshake and RC4 stream only)")


if __name__ == "__main__":
    btdriver.main(LtPeer, extra=extra)
