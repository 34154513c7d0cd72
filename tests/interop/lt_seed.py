#!/usr/bin/python3
"""libtorrent 2.0.8 as a seeder on 127.0.0.1 for peer-wire interop tests (run with Debian's /usr/bin/python3).

  lt_seed.py TORRENT DATA_DIR

Starts a session listening on 127.0.0.1 (ephemeral port) with DHT, LSD, UPnP and NAT-PMP off, adds TORRENT with
save_path=DATA_DIR, lets libtorrent check the existing data, and once it is seeding prints one JSON line
{"ready": true, "port": P, "info_hash": "<v1 hex>"}; it then runs until stdin is closed. Errors print
{"ready": false, "error": "..."} and exit 1.
"""
import json
import sys
import threading
import time

import libtorrent as lt


def main(argv):
    torrent, data_dir = argv[1], argv[2]
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = data_dir
    h = ses.add_torrent(atp)
    deadline = time.time() + 30
    while True:
        st = h.status()
        if st.errc.value() != 0:
            print(json.dumps({"ready": False, "error": st.errc.message()}), flush=True)
            sys.exit(1)
        if st.is_seeding and ses.listen_port() != 0:
            break
        if time.time() > deadline:
            print(json.dumps({"ready": False, "error": "not seeding after 30 s: state %s, progress %.3f"
                              % (st.state, st.progress)}), flush=True)
            sys.exit(1)
        time.sleep(0.05)
    print(json.dumps({"ready": True, "port": ses.listen_port(), "info_hash": str(h.info_hashes().v1)}), flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.wait(0.5):
        for a in ses.pop_alerts():
            sys.stderr.write("lt: %s\n" % a.message())


if __name__ == "__main__":
    main(sys.argv)
