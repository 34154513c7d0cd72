#!/usr/bin/env python3
"""Bounded idle-peer flood on 127.0.0.1 (for measuring only): N connections that complete the BitTorrent handshake
for a real info-hash and then say nothing; a closed one is opened again. Stops by itself after SECONDS.

    idle-flood.py HOST:PORT INFOHASH_HEX N SECONDS
Prints one JSON line per second: {"open": how many are connected now, "opened": connections made so far}.
"""
import json, os, selectors, socket, sys, time

host, port = sys.argv[1].rsplit(":", 1)
if not host.startswith("127."):
    sys.exit("loopback only")
ih = bytes.fromhex(sys.argv[2])
n = min(int(sys.argv[3]), 5000)
end = time.time() + min(float(sys.argv[4]), 600)
sel = selectors.DefaultSelector()
DELAY = float(os.environ.get("FLOOD_RECONNECT_SECONDS", "10"))  # a closed connection is opened again after this
opened = 0


def handshake():
    return b"\x13BitTorrent protocol" + bytes(8) + ih + b"-XX0001-" + os.urandom(6).hex().encode()


def connect():
    global opened
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect((host, int(port)))
    except BlockingIOError:
        pass
    sel.register(s, selectors.EVENT_WRITE, "new")
    opened += 1


pending = []  # times at which closed connections are opened again
for _ in range(n):
    connect()
last = 0
while time.time() < end:
    now = time.time()
    while pending and pending[0] <= now:
        pending.pop(0); connect()
    for key, ev in sel.select(0.2):
        s = key.fileobj
        if key.data == "new":
            try:
                s.send(handshake())
                sel.modify(s, selectors.EVENT_READ, "open")
            except OSError:
                sel.unregister(s); s.close(); pending.append(time.time() + DELAY)
        else:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:  # closed by the node: open another one DELAY later
                sel.unregister(s); s.close(); pending.append(time.time() + DELAY)
    if time.time() - last >= 1:
        last = time.time()
        print(json.dumps({"open": len(sel.get_map()), "opened": opened, "waiting": len(pending)}), flush=True)
for key in list(sel.get_map().values()):
    key.fileobj.close()
