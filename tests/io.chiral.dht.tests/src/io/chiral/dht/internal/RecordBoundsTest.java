package io.chiral.dht.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import io.chiral.bencode.Bytes;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;

/**
 * Issue 10 item 7: a Chiral DHT node's record store and {@code rget} answers are bounded. An {@code rget} from a
 * requester that has not proved its address (no valid token of this node) is answered with a small datagram (no
 * amplification), one with a token gets the records; one publisher key and one source address cannot fill the
 * store, and the whole store stays within its byte bound. Floods are bounded and on 127.0.0.0/8 only.
 */
public class RecordBoundsTest {
    /** Bound of an unverified answer: {@code max(3 x query, 1 KiB)} (see DhtNode). */
    private static final int UNVERIFIED_ANSWER_BYTES = 1024;
    private final SecureRandom sr = new SecureRandom();
    private EventLoopGroup group;
    private DhtNode victim;

    @BeforeEach
    void start() throws Exception {
        group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        victim = node(DhtNode.Settings.chiral());
    }

    private DhtNode node(DhtNode.Settings s) throws Exception {
        DhtNode n = new DhtNode(s.withTimeout(Duration.ofSeconds(2)), NodeId.random(sr), group,
                new InetSocketAddress("127.0.0.1", 0), sr);
        n.start().get(10, TimeUnit.SECONDS);
        return n;
    }

    @AfterEach
    void stop() {
        if (victim != null) {
            victim.close();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
    }

    /** A raw KRPC client on one loopback address. */
    private static final class Client implements AutoCloseable {
        final DatagramSocket socket;
        final InetSocketAddress to;
        final NodeId me = NodeId.random(new SecureRandom());
        int tx;
        int lastQueryBytes;
        int lastAnswerBytes;

        Client(String ip, InetSocketAddress to) throws Exception {
            socket = new DatagramSocket(new InetSocketAddress(ip, 0));
            socket.setSoTimeout(5000);
            this.to = to;
        }

        /** Sends a query and waits (with a deadline) for the answer with its transaction id. */
        Krpc.Message ask(String method, Map<String, Object> args) throws Exception {
            tx++;
            Bytes t = Bytes.of(new byte[] {(byte) (tx >> 16), (byte) (tx >> 8), (byte) tx});
            byte[] d = Krpc.query(t, method, me, args, null);
            lastQueryBytes = d.length;
            socket.send(new DatagramPacket(d, d.length, to));
            byte[] buf = new byte[65536];
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (System.nanoTime() < deadline) {
                DatagramPacket p = new DatagramPacket(buf, buf.length);
                try {
                    socket.receive(p);
                } catch (SocketTimeoutException e) {
                    break;
                }
                Krpc.Message m = Krpc.decode(p.getData(), 0, p.getLength());
                if (m.transaction().equals(t)) {
                    lastAnswerBytes = p.getLength();
                    return m;
                }
            }
            throw new AssertionError("no answer to " + method);
        }

        byte[] token(NodeId target) throws Exception {
            Krpc.Response r = (Krpc.Response) ask("rget", Map.of("target", target.bytes()));
            return ((Bytes) r.values().get(Bytes.of("token"))).toByteArray();
        }

        /** rput of {@code rec} with a fresh token; the answer (a response, or an error when refused). */
        Krpc.Message put(ChiralRecord rec, byte[] token) throws Exception {
            Map<String, Object> a = new LinkedHashMap<>();
            a.put("target", rec.target().bytes());
            a.put("token", token);
            a.put("rec", rec.toWire());
            return ask("rput", a);
        }

        @Override
        public void close() {
            socket.close();
        }
    }

    private static final class Publisher {
        final byte[] seed = new byte[32];
        final byte[] pk;

        Publisher(SecureRandom sr) {
            sr.nextBytes(seed);
            pk = Ed25519Keys.publicKey(seed);
        }

        ChiralRecord record(String key, long seq, int padding) {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("cid", "c".repeat(64));
            v.put("name", "n".repeat(padding));
            v.put("size", 1234L);
            return ChiralRecord.create(key, null, seq, 600, v, pk, m -> Ed25519Keys.sign(seed, m));
        }
    }

    private int storedRecords() throws Exception {
        return victim.snapshot().get(10, TimeUnit.SECONDS).storedRecords();
    }

    /** Heap in use after collections (approximate, for the report). */
    private static long usedHeap() throws InterruptedException {
        Runtime rt = Runtime.getRuntime();
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(100);
        }
        return rt.totalMemory() - rt.freeMemory();
    }

