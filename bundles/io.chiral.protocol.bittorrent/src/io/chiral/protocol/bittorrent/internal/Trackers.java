package io.chiral.protocol.bittorrent.internal;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SortedMap;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.BencodeException;
import io.chiral.bencode.Bytes;

/**
 * Tracker announces, as bytes: HTTP (BEP 3 with compact peer lists, BEP 23) and UDP (BEP 15). Transport-free, so
 * the protocol bundle's Netty clients and the tests share one codec. Every answer is parsed as hostile: bounded
 * size and peer count, exact lengths, matching transaction ids, the tracker's failure reason passed on verbatim
 * (shortened) as a {@link TorrentException}.
 */
public final class Trackers {
    public static final long UDP_PROTOCOL_ID = 0x41727101980L;
    public static final int MAX_PEERS = 1000;
    public static final int MAX_HTTP_RESPONSE = 256 * 1024;
    static final int ACTION_CONNECT = 0;
    static final int ACTION_ANNOUNCE = 1;
    static final int ACTION_ERROR = 3;

    private Trackers() {
    }

    /** The announce event (BEP 3 names, BEP 15 numbers). */
    public enum Event {
        NONE(0, null), COMPLETED(1, "completed"), STARTED(2, "started"), STOPPED(3, "stopped");

        final int udp;
        final String http;

        Event(int udp, String http) {
            this.udp = udp;
            this.http = http;
        }
    }

    /** One announce of this client for one torrent. */
    public record Announce(byte[] infoHash, byte[] peerId, int port, long uploaded, long downloaded, long left,
            Event event, int numWant, int key) {
        public Announce {
            if (infoHash.length != 20 || peerId.length != 20) {
                throw new IllegalArgumentException("info-hash and peer id are 20 bytes");
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("port out of range: " + port);
            }
        }
    }

    /** What a tracker answered: re-announce interval (s), swarm counts when given (-1 otherwise), peers. */
    public record Result(int interval, int seeders, int leechers, List<InetSocketAddress> peers) {
    }

    // ---- HTTP ----

    /** The announce URL: {@code base} (which may carry a query already) plus the BEP 3 parameters, compact=1. */
    public static String httpAnnounceUrl(String base, Announce a) {
        StringBuilder b = new StringBuilder(base).append(base.indexOf('?') >= 0 ? '&' : '?');
        b.append("info_hash=").append(percent(a.infoHash()));
        b.append("&peer_id=").append(percent(a.peerId()));
        b.append("&port=").append(a.port());
        b.append("&uploaded=").append(a.uploaded());
        b.append("&downloaded=").append(a.downloaded());
        b.append("&left=").append(a.left());
        b.append("&compact=1");
        if (a.event().http != null) {
            b.append("&event=").append(a.event().http);
        }
        if (a.numWant() >= 0) {
            b.append("&numwant=").append(a.numWant());
        }
        b.append("&key=").append(Integer.toHexString(a.key()));
        return b.toString();
    }

    /** Parses a bencoded HTTP announce answer; compact and dictionary peer lists are both accepted. */
    public static Result parseHttp(byte[] body) throws TorrentException {
        if (body.length > MAX_HTTP_RESPONSE) {
            throw new TorrentException("tracker answer larger than " + MAX_HTTP_RESPONSE + " bytes");
        }
        Object root;
        try {
            root = Bencode.decode(body, new Bencode.Limits(MAX_HTTP_RESPONSE, 8, 4 * MAX_PEERS + 64));
        } catch (BencodeException e) {
            throw new TorrentException("tracker answer is not bencode: " + e.getMessage(), e);
        }
        if (!(root instanceof SortedMap<?, ?> m)) {
            throw new TorrentException("tracker answer is not a dictionary");
        }
        if (m.get(Bytes.of("failure reason")) instanceof Bytes reason) {
            throw new TorrentException("tracker refused: " + shorten(reason.utf8()));
        }
        int interval = m.get(Bytes.of("interval")) instanceof Long l && l > 0 && l <= 86_400 ? (int) (long) l : 1800;
        int seeders = m.get(Bytes.of("complete")) instanceof Long c && c >= 0 && c <= Integer.MAX_VALUE ? (int) (long) c : -1;
        int leechers = m.get(Bytes.of("incomplete")) instanceof Long c && c >= 0 && c <= Integer.MAX_VALUE ? (int) (long) c : -1;
        List<InetSocketAddress> peers = new ArrayList<>();
        Object p = m.get(Bytes.of("peers"));
        if (p instanceof Bytes compact) {
            if (compact.length() % 6 != 0) {
                throw new TorrentException("compact peer list of " + compact.length() + " bytes (not a multiple of 6)");
            }
            compactPeers(ByteBuffer.wrap(compact.toByteArray()), peers);
        } else if (p instanceof List<?> list) {
            for (Object o : list) {
                if (peers.size() >= MAX_PEERS) {
                    break;
                }
                if (o instanceof SortedMap<?, ?> d && d.get(Bytes.of("ip")) instanceof Bytes ip && ip.length() <= 64
                        && d.get(Bytes.of("port")) instanceof Long port && port > 0 && port <= 65535) {
                    literal(ip.utf8(), (int) (long) port, peers);
                }
            }
        } else if (p != null) {
            throw new TorrentException("tracker 'peers' is neither a string nor a list");
        }
        return new Result(interval, seeders, leechers, List.copyOf(peers));
    }

