package io.chiral.protocol.bittorrent.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.chiral.bencode.Bencode;

/**
 * The tracker codec against Debian's opentracker on 127.0.0.1 (HTTP with compact peers, and UDP per BEP 15; the
 * test drives plain sockets, the codec makes and reads every byte), plus hostile answers.
 */
public class TrackersTest {
    private static Process tracker;
    private static int port;
    private static final byte[] LISTED = HexFormat.of().parseHex("0123456789abcdef0123456789abcdef01234567");
    private static final byte[] UNLISTED = HexFormat.of().parseHex("ffffffffffffffffffffffffffffffffffffffff");

    @BeforeAll
    static void startTracker() throws Exception {
        Path dir = Files.createDirectories(Path.of("target", "opentracker").toAbsolutePath());
        Path whitelist = Files.writeString(dir.resolve("whitelist"), HexFormat.of().formatHex(LISTED) + "\n");
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        // opentracker chroots into -d (when run as root) before it reads the whitelist: name it relative to that
        tracker = new ProcessBuilder("opentracker", "-i", "127.0.0.1", "-p", Integer.toString(port), "-P",
                Integer.toString(port), "-w", whitelist.getFileName().toString(), "-d", dir.toString())
                .directory(dir.toFile()).redirectErrorStream(true).redirectOutput(dir.resolve("opentracker.log").toFile()).start();
        // up, and its whitelist loaded (it reads the list on a thread of its own after it starts listening)
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try {
                http(announce(16880, Trackers.Event.STOPPED, LISTED));
                return;
            } catch (java.io.IOException | TorrentException e) {
                last = e;
                Thread.sleep(100);
            }
        }
        throw new AssertionError("opentracker did not start or accept the whitelisted hash (apt-get install opentracker);"
                + " see " + dir, last);
    }

    @AfterAll
    static void stopTracker() throws Exception {
        if (tracker != null) {
            tracker.destroy();
            tracker.waitFor(5, TimeUnit.SECONDS);
        }
    }

    private static Trackers.Announce announce(int peerPort, Trackers.Event event, byte[] infoHash) {
        byte[] id = new byte[20];
        new SecureRandom().nextBytes(id);
        System.arraycopy("-CH0001-".getBytes(StandardCharsets.US_ASCII), 0, id, 0, 8);
        return new Trackers.Announce(infoHash, id, peerPort, 0, 0, event == Trackers.Event.COMPLETED ? 0 : 1000, event, 50,
                new Random().nextInt());
    }

    private static Trackers.Result http(Trackers.Announce a) throws Exception {
        String url = Trackers.httpAnnounceUrl("http://127.0.0.1:" + port + "/announce", a);
        HttpURLConnection c = (HttpURLConnection) URI.create(url).toURL().openConnection(Proxy.NO_PROXY);
        try (InputStream in = c.getInputStream()) {
            return Trackers.parseHttp(in.readNBytes(Trackers.MAX_HTTP_RESPONSE + 1));
        } finally {
            c.disconnect();
        }
    }

    private static Trackers.Result udp(Trackers.Announce a) throws Exception {
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0))) {
            s.setSoTimeout(5000);
            InetSocketAddress to = new InetSocketAddress("127.0.0.1", port);
            int tx = new Random().nextInt();
            byte[] req = Trackers.udpConnect(tx);
            s.send(new DatagramPacket(req, req.length, to));
            byte[] buf = new byte[2048];
            DatagramPacket p = new DatagramPacket(buf, buf.length);
            s.receive(p);
            long conn = Trackers.parseUdpConnect(buf, p.getLength(), tx);
            byte[] ann = Trackers.udpAnnounce(conn, tx + 1, a);
            s.send(new DatagramPacket(ann, ann.length, to));
            p = new DatagramPacket(buf, buf.length);
            s.receive(p);
            return Trackers.parseUdpAnnounce(buf, p.getLength(), tx + 1);
        }
    }

    @Test
    void httpAndUdpAnnouncesMeetInOneSwarm() throws Exception {
        Trackers.Result first = http(announce(16881, Trackers.Event.STARTED, LISTED));
        assertTrue(first.interval() > 0);
        Trackers.Result second = udp(announce(16882, Trackers.Event.STARTED, LISTED));
        assertTrue(second.peers().contains(new InetSocketAddress("127.0.0.1", 16881)),
                "the UDP announcer sees the HTTP one: " + second.peers());
        Trackers.Result third = http(announce(16883, Trackers.Event.COMPLETED, LISTED));
        assertTrue(third.peers().containsAll(List.of(new InetSocketAddress("127.0.0.1", 16881),
                new InetSocketAddress("127.0.0.1", 16882))), third.peers().toString());
        assertTrue(third.seeders() >= 1 && third.leechers() >= 2, third.toString());

        udp(announce(16881, Trackers.Event.STOPPED, LISTED));
        Trackers.Result after = udp(announce(16884, Trackers.Event.NONE, LISTED));
        assertFalse(after.peers().contains(new InetSocketAddress("127.0.0.1", 16881)), "a stopped peer is gone: " + after);
    }

    @Test
    void aRefusalCarriesTheTrackersReason() {
        TorrentException e = assertThrows(TorrentException.class, () -> http(announce(16885, Trackers.Event.STARTED, UNLISTED)));
        assertTrue(e.getMessage().startsWith("tracker refused: "), e.getMessage());
    }

    @Test
    void dictionaryPeerAddressesAreParsedNotResolved() throws Exception {
        // found by Jazzer (tests/io.chiral.fuzz, TrackerFuzzTestInputs): a dotted quad with an octet above 255 went
        // to InetAddress.getByName, which sent it to DNS; IPv4 is now parsed here and such an address dropped
        assertEquals(List.of(1, 2, 3, -1), java.util.Arrays.stream(box(Trackers.ipv4("1.2.3.255"))).toList());
        assertEquals(null, Trackers.ipv4("10.2.403.00"));
        assertEquals(null, Trackers.ipv4("256.0.0.1"));
        assertEquals(null, Trackers.ipv4("1.2.3"));
        assertEquals(null, Trackers.ipv4("::1"));
        Trackers.Result r = Trackers.parseHttp(Bencode.encode(Map.of("peers", List.of(
                Map.of("ip", "10.2.403.00", "port", 7000L), Map.of("ip", "010.002.003.004", "port", 7001L),
                Map.of("ip", ".1::", "port", 7002L), Map.of("ip", "2001:db8::1", "port", 7003L)))));
        assertEquals(List.of(new InetSocketAddress("10.2.3.4", 7001), new InetSocketAddress("2001:db8::1", 7003)),
                r.peers());
    }

    private static Integer[] box(byte[] b) {
        Integer[] out = new Integer[b.length];
        for (int i = 0; i < b.length; i++) {
            out[i] = (int) b[i];
        }
        return out;
    }

    @Test
    void hostileAnswersAreRefused() throws Exception {
        assertThrows(TorrentException.class, () -> Trackers.parseHttp("garbage".getBytes(StandardCharsets.US_ASCII)));
        assertThrows(TorrentException.class, () -> Trackers.parseHttp(Bencode.encode(Map.of("peers", new byte[7]))));
        assertThrows(TorrentException.class, () -> Trackers.parseHttp(Bencode.encode(Map.of("peers", 5L))));
        assertThrows(TorrentException.class, () -> Trackers.parseHttp(new byte[Trackers.MAX_HTTP_RESPONSE + 1]));
        // dictionary peers: numeric addresses only, never a name to look up
        Trackers.Result r = Trackers.parseHttp(Bencode.encode(Map.of("interval", 60L, "peers", List.of(
                Map.of("ip", "127.0.0.1", "port", 7000L), Map.of("ip", "tracker.example.com", "port", 7001L),
                Map.of("ip", "10.0.0.1", "port", 70000L)))));
        assertEquals(List.of(new InetSocketAddress("127.0.0.1", 7000)), r.peers());
        // a compact list beyond the bound is cut
        Trackers.Result many = Trackers.parseHttp(Bencode.encode(Map.of("peers", new byte[6 * 5000]).entrySet().stream()
                .collect(java.util.stream.Collectors.toMap(Map.Entry::getKey, e -> fill((byte[]) e.getValue())))));
        assertEquals(Trackers.MAX_PEERS, many.peers().size());

        byte[] wrongTx = ByteBuffer.allocate(16).putInt(0).putInt(42).putLong(7).array();
        assertThrows(TorrentException.class, () -> Trackers.parseUdpConnect(wrongTx, 16, 43));
        byte[] error = ByteBuffer.allocate(20).putInt(3).putInt(9).put("no way".getBytes(StandardCharsets.US_ASCII)).array();
        TorrentException e = assertThrows(TorrentException.class, () -> Trackers.parseUdpAnnounce(error, 14, 9));
        assertTrue(e.getMessage().contains("no way"), e.getMessage());
        byte[] ragged = ByteBuffer.allocate(27).putInt(1).putInt(5).array();
        assertThrows(TorrentException.class, () -> Trackers.parseUdpAnnounce(ragged, 27, 5));
        assertThrows(TorrentException.class, () -> Trackers.parseUdpAnnounce(new byte[4], 4, 5));
        Random rnd = new Random(15);
        for (int i = 0; i < 50_000; i++) {
            byte[] d = new byte[rnd.nextInt(80)];
            rnd.nextBytes(d);
            try {
                Trackers.parseUdpAnnounce(d, d.length, rnd.nextInt(3));
                Trackers.parseHttp(d);
            } catch (TorrentException expected) {
                // refused with a reason
            }
        }
    }

    private static byte[] fill(byte[] b) {
        for (int i = 0; i < b.length; i += 6) {
            b[i] = 127;
            b[i + 3] = 1;
            b[i + 4] = (byte) (i >> 8 | 1);
            b[i + 5] = (byte) i;
        }
        return b;
    }
}