    @Test
    void anUnverifiedRgetIsNotAnAmplifierAndATokenGetsTheRecords() throws Exception {
        String key = "keyword_idx::amplified";
        NodeId target = ChiralRecord.targetOf(key);
        try (Client c = new Client("127.0.0.1", victim.address())) {
            byte[] token = c.token(target);
            for (int i = 0; i < 64; i++) {
                Krpc.Message m = c.put(new Publisher(sr).record(key, 1, 300), token);
                assertTrue(m instanceof Krpc.Response, "record " + i + " refused: " + m);
            }
            Krpc.Response small = (Krpc.Response) c.ask("rget", Map.of("target", target.bytes()));
            double factor = (double) c.lastAnswerBytes / c.lastQueryBytes;
            System.out.printf("unverified rget: %d bytes answered with %d (x%.1f), %s records%n", c.lastQueryBytes,
                    c.lastAnswerBytes, factor, small.values().get(Bytes.of("recs")) instanceof List<?> l ? l.size() : 0);
            assertTrue(c.lastAnswerBytes <= Math.max(3 * c.lastQueryBytes, UNVERIFIED_ANSWER_BYTES),
                    "an unverified rget of " + c.lastQueryBytes + " bytes was answered with " + c.lastAnswerBytes);
            assertTrue(factor <= 12, "amplification x" + factor);
            assertNotNull(small.values().get(Bytes.of("token")), "the small answer carries a token");

            Map<String, Object> a = new LinkedHashMap<>();
            a.put("target", target.bytes());
            a.put("token", token);
            Krpc.Response full = (Krpc.Response) c.ask("rget", a);
            List<?> recs = (List<?>) full.values().get(Bytes.of("recs"));
            System.out.printf("token-verified rget: %d bytes answered with %d, %d records%n", c.lastQueryBytes,
                    c.lastAnswerBytes, recs.size());
            assertTrue(recs.size() >= 8, "a verified requester got only " + recs.size() + " records");
            assertTrue(c.lastAnswerBytes <= 16 * 1024, "a verified answer must fit a datagram: " + c.lastAnswerBytes);
        }
    }

    @Test
    void aLookupStillFindsEveryRecordOfAKey() throws Exception {
        String key = "keyword_idx::found";
        try (Client c = new Client("127.0.0.1", victim.address())) {
            byte[] token = c.token(ChiralRecord.targetOf(key));
            for (int i = 0; i < 10; i++) {
                assertTrue(c.put(new Publisher(sr).record(key, 1, 100), token) instanceof Krpc.Response);
            }
        }
        DhtNode asker = node(DhtNode.Settings.chiral());
        try {
            asker.bootstrap(List.of(victim.address())).get(20, TimeUnit.SECONDS);
            Lookup.Result r = asker.getRecords(key).get(30, TimeUnit.SECONDS);
            assertEquals(10, r.records().size(), "records found by a lookup: " + r.records().size());
        } finally {
            asker.close();
        }
    }

