#!/usr/bin/python3
"""JSON-lines driver for one libtorrent (2.0.8) DHT node on 127.0.0.1.

Run with the Debian system interpreter (python3-libtorrent is only importable there):

    /usr/bin/python3 lt_dht.py [--port N] [-v|-vv] [--setting NAME=VALUE ...]

Protocol: one JSON object per line on stdin, exactly one JSON reply line on stdout per
command (flushed), everything else goes to stderr.  Startup line:

    {"ready": true, "port": P, "node_id": "<40 hex>"}
    (or {"ready": false, "error": "..."} and exit status 1)

Every reply has "ok" (bool) and, on failure, "error".  If a command carries "id", the
reply echoes it.  Blocking commands accept "timeout" (seconds, default 20).

  add_node      {"host","port","wait"=true}      -> {"in_table": bool}   add_dht_node(); with
                wait, block until the node answered and is in the routing table.
  nodes         {}                               -> {"nodes": N (routing table, live),
                "replacements": N, "node_id", "node_list": ["ip:port", ...]}
  announce      {"info_hash","port","seed"=false,"implied_port"=false}
                -> {"num_success", "nodes": [...], "port"}.  Replies when every
                announce_peer query libtorrent sent for this info-hash got its answer
                (or error), seen as raw DHT packets (dht_pkt_alert); ok iff >=1 answer.
  get_peers     {"info_hash"} -> {"peers": ["127.0.0.1:PORT", ...]}; waits for >=1 peer
                (re-issuing the lookup while none is found), lingers until the lookup
                finishes (max 1 s) to collect more.
  put_immutable {"value": JSON | "value_bencoded_hex"} -> {"target", "num_success"}
  get_immutable {"target"} -> {"found", "value", "value_is_hex", "bencoded_hex"}
  keypair       {"seed"?: 64 hex} -> {"seed", "public_key" (64 hex), "secret_key" (128 hex)}
                libtorrent/orlp format: secret_key = clamp(SHA512(seed)).
  put_mutable   {"public_key","secret_key" (128 hex, or a 64-hex seed),"salt"="",
                 "value": string | "value_hex", "seq"?} -> {"seq","num_success","signature",
                "target"}.  The 2.0.8 binding signs internally and always stores a byte
                STRING and uses seq = (highest seq found on the DHT) + 1; "seq" cannot be
                forced (a mismatch is reported in "warning").
  get_mutable   {"public_key","salt"=""} -> {"found","value","value_is_hex","bencoded_hex",
                "seq","signature","authoritative","salt"}
  quit          {} -> {"ok": true}, then exit.  EOF on stdin also exits.

Notes (libtorrent 2.0.8 on 127.0.0.1):
  * libtorrent keeps a node that only *queried* it as a replacement and promotes it after
    its ~5 s refresh (a get_peers, not a ping); add_node promotes on the first answer.
  * Remote nodes must return "token" in get_peers/get responses, otherwise libtorrent
    sends no announce_peer/put to them.  "v", "ip" and BEP 42 ids are not required.
  * libtorrent also queries itself (it learns its own endpoint from other nodes), so
    num_success / "nodes" may include this node ("self_included" in announce).
  * get_mutable waits for the authoritative (final) alert, i.e. up to the DHT RPC timeout
    of unresponsive nodes in the lookup.

Binary values: a top-level byte string that is not UTF-8 is returned as hex with
"value_is_hex": true; nested non-UTF-8 strings become {"_hex": "..."}.
Salt may be given as "salt" (UTF-8) or "salt_hex".
"""

import argparse
import ctypes
import hashlib
import json
import os
import queue
import re
import sys
import tempfile
import threading
import time

try:
    import libtorrent as lt
except ImportError as _e:  # pragma: no cover
    sys.stdout.write(json.dumps({"ready": False, "error": "cannot import libtorrent: %s "
                                 "(use /usr/bin/python3 with python3-libtorrent)" % _e}) + "\n")
    sys.stdout.flush()
    sys.exit(1)

DEFAULT_TIMEOUT = 20.0
VERBOSE = 0


def log(*a):
    sys.stderr.write("[lt_dht %s] %s\n" % (time.strftime("%H:%M:%S"), " ".join(str(x) for x in a)))
    sys.stderr.flush()