    /**
     * Only numeric addresses are taken from a tracker: no name lookups on a tracker's say-so. IPv4 is parsed here
     * (InetAddress.getByName resolves a dotted quad with an octet above 255, such as {@code 10.2.403.1}, through
     * DNS); an IPv6 literal must start with a hex digit or ':', which InetAddress parses without a lookup.
     */
    private static void literal(String ip, int port, List<InetSocketAddress> into) {
        try {
            byte[] v4 = ipv4(ip);
            if (v4 != null) {
                into.add(new InetSocketAddress(InetAddress.getByAddress(v4), port));
            } else if (ip.indexOf(':') >= 0 && ip.matches("[0-9a-fA-F:][0-9a-fA-F:.]*")) {
                into.add(new InetSocketAddress(InetAddress.getByName(ip), port));
            }
        } catch (UnknownHostException e) {
            // not an address after all
        }
    }

    /** The 4 bytes of a dotted-quad IPv4 address with decimal octets 0..255, or null. */
    static byte[] ipv4(String s) {
        if (!s.matches("\\d{1,3}(\\.\\d{1,3}){3}")) {
            return null;
        }
        String[] parts = s.split("\\.");
        byte[] out = new byte[4];
        for (int i = 0; i < 4; i++) {
            int octet = Integer.parseInt(parts[i]);
            if (octet > 255) {
                return null;
            }
            out[i] = (byte) octet;
        }
        return out;
    }

    // ---- UDP (BEP 15) ----

    public static byte[] udpConnect(int transaction) {
        return ByteBuffer.allocate(16).putLong(UDP_PROTOCOL_ID).putInt(ACTION_CONNECT).putInt(transaction).array();
    }

    /** The connection id of a connect answer for {@code transaction}. */
    public static long parseUdpConnect(byte[] d, int length, int transaction) throws TorrentException {
        ByteBuffer b = header(d, length, transaction, 16, ACTION_CONNECT);
        return b.getLong();
    }

    public static byte[] udpAnnounce(long connectionId, int transaction, Announce a) {
        ByteBuffer b = ByteBuffer.allocate(98);
        b.putLong(connectionId).putInt(ACTION_ANNOUNCE).putInt(transaction);
        b.put(a.infoHash()).put(a.peerId());
        b.putLong(a.downloaded()).putLong(a.left()).putLong(a.uploaded());
        b.putInt(a.event().udp).putInt(0).putInt(a.key()).putInt(a.numWant()).putShort((short) a.port());
        return b.array();
    }

    public static Result parseUdpAnnounce(byte[] d, int length, int transaction) throws TorrentException {
        ByteBuffer b = header(d, length, transaction, 20, ACTION_ANNOUNCE);
        if ((length - 20) % 6 != 0) {
            throw new TorrentException("UDP announce answer of " + length + " bytes (peers not a multiple of 6)");
        }
        int interval = b.getInt();
        int leechers = b.getInt();
        int seeders = b.getInt();
        List<InetSocketAddress> peers = new ArrayList<>();
        compactPeers(b.limit(length), peers);
        return new Result(interval > 0 && interval <= 86_400 ? interval : 1800, Math.max(-1, seeders),
                Math.max(-1, leechers), List.copyOf(peers));
    }

    /** Checks length, action (an error answer becomes its message) and transaction id; positions after them. */
    private static ByteBuffer header(byte[] d, int length, int transaction, int minLength, int action)
            throws TorrentException {
        if (length < 8 || length > d.length) {
            throw new TorrentException("UDP tracker answer of " + length + " bytes is too short");
        }
        ByteBuffer b = ByteBuffer.wrap(d, 0, length);
        int got = b.getInt();
        int tx = b.getInt();
        if (tx != transaction) {
            throw new TorrentException("UDP tracker answer for another transaction");
        }
        if (got == ACTION_ERROR) {
            byte[] msg = new byte[Math.min(length - 8, 512)];
            b.get(msg);
            throw new TorrentException("tracker refused: " + shorten(new String(msg, StandardCharsets.UTF_8)));
        }
        if (got != action) {
            throw new TorrentException("UDP tracker answered action " + got + ", expected " + action);
        }
        if (length < minLength) {
            throw new TorrentException("UDP tracker answer of " + length + " bytes (want at least " + minLength + ")");
        }
        return b;
    }

    private static void compactPeers(ByteBuffer b, List<InetSocketAddress> into) {
        byte[] ip = new byte[4];
        while (b.remaining() >= 6 && into.size() < MAX_PEERS) {
            b.get(ip);
            int port = b.getShort() & 0xffff;
            if (port == 0) {
                continue;
            }
            try {
                into.add(new InetSocketAddress(InetAddress.getByAddress(ip.clone()), port));
            } catch (UnknownHostException e) {
                throw new IllegalStateException("4 bytes are always an IPv4 address", e);
            }
        }
    }

    static String percent(byte[] raw) {
        StringBuilder b = new StringBuilder(raw.length * 3);
        for (byte x : raw) {
            int c = x & 0xff;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'
                    || c == '_' || c == '~') {
                b.append((char) c);
            } else {
                b.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
            }
        }
        return b.toString();
    }

    private static String shorten(String s) {
        String t = s.replaceAll("[\\p{Cntrl}]", " ").strip();
        return t.length() <= 200 ? t : t.substring(0, 200) + "...";
    }
}