    @Test
    void oneKeyAndOneAddressCannotFillTheStore() throws Exception {
        DhtNode.Settings s = DhtNode.Settings.chiral();
        Publisher one = new Publisher(sr);
        int refused = 0;
        List<ChiralRecord> flood = new java.util.ArrayList<>();
        // twice what one publisher may hold (each record is charged its size plus 1 KiB)
        int count = (int) (2 * s.maxRecordBytesPerPublisher() / 1300);
        for (int i = 0; i < count; i++) {
            flood.add(one.record("keyword_idx::flood" + i, 1, 300));
        }
        long heapBefore = usedHeap();
        try (Client c = new Client("127.0.0.1", victim.address())) {
            for (ChiralRecord rec : flood) {
                if (!(c.put(rec, c.token(rec.target())) instanceof Krpc.Response)) {
                    refused++;
                }
            }
            int stored = storedRecords();
            long heap = usedHeap() - heapBefore;
            System.out.printf("heap held by the flood: %d KiB, %d bytes a stored record (measurement, not asserted)%n",
                    heap / 1024, stored == 0 ? 0 : heap / stored);
            long bytes = victim.recordBytes().get(10, TimeUnit.SECONDS);
            System.out.printf("one key, one address, %d records sent: %d stored (%d accounted bytes), %d refused%n",
                    count, stored, bytes, refused);
            assertTrue(bytes <= s.maxRecordBytesPerPublisher(), "one publisher holds " + bytes + " bytes");
            assertTrue(stored <= s.maxRecordBytesPerPublisher() / 500, "one publisher holds " + stored + " records");
            assertTrue(stored > 50, "records within the quota must be kept: " + stored);

            // the same record replaced many times (from another address) counts once
            int before = storedRecords();
            long bytesBefore = victim.recordBytes().get(10, TimeUnit.SECONDS);
            Publisher two = new Publisher(sr);
            try (Client c2 = new Client("127.0.0.9", victim.address())) {
                for (int seq = 1; seq <= 50; seq++) {
                    ChiralRecord rec = two.record("keyword_idx::replaced", seq, 300);
                    Krpc.Message m = c2.put(rec, c2.token(rec.target()));
                    assertTrue(m instanceof Krpc.Response, "replacement " + seq + " refused: " + m);
                }
            }
            assertEquals(before + 1, storedRecords(), "a replaced record is stored once");
            long cost = two.record("keyword_idx::replaced", 50, 300).encode().length + DhtNode.RECORD_OVERHEAD;
            assertEquals(cost, victim.recordBytes().get(10, TimeUnit.SECONDS) - bytesBefore, "a replaced record counts once");

            // other publishers from the same address: the per-address quota
            for (int p = 0; p < 10; p++) {
                Publisher other = new Publisher(sr);
                for (int i = 0; i < count / 10; i++) {
                    ChiralRecord rec = other.record("keyword_idx::other" + p + "-" + i, 1, 300);
                    c.put(rec, c.token(rec.target()));
                }
            }
            long all = victim.recordBytes().get(10, TimeUnit.SECONDS);
            System.out.printf("one address, 11 keys: %d stored (%d accounted bytes)%n", storedRecords(), all);
            assertTrue(all <= s.maxRecordBytesPerAddress() + s.maxRecordBytesPerPublisher(),
                    "one address holds " + all + " bytes");
        }
    }

    @Test
    void theWholeStoreStaysWithinItsByteBoundAndKeepsTheNewest() throws Exception {
        victim.close();
        DhtNode.Settings s = DhtNode.Settings.chiral().withRecordBounds(200 * 1024, 100 * 1024, 100 * 1024);
        victim = node(s);
        ChiralRecord last = null;
        for (int a = 2; a <= 7; a++) { // six addresses, six publishers, each within its own quotas
            Publisher p = new Publisher(sr);
            try (Client c = new Client("127.0.0." + a, victim.address())) {
                for (int i = 0; i < 60; i++) {
                    ChiralRecord rec = p.record("keyword_idx::total" + a + "-" + i, 1, 300);
                    Krpc.Message m = c.put(rec, c.token(rec.target()));
                    assertTrue(m instanceof Krpc.Response, "within its quotas, refused: " + m);
                    last = rec;
                }
            }
        }
        long bytes = victim.recordBytes().get(10, TimeUnit.SECONDS);
        System.out.printf("six addresses, 360 records sent, 200 KiB bound: %d stored (%d accounted bytes)%n",
                storedRecords(), bytes);
        assertTrue(bytes <= 200 * 1024, "the store holds " + bytes + " bytes");
        assertEquals(1, victim.getRecords(last.key()).get(30, TimeUnit.SECONDS).records().size(),
                "the newest record is kept (the oldest are evicted)");
    }
}