# --------------------------------------------------------------------------- ed25519
# Pure-python ed25519 compatible with libtorrent's (orlp) key format:
# secret key = SHA512(seed) with the first half clamped (64 bytes), public key = a*B.
_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _padd(P, Q):
    A = (P[1] - P[0]) * (Q[1] - Q[0]) % _P
    B = (P[1] + P[0]) * (Q[1] + Q[0]) % _P
    C = 2 * P[3] * Q[3] * _D % _P
    D = 2 * P[2] * Q[2] % _P
    E, F, G, H = B - A, D - C, D + C, B + A
    return (E * F % _P, G * H % _P, F * G % _P, E * H % _P)


def _pmul(s, P):
    Q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            Q = _padd(Q, P)
        P = _padd(P, P)
        s >>= 1
    return Q


def _recover_x(y, sign):
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if x & 1 != sign:
        x = _P - x
    return x


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def _compress(P):
    zi = pow(P[2], _P - 2, _P)
    x, y = P[0] * zi % _P, P[1] * zi % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def ed25519_create_keypair(seed):
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    sk = bytes(h)
    return ed25519_public_from_secret(sk), sk


def ed25519_public_from_secret(sk):
    return _compress(_pmul(int.from_bytes(sk[:32], "little"), _G))


def ed25519_sign(msg, pk, sk):
    r = int.from_bytes(hashlib.sha512(sk[32:64] + msg).digest(), "little") % _L
    R = _compress(_pmul(r, _G))
    k = int.from_bytes(hashlib.sha512(R + pk + msg).digest(), "little") % _L
    S = (r + k * int.from_bytes(sk[:32], "little")) % _L
    return R + S.to_bytes(32, "little")


# --------------------------------------------------------------------------- bencode
def bencode(v):
    if isinstance(v, bool):
        raise ValueError("booleans are not bencodable")
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode("utf-8")
    if isinstance(v, (bytes, bytearray)):
        return b"%d:%s" % (len(v), bytes(v))
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted(((k.encode("utf-8") if isinstance(k, str) else bytes(k)), x) for k, x in v.items())
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"
    raise ValueError("cannot bencode %s" % type(v).__name__)


def bdecode(data):
    def dec(i):
        c = data[i:i + 1]
        if c == b"i":
            j = data.index(b"e", i)
            return int(data[i + 1:j]), j + 1
        if c == b"l":
            i += 1
            out = []
            while data[i:i + 1] != b"e":
                x, i = dec(i)
                out.append(x)
            return out, i + 1
        if c == b"d":
            i += 1
            out = {}
            while data[i:i + 1] != b"e":
                k, i = dec(i)
                x, i = dec(i)
                out[k] = x
            return out, i + 1
        if c.isdigit():
            j = data.index(b":", i)
            n = int(data[i:j])
            if j + 1 + n > len(data):
                raise ValueError("truncated string")
            return data[j + 1:j + 1 + n], j + 1 + n
        raise ValueError("bad bencode at %d" % i)
    v, end = dec(0)
    return v


# --------------------------------------------------------------------------- JSON <-> entry
def json_to_entry(v):
    """JSON value -> python object that libtorrent converts to an entry."""
    if isinstance(v, bool) or v is None or isinstance(v, float):
        raise ValueError("only strings, integers, lists and dicts can be bencoded (got %r)" % (v,))
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, list):
        return [json_to_entry(x) for x in v]
    if isinstance(v, dict):
        if set(v.keys()) == {"_hex"}:
            return bytes.fromhex(v["_hex"])
        return {k: json_to_entry(x) for k, x in v.items()}
    raise ValueError("unsupported JSON type %s" % type(v).__name__)


def _b(x):
    if isinstance(x, str):
        return x.encode("utf-8", "surrogateescape")
    return bytes(x)


def entry_to_json(v):
    if isinstance(v, (bytes, bytearray, str)):
        b = _b(v)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return {"_hex": b.hex()}
    if isinstance(v, int):
        return v
    if isinstance(v, list):
        return [entry_to_json(x) for x in v]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            ks = entry_to_json(k)
            out[ks if isinstance(ks, str) else ks["_hex"]] = entry_to_json(x)
        return out
    if isinstance(v, lt.sha1_hash):
        return str(v)
    return repr(v)


def value_fields(v):
    """Reply fields for a retrieved item value (python object from libtorrent)."""
    out = {"bencoded_hex": bencode(_normalize(v)).hex()}
    if isinstance(v, (bytes, bytearray, str)):
        b = _b(v)
        try:
            out["value"] = b.decode("utf-8")
            out["value_is_hex"] = False
        except UnicodeDecodeError:
            out["value"] = b.hex()
            out["value_is_hex"] = True
    else:
        out["value"] = entry_to_json(v)
        out["value_is_hex"] = False
    return out


def _normalize(v):
    if isinstance(v, lt.sha1_hash):
        return v.to_bytes()
    if isinstance(v, list):
        return [_normalize(x) for x in v]
    if isinstance(v, dict):
        return {_b(k): _normalize(x) for k, x in v.items()}
    return v


def hexarg(cmd, name, nbytes, required=True):
    v = cmd.get(name)
    if v is None:
        if required:
            raise ValueError("missing '%s'" % name)
        return None
    try:
        b = bytes.fromhex(v)
    except (ValueError, TypeError):
        raise ValueError("'%s' is not hex" % name)
    if nbytes is not None and len(b) != nbytes:
        raise ValueError("'%s' must be %d hex chars" % (name, 2 * nbytes))
    return b


def salt_arg(cmd):
    if cmd.get("salt_hex") is not None:
        return hexarg(cmd, "salt_hex", None)
    s = cmd.get("salt", "")
    if not isinstance(s, str):
        raise ValueError("'salt' must be a string")
    return s.encode("utf-8")


class CmdError(Exception):
    def __init__(self, msg, **extra):
        Exception.__init__(self, msg)
        self.extra = extra


# --------------------------------------------------------------------------- node
class Node:
    LOG_NEW = re.compile(r"\[(\d+)\] NEW target: ([0-9a-f]{40})")
    LOG_DONE = re.compile(r"\[(\d+)\] COMPLETED .*type: (\S+)")
    LOG_NID = re.compile(r"DHT tracker with node id: ([0-9a-f]{40})")
    LOG_SEND_ANN = re.compile(r"sending announce_peer \[ ih: ([0-9a-f]{40}) +p: (\d+) nodes: (\d+)")
    PKT_EP = re.compile(r"^(==>|<==) \[([^\]]+)\]")

    def __init__(self, port, overrides=None):
        self.node_id = None
        self.listen_error = None
        self.listening = False
        self.handlers = []  # callables(ev) fed with every converted alert
        self.traversals = {}  # traversal id -> target hex
        self.tmpdir = None
        cats = (lt.alert_category.dht | lt.alert_category.dht_log | lt.alert_category.dht_operation
                | lt.alert_category.error | lt.alert_category.status)
        settings = {
            "enable_dht": True,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "listen_interfaces": "127.0.0.1:%d" % port,
            "listen_system_port_fallback": False,
            "max_retry_port_bind": 0,  # otherwise a busy --port silently becomes port+1..
            # no default routers (dht.libtorrent.org:25401 otherwise)
            "dht_bootstrap_nodes": "",
            # allow many nodes on one IP / in one /24 and BEP42-unverified ids
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_enforce_node_id": False,
            "dht_prefer_verified_node_ids": False,
            "dht_ignore_dark_internet": False,
            # every test node shares 127.0.0.1: lift the per-IP rate limit (default 5 pkt/s
            # then blocked for dht_block_timeout s) and the DHT upload cap (8000 B/s)
            "dht_block_ratelimit": 1000000,
            "dht_upload_rate_limit": 10000000,
            "dht_read_only": False,
            "enable_incoming_utp": False,
            "enable_incoming_tcp": True,
            "alert_mask": int(cats),
            "alert_queue_size": 100000,
            "peer_fingerprint": "-LT2080-",
        }
        settings.update(overrides or {})
        self.ses = lt.session(settings)
        self._setup_announce()

    # -- ctypes access to session_handle::dht_announce (the 2.0.8 python binding has no
    #    converter for its dht::announce_flags_t argument, so ses.dht_announce is unusable)
    def _setup_announce(self):
        self.c_announce = None
        self.c_ses = None
        try:
            lib = ctypes.CDLL("libtorrent-rasterbar.so.2.0")
            lp = getattr(lib, "_ZNK10libtorrent14session_handle11listen_portEv")
            lp.restype = ctypes.c_ushort
            lp.argtypes = [ctypes.c_void_p]
            ann = getattr(lib, "_ZN10libtorrent14session_handle12dht_announceERKNS_8digest32ILl160EEEiN"
                               "S_5flags13bitfield_flagIhNS_3dht21dht_announce_flag_tagEvEE")
            ann.restype = None
            ann.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint8]
            # boost.python instance: ob_refcnt, ob_type, ob_size, dict, weakrefs, holder*;
            # pointer_holder<shared_ptr<session>>: vtable, next, shared_ptr{ptr, ctrl}
            holder = ctypes.c_void_p.from_address(id(self.ses) + 40).value
            ptr = ctypes.c_void_p.from_address(holder + 16).value if holder else None
            self.c_ses, self.c_announce, self.c_listen_port = ptr, ann, lp
        except Exception as e:  # pragma: no cover
            log("ctypes dht_announce unavailable:", e)

    def _verify_ctypes(self):
        if self.c_announce is None:
            return
        try:
            if self.c_listen_port(self.c_ses) != self.ses.listen_port():
                raise RuntimeError("listen_port mismatch")
        except Exception as e:
            log("ctypes session pointer check failed (%s); announce falls back to a torrent" % e)
            self.c_announce = None

    # -- alerts
    def pump(self, wait_ms=0):
        if wait_ms:
            self.ses.wait_for_alert(int(wait_ms))
        for a in self.ses.pop_alerts():
            try:
                ev = self._convert(a)
            except Exception as e:
                log("alert conversion failed:", type(a).__name__, e)
                continue
            if ev is None:
                continue
            for h in list(self.handlers):
                try:
                    h(ev)
                except Exception as e:
                    log("handler error:", e)

    def _convert(self, a):
        t = type(a).__name__
        if t == "dht_pkt_alert":
            msg = a.message()
            m = self.PKT_EP.match(msg)
            try:
                pkt = bdecode(bytes(a.pkt_buf))
            except Exception:
                pkt = None
            ev = {"t": "pkt", "out": bool(m and m.group(1) == "==>"), "ep": m.group(2) if m else "", "pkt": pkt}
            if VERBOSE >= 2:
                log("pkt", msg[:400])
            return ev
        if t == "dht_log_alert":
            msg = a.log_message()
            if VERBOSE >= 1:
                log("dht:", msg)
            m = self.LOG_NEW.search(msg)
            if m:
                self.traversals[m.group(1)] = m.group(2)
                if len(self.traversals) > 10000:
                    self.traversals.clear()
            m = self.LOG_NID.search(msg)
            if m:
                self.node_id = m.group(1)
            return {"t": "log", "msg": msg}
        if t == "listen_succeeded_alert":
            self.listening = True
            log(a.message())
            return None
        if t == "listen_failed_alert":
            self.listen_error = a.message()
            log(a.message())
            return None
        if t == "dht_get_peers_reply_alert":
            return {"t": "peers", "ih": str(a.info_hash),
                    "peers": ["%s:%d" % (ip, port) for ip, port in a.peers()]}
        if t == "dht_put_alert":
            return {"t": "put", "target": str(a.target), "pk": bytes(a.public_key).hex(),
                    "salt": _b(a.salt), "seq": a.seq, "num_success": a.num_success,
                    "sig": bytes(a.signature).hex()}
        if t == "dht_immutable_item_alert":
            return {"t": "imm", "target": str(a.target), "item": _alert_item_value(a)}
        if t == "dht_mutable_item_alert":
            item = _alert_item_value(a)
            return {"t": "mut", "pk": bytes(a.key).hex(), "salt": _b(a.salt), "seq": a.seq,
                    "sig": bytes(a.signature).hex(), "auth": bool(a.authoritative), "item": item}
        if t == "dht_stats_alert":
            return {"t": "stats", "rt": list(a.routing_table), "active": len(a.active_requests)}
        if t == "dht_live_nodes_alert":
            return {"t": "live", "nodes": [{"id": str(n["nid"]), "ep": "%s:%d" % tuple(n["endpoint"])}
                                           for n in a.nodes]}
        if t == "dht_bootstrap_alert":
            return {"t": "bootstrap"}
        if t == "dht_announce_alert":
            if VERBOSE >= 1:
                log(a.message())
            return None
        if VERBOSE >= 1 and t not in ("dht_outgoing_get_peers_alert", "dht_get_peers_alert"):
            log(t, a.message())
        return None

    def wait_for(self, pred, timeout):
        """Pump alerts until pred() is true or timeout; returns pred() result."""
        end = time.monotonic() + timeout
        while True:
            r = pred()
            if r:
                return r
            left = end - time.monotonic()
            if left <= 0:
                return pred()
            self.pump(min(100, max(1, left * 1000)))

    def collect(self, kind, match, timeout, done=None):
        """Subscribe to events of a kind; returns list captured while waiting for done(list)."""
        got = []

        def h(ev):
            if ev["t"] == kind and match(ev):
                got.append(ev)
        self.handlers.append(h)
        try:
            self.wait_for(lambda: done(got) if done else False, timeout)
        finally:
            self.handlers.remove(h)
        return got

    def start(self, timeout=10):
        ok = self.wait_for(lambda: self.listen_error or (self.listening and self.node_id), timeout)
        if self.listen_error:
            raise RuntimeError(self.listen_error)
        if not ok:
            nid = self.current_node_id()
            if not nid:
                raise RuntimeError("DHT did not start within %ss" % timeout)
            self.node_id = nid
        self._verify_ctypes()

    def current_node_id(self):
        try:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                st = self.ses.dht_state()
            ids = st.get(b"node-id") or st.get("node-id")
            if ids:
                return _b(ids[0])[:20].hex()
        except Exception:
            pass
        return self.node_id

    # ----------------------------------------------------------------------- commands
    def live_nodes(self, timeout=2.0):
        box = []
        h = lambda ev: box.append(ev) if ev["t"] == "live" else None
        self.handlers.append(h)
        try:
            self.ses.dht_live_nodes(lt.sha1_hash(bytes.fromhex(self.node_id or "00" * 20)))
            self.wait_for(lambda: box, timeout)
        finally:
            self.handlers.remove(h)
        return box[0]["nodes"] if box else None

    def cmd_nodes(self, cmd, timeout):
        box = []
        h = lambda ev: box.append(ev) if ev["t"] == "stats" else None
        self.handlers.append(h)
        try:
            self.ses.post_dht_stats()
            self.wait_for(lambda: box, min(timeout, 5))
        finally:
            self.handlers.remove(h)
        if not box:
            raise CmdError("no dht_stats_alert")
        rt = box[0]["rt"]
        live = self.live_nodes(min(timeout, 5)) or []
        return {"nodes": sum(b["num_nodes"] for b in rt),
                "replacements": sum(b["num_replacements"] for b in rt),
                "buckets": len(rt), "node_id": self.current_node_id(),
                "node_list": [n["ep"] for n in live],
                "node_ids": [n["id"] for n in live]}

    def cmd_add_node(self, cmd, timeout):
        host = cmd.get("host", "127.0.0.1")
        port = int(cmd["port"])
        self.ses.add_dht_node((host, port))
        if not cmd.get("wait", True):
            return {"in_table": None}
        ep = "%s:%d" % (host, port)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.wait_for(lambda: False, 0.25)
            live = self.live_nodes(min(2.0, max(0.1, end - time.monotonic())))
            if live and any(n["ep"] == ep for n in live):
                return {"in_table": True}
        raise CmdError("timeout: %s did not enter the routing table" % ep, in_table=False)

    def cmd_announce(self, cmd, timeout):
        ih = hexarg(cmd, "info_hash", 20)
        port = int(cmd.get("port") or self.ses.listen_port())
        flags = (1 if cmd.get("seed") else 0) | (2 if cmd.get("implied_port") else 0)
        ihx = ih.hex()
        st = {"expect": None, "sent": {}, "ok": set(), "err": set(), "sent_at": None}

        def h(ev):
            if ev["t"] == "log":
                m = self.LOG_SEND_ANN.search(ev["msg"])
                if m and m.group(1) == ihx:
                    st["expect"] = int(m.group(3))
                    st["sent_at"] = time.monotonic()
            elif ev["t"] == "pkt" and isinstance(ev["pkt"], dict):
                p = ev["pkt"]
                tid = p.get(b"t")
                if ev["out"] and p.get(b"q") == b"announce_peer" \
                        and isinstance(p.get(b"a"), dict) and p[b"a"].get(b"info_hash") == ih:
                    st["sent"][(tid, ev["ep"])] = True
                elif not ev["out"] and (tid, ev["ep"]) in st["sent"] and p.get(b"y") in (b"r", b"e"):
                    (st["ok"] if p.get(b"y") == b"r" else st["err"]).add((tid, ev["ep"]))
                    if p.get(b"y") == b"e":
                        log("announce_peer error from", ev["ep"], repr(p.get(b"e")))

        def done():
            if st["expect"] is None:
                return False
            answered = len(st["ok"]) + len(st["err"])
            if len(st["sent"]) >= st["expect"] and answered >= st["expect"]:
                return True
            # a node that never answers: do not wait the whole timeout
            return time.monotonic() - st["sent_at"] > 5.0

        self.handlers.append(h)
        try:
            if self.c_announce is not None:
                self.c_announce(self.c_ses, ih, port, flags)
                mode = "dht_announce"
            else:
                port = self._torrent_announce(ih)
                mode = "torrent"
            self.wait_for(done, timeout)
        finally:
            self.handlers.remove(h)
        me = "127.0.0.1:%d" % self.ses.listen_port()
        res = {"port": port, "mode": mode, "num_success": len(st["ok"]), "num_error": len(st["err"]),
               "nodes": sorted(ep for (_, ep) in st["ok"]),
               "self_included": any(ep == me for (_, ep) in st["ok"])}
        if st["expect"] is None:
            raise CmdError("timeout: announce traversal did not finish", **res)
        if st["expect"] == 0:
            raise CmdError("no nodes to announce to (routing table empty?)", **res)
        if not st["ok"]:
            raise CmdError("no node acknowledged announce_peer", **res)
        return res

    def _torrent_announce(self, ih):
        p = lt.add_torrent_params()
        p.info_hashes = lt.info_hash_t(lt.sha1_hash(ih))
        if self.tmpdir is None:
            self.tmpdir = tempfile.mkdtemp(prefix="lt_dht_")
        p.save_path = self.tmpdir
        p.flags = lt.torrent_flags.upload_mode
        self.ses.add_torrent(p)
        return self.ses.listen_port()

    def cmd_get_peers(self, cmd, timeout):
        ih = hexarg(cmd, "info_hash", 20)
        ihx = ih.hex()
        st = {"peers": [], "tids": set(), "done": False, "first": None, "issued": 0.0}

        def h(ev):
            if ev["t"] == "peers" and ev["ih"] == ihx:
                for p in ev["peers"]:
                    if p not in st["peers"]:
                        st["peers"].append(p)
                if st["peers"] and st["first"] is None:
                    st["first"] = time.monotonic()
            elif ev["t"] == "log":
                m = self.LOG_NEW.search(ev["msg"])
                if m and m.group(2) == ihx:
                    st["tids"].add(m.group(1))
                m = self.LOG_DONE.search(ev["msg"])
                if m and m.group(1) in st["tids"] and m.group(2) == "get_peers":
                    st["done"] = True

        def issue():
            st["done"] = False
            st["tids"] = set()
            st["issued"] = time.monotonic()
            self.ses.dht_get_peers(lt.sha1_hash(ih))

        def finished():
            now = time.monotonic()
            if st["peers"]:
                return st["done"] or now - st["first"] > 1.0
            if st["done"] and now - st["issued"] > 1.0:
                issue()  # nothing found yet: look again
            return False

        self.handlers.append(h)
        try:
            issue()
            self.wait_for(finished, timeout)
        finally:
            self.handlers.remove(h)
        if not st["peers"]:
            raise CmdError("timeout: no peers found", peers=[])
        return {"peers": st["peers"]}

    def cmd_put_immutable(self, cmd, timeout):
        if cmd.get("value_bencoded_hex") is not None:
            v = _lt_entry(bdecode(hexarg(cmd, "value_bencoded_hex", None)))
        elif "value" in cmd:
            v = json_to_entry(cmd["value"])
        else:
            raise ValueError("missing 'value'")
        box = []
        h = lambda ev: box.append(ev) if ev["t"] == "put" and ev["pk"] == "00" * 32 and ev["target"] == st[0] else None
        st = [None]
        self.handlers.append(h)
        try:
            st[0] = str(self.ses.dht_put_immutable_item(v))
            self.wait_for(lambda: box, timeout)
        finally:
            self.handlers.remove(h)
        if not box:
            raise CmdError("timeout: no dht_put_alert", target=st[0])
        res = {"target": st[0], "num_success": box[0]["num_success"]}
        if res["num_success"] < 1:
            raise CmdError("put stored on no node", **res)
        return res

    def _wire_values(self, match):
        """Handler collecting 'v' of incoming DHT responses that satisfy match(r)."""
        vals = []

        def h(ev):
            p = ev["pkt"] if ev["t"] == "pkt" else None
            if isinstance(p, dict) and not ev["out"] and p.get(b"y") == b"r":
                r = p.get(b"r")
                if isinstance(r, dict) and b"v" in r and match(r):
                    vals.append(r)
        return vals, h

    def cmd_get_immutable(self, cmd, timeout):
        target = hexarg(cmd, "target", 20).hex()
        # the binding's alert only exposes string values: take others from the raw response
        vals, h = self._wire_values(lambda r: hashlib.sha1(bencode(r[b"v"])).hexdigest() == target)
        self.handlers.append(h)
        try:
            # alerts are only dispatched inside collect(), after the handlers are registered
            self.ses.dht_get_immutable_item(lt.sha1_hash(bytes.fromhex(target)))
            got = self.collect("imm", lambda ev: ev["target"] == target, timeout, done=lambda g: g)
        finally:
            self.handlers.remove(h)
        if not got:
            raise CmdError("timeout: no dht_immutable_item_alert", found=False)
        item = got[0]["item"]
        if item is _NO_ITEM:
            if not vals:
                raise CmdError("item not found", found=False)
            item = vals[0][b"v"]
        res = {"found": True, "target": target}
        res.update(value_fields(item))
        return res

    def cmd_keypair(self, cmd, timeout):
        seed = hexarg(cmd, "seed", 32, required=False) or os.urandom(32)
        pk, sk = ed25519_create_keypair(seed)
        return {"seed": seed.hex(), "public_key": pk.hex(), "secret_key": sk.hex()}

    def cmd_put_mutable(self, cmd, timeout):
        pk = hexarg(cmd, "public_key", 32)
        skb = hexarg(cmd, "secret_key", None)
        if len(skb) == 32:
            _, skb = ed25519_create_keypair(skb)  # given a seed
        elif len(skb) != 64:
            raise ValueError("'secret_key' must be 128 hex (libtorrent format) or a 64-hex seed")
        if ed25519_public_from_secret(skb) != pk:
            raise ValueError("secret_key does not belong to public_key (expected libtorrent/orlp "
                             "format: clamp(SHA512(seed)), not NaCl seed||pk)")
        salt = salt_arg(cmd)
        if cmd.get("value_hex") is not None:
            data = hexarg(cmd, "value_hex", None)
        elif isinstance(cmd.get("value"), str):
            data = cmd["value"].encode("utf-8")
        else:
            raise ValueError("the libtorrent 2.0.8 binding can only put a byte-string mutable value: "
                             "give 'value' as a JSON string or 'value_hex'")
        pkx = pk.hex()
        box = []
        h = lambda ev: box.append(ev) if ev["t"] == "put" and ev["pk"] == pkx and ev["salt"] == salt else None
        self.handlers.append(h)
        try:
            self.ses.dht_put_mutable_item(skb, pk, data, salt)
            self.wait_for(lambda: box, timeout)
        finally:
            self.handlers.remove(h)
        if not box:
            raise CmdError("timeout: no dht_put_alert")
        ev = box[0]
        tgt = hashlib.sha1(pk + salt).hexdigest()
        res = {"seq": ev["seq"], "num_success": ev["num_success"], "signature": ev["sig"], "target": tgt}
        if cmd.get("seq") is not None and int(cmd["seq"]) != ev["seq"]:
            res["warning"] = "seq %s requested but libtorrent used %d (binding: found seq + 1)" % (cmd["seq"], ev["seq"])
        if ev["num_success"] < 1:
            raise CmdError("put stored on no node", **res)
        return res

    def cmd_get_mutable(self, cmd, timeout):
        pk = hexarg(cmd, "public_key", 32)
        salt = salt_arg(cmd)
        pkx = pk.hex()
        vals, h = self._wire_values(lambda r: r.get(b"k") == pk)
        self.handlers.append(h)
        try:
            self.ses.dht_get_mutable_item(pk, salt)
            got = self.collect("mut", lambda ev: ev["pk"] == pkx and ev["salt"] == salt, timeout,
                               done=lambda g: any(e["auth"] for e in g))
        finally:
            self.handlers.remove(h)
        if not got:
            raise CmdError("timeout: no dht_mutable_item_alert", found=False)
        auth = any(e["auth"] for e in got)
        # "not found" alerts carry seq 0 and an uninitialised signature, and the binding
        # raises for non-string values: a result counts only with a value from the alert
        # or from a raw response whose seq and signature match the alert.
        cands = []
        for e in got:
            item = e["item"]
            if item is _NO_ITEM:
                sig = bytes.fromhex(e["sig"])
                wire = [r for r in vals if r.get(b"seq") == e["seq"] and r.get(b"sig") == sig]
                if not wire:
                    continue
                item = wire[0][b"v"]
            cands.append((e["seq"], e, item))
        if not cands:
            raise CmdError("item not found", found=False, authoritative=auth)
        _, best, item = max(cands, key=lambda c: c[0])
        res = {"found": True, "seq": best["seq"], "signature": best["sig"], "authoritative": auth,
               "salt": salt.decode("utf-8", "replace"), "public_key": pkx}
        res.update(value_fields(item))
        if not auth:
            res["warning"] = "timeout before the lookup finished (non-authoritative result)"
        return res


_NO_ITEM = object()


def _alert_item_value(a):
    """The 2.0.8 binding's .item returns {"key", "value": bytes(entry.string()), ...} and
    raises RuntimeError when the entry is not a string (non-string value or not found)."""
    try:
        item = a.item
    except RuntimeError:
        return _NO_ITEM
    if isinstance(item, dict) and "value" in item:
        return item["value"]
    return item


def _lt_entry(v):
    return v  # our bdecode yields bytes/int/list/dict(bytes keys), which the binding accepts


# --------------------------------------------------------------------------- main loop
def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="UDP/TCP port on 127.0.0.1 (0 = any free)")
    ap.add_argument("-v", "--verbose", action="count", default=0,
                    help="-v: DHT log on stderr, -vv: also every DHT packet")
    ap.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                    help="override a libtorrent setting (e.g. dht_enforce_node_id=true)")
    args = ap.parse_args()
    overrides = {}
    for kv in args.setting:
        k, _, v = kv.partition("=")
        if v.lower() in ("true", "false"):
            overrides[k] = v.lower() == "true"
        elif re.fullmatch(r"-?\d+", v):
            overrides[k] = int(v)
        else:
            overrides[k] = v
    VERBOSE = args.verbose

    out_lock = threading.Lock()

    def reply(obj):
        line = json.dumps(obj, separators=(",", ":"))
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    node = None
    for attempt in range(1 if args.port else 5):
        try:
            node = Node(args.port, overrides)
            node.start()
            break
        except Exception as e:
            err = str(e)
            node = None  # port 0: libtorrent's free TCP port may be taken for UDP, retry
    if node is None:
        reply({"ready": False, "error": err})
        sys.exit(1)
    reply({"ready": True, "port": node.ses.listen_port(), "node_id": node.node_id})
    log("ready on 127.0.0.1:%d node id %s" % (node.ses.listen_port(), node.node_id))

    lines = queue.Queue()

    def reader():
        for line in sys.stdin:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=reader, daemon=True).start()

    handlers = {
        "add_node": node.cmd_add_node, "nodes": node.cmd_nodes, "announce": node.cmd_announce,
        "get_peers": node.cmd_get_peers, "put_immutable": node.cmd_put_immutable,
        "get_immutable": node.cmd_get_immutable, "keypair": node.cmd_keypair,
        "put_mutable": node.cmd_put_mutable, "get_mutable": node.cmd_get_mutable,
    }
    while True:
        try:
            line = lines.get(timeout=0.05)
        except queue.Empty:
            node.pump(0)
            continue
        if line is None:
            log("stdin closed, exiting")
            break
        line = line.strip()
        if not line:
            continue
        cmd = None
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise ValueError("command must be a JSON object")
        except ValueError as e:
            reply({"ok": False, "error": "bad JSON: %s" % e})
            continue
        name = cmd.get("cmd")
        base = {"cmd": name}
        if "id" in cmd:
            base["id"] = cmd["id"]
        if name == "quit":
            reply(dict(base, ok=True))
            break
        fn = handlers.get(name)
        if fn is None:
            reply(dict(base, ok=False, error="unknown cmd %r" % (name,)))
            continue
        t0 = time.monotonic()
        try:
            timeout = float(cmd.get("timeout", DEFAULT_TIMEOUT))
            res = fn(cmd, timeout)
            out = dict(base, ok=True)
            out.update(res)
        except CmdError as e:
            out = dict(base, ok=False, error=str(e))
            out.update(e.extra)
        except (ValueError, KeyError, TypeError) as e:
            out = dict(base, ok=False, error="bad arguments: %s" % (e,))
        except Exception as e:
            out = dict(base, ok=False, error="%s: %s" % (type(e).__name__, e))
        out["elapsed"] = round(time.monotonic() - t0, 3)
        if VERBOSE:
            log("cmd", name, "->", "ok" if out["ok"] else out.get("error"))
        reply(out)

    # libtorrent's session destructor can take a while: give it a moment, then leave.
    threading.Timer(3.0, lambda: os._exit(0)).start()
    try:
        node.ses.pause()
        del node.ses
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
