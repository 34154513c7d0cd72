package io.chiral.dht.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.Bytes;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;

/**
 * A network of {@value #DEFAULT_NODES} real DHT nodes (Chiral personality, k = 20, α = 3) in one JVM, each on its own
 * UDP socket on 127.0.0.1. Checks that iterative lookups reach the true closest node, that announces, BEP 44 items
 * and signed records stored at one node are found from another, that the node's storage stays within its bounds
 * under a flood, and that hostile datagrams are dropped while the node keeps answering. Lookup hops and latency
 * are written to {@code target/dht-simulation.txt} (see docs/benchmarks.md).
 */
public class DhtSimulationTest {
    static final int DEFAULT_NODES = 1000;
    private static final int NODES = Integer.getInteger("chiral.dht.sim.nodes", DEFAULT_NODES);
    private static final int LOOKUPS = 300;
    private static EventLoopGroup group;
    private static final List<DhtNode> nodes = new ArrayList<>();
    private static final Random rnd = new Random(42);
    private static long bootstrapMillis;

    @BeforeAll
    static void buildNetwork() throws Exception {
        group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
        SecureRandom sr = new SecureRandom();
        DhtNode.Settings settings = DhtNode.Settings.chiral().withTimeout(Duration.ofSeconds(2));
        List<CompletableFuture<InetSocketAddress>> started = new ArrayList<>();
        for (int i = 0; i < NODES; i++) {
            DhtNode n = new DhtNode(settings, NodeId.random(sr), group, new InetSocketAddress("127.0.0.1", 0), sr);
            nodes.add(n);
            started.add(n.start());
        }
        for (CompletableFuture<InetSocketAddress> f : started) {
            f.get(30, TimeUnit.SECONDS);
        }
        long t0 = System.nanoTime();
        int batch = 25;
        for (int i = 1; i < NODES; i += batch) {
            List<CompletableFuture<Integer>> joins = new ArrayList<>();
            for (int j = i; j < Math.min(NODES, i + batch); j++) {
                InetSocketAddress seed = nodes.get(rnd.nextInt(j)).address();
                joins.add(nodes.get(j).bootstrap(List.of(nodes.get(0).address(), seed)));
            }
            for (CompletableFuture<Integer> f : joins) {
                f.get(60, TimeUnit.SECONDS);
            }
        }
        bootstrapMillis = (System.nanoTime() - t0) / 1_000_000;
    }

    @AfterAll
    static void tearDown() {
        for (DhtNode n : nodes) {
            n.close();
        }
        nodes.clear();
        if (group != null) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
        }
    }

    private static DhtNode anyNode() {
        return nodes.get(rnd.nextInt(nodes.size()));
    }

    @Test
    void lookupsReachTheClosestNode() throws Exception {
        SecureRandom sr = new SecureRandom();
        int exact = 0;
        List<Integer> hops = new ArrayList<>();
        List<Long> millis = new ArrayList<>();
        List<Integer> queried = new ArrayList<>();
        for (int i = 0; i < LOOKUPS; i++) {
            DhtNode from = anyNode();
            NodeId target = NodeId.random(sr);
            Lookup.Result r = from.lookup(target, Lookup.Kind.FIND_NODE, null).get(60, TimeUnit.SECONDS);
            NodeId best = null;
            for (DhtNode n : nodes) {
                if (n != from && (best == null || target.closer(n.id(), best) < 0)) {
                    best = n.id();
                }
            }
            assertTrue(!r.closest().isEmpty(), "lookup found no node at all");
            if (r.closest().get(0).contact().id().equals(best)) {
                exact++;
            }
            hops.add(r.hops());
            millis.add(r.millis());
            queried.add(r.queried());
        }
        Collections.sort(hops);
        Collections.sort(millis);
        Collections.sort(queried);
        int tableSum = 0;
        for (DhtNode n : nodes) {
            tableSum += n.snapshot().get(10, TimeUnit.SECONDS).tableSize();
        }
        String report = String.format(java.util.Locale.ROOT,
                "nodes %d (k=20, alpha=3), bootstrap of all nodes %d ms, mean routing table %.1f contacts%n"
                        + "lookups %d: closest node found exactly %d (%.1f %%)%n"
                        + "hops median %d, p95 %d, max %d%n"
                        + "latency median %d ms, p95 %d ms, max %d ms%n"
                        + "nodes queried per lookup median %d, p95 %d%n",
                NODES, bootstrapMillis, tableSum / (double) NODES, LOOKUPS, exact, 100.0 * exact / LOOKUPS,
                pct(hops, 50), pct(hops, 95), hops.get(hops.size() - 1),
                pct(millis, 50), pct(millis, 95), millis.get(millis.size() - 1), pct(queried, 50), pct(queried, 95));
        System.out.print(report);
        Path out = Path.of(System.getProperty("chiral.sim.report", "target/dht-simulation.txt"));
        Files.createDirectories(out.toAbsolutePath().getParent());
        Files.writeString(out, report);
        assertTrue(exact >= LOOKUPS * 95 / 100, "only " + exact + " of " + LOOKUPS + " lookups found the closest node");
    }

    private static <T extends Comparable<T>> T pct(List<T> sorted, int p) {
        return sorted.get(Math.min(sorted.size() - 1, sorted.size() * p / 100));
    }

    @Test
    void announcedPeersAreFoundFromElsewhere() throws Exception {
        NodeId infoHash = NodeId.random(new SecureRandom());
        int stored = anyNode().announce(infoHash, 6881).get(60, TimeUnit.SECONDS);
        assertTrue(stored >= 10, "announce stored at only " + stored + " nodes");
        Lookup.Result r = anyNode().lookup(infoHash, Lookup.Kind.GET_PEERS, null).get(60, TimeUnit.SECONDS);
        assertTrue(r.peers().contains(new InetSocketAddress("127.0.0.1", 6881)), "peers found: " + r.peers());
    }

    @Test
    void bep44ItemsAreStoredAndFound() throws Exception {
        byte[] value = Bencode.encode(Map.of("hello", "world", "n", 7L));
        int stored = anyNode().putImmutable(value).get(60, TimeUnit.SECONDS);
        assertTrue(stored >= 10, "immutable item stored at only " + stored + " nodes");
        Lookup.Result got = anyNode().lookup(Bep44.immutableTarget(value), Lookup.Kind.GET, null).get(60, TimeUnit.SECONDS);
        assertNotNull(got.item(), "immutable item not found");
        assertTrue(Arrays.equals(value, got.item().value()));

        byte[] seed = new byte[32];
        new SecureRandom().nextBytes(seed);
        byte[] pk = Ed25519Keys.publicKey(seed);
        byte[] salt = "channel".getBytes(StandardCharsets.US_ASCII);
        assertTrue(anyNode().putMutable(seed, salt, Bencode.encode("v1"), 1).get(60, TimeUnit.SECONDS) >= 10);
        assertTrue(anyNode().putMutable(seed, salt, Bencode.encode("v2"), 2).get(60, TimeUnit.SECONDS) >= 10);
        assertEquals(0, anyNode().putMutable(seed, salt, Bencode.encode("old"), 1).get(60, TimeUnit.SECONDS),
                "a lower seq must be refused by every node");
        Lookup.Result m = anyNode().lookup(Bep44.mutableTarget(pk, salt), Lookup.Kind.GET, salt).get(60, TimeUnit.SECONDS);
        assertNotNull(m.item(), "mutable item not found");
        assertEquals(2, m.item().seq());
        assertEquals("2:v2", new String(m.item().value(), StandardCharsets.US_ASCII));
    }

    @Test
    void signedRecordsArePublishedAndFound() throws Exception {
        String key = "keyword_idx::simulation" + rnd.nextInt(1_000_000);
        for (int p = 0; p < 3; p++) {
            byte[] seed = new byte[32];
            new SecureRandom().nextBytes(seed);
            byte[] pk = Ed25519Keys.publicKey(seed);
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("cid", "publisher-" + p);
            ChiralRecord rec = ChiralRecord.create(key, null, System.currentTimeMillis(), 600, v, pk,
                    m -> Ed25519Keys.sign(seed, m));
            int stored = anyNode().putRecord(rec).get(60, TimeUnit.SECONDS);
            assertTrue(stored >= 10, "record stored at only " + stored + " nodes");
        }
        Lookup.Result r = anyNode().getRecords(key).get(60, TimeUnit.SECONDS);
        assertEquals(3, r.records().size(), "records found: " + r.records());
    }

    @Test
    void oneAddressCannotFloodANode() throws Exception {
        DhtNode victim = anyNode();
        byte[] ping = Krpc.query(Bytes.of("fl"), "ping", NodeId.random(new SecureRandom()), Map.of(), null);
        InetSocketAddress flooder = new InetSocketAddress("192.0.2.7", 6881); // TEST-NET-1: answers go nowhere
        DhtNode.Snapshot before = victim.snapshot().get(10, TimeUnit.SECONDS);
        victim.onLoop(() -> {
            for (int i = 0; i < 1000; i++) {
                victim.receive(ping, flooder);
            }
            return CompletableFuture.completedFuture(null);
        }).get(30, TimeUnit.SECONDS);
        DhtNode.Snapshot after = victim.snapshot().get(10, TimeUnit.SECONDS);
        long dropped = after.dropped() - before.dropped();
        // 1000 queries within (at most) two one-second windows: at most 2 x the limit answered
        assertTrue(dropped >= 1000 - 2 * DhtNode.QUERIES_PER_SECOND_PER_IP, "only " + dropped + " of 1000 dropped");
        assertTrue(other(victim).ping(victim.address()).get(10, TimeUnit.SECONDS), "others are still answered");
    }

    private static DhtNode other(DhtNode not) {
        DhtNode n;
        do {
            n = anyNode();
        } while (n == not);
        return n;
    }

    @Test
    void hostileDatagramsAreDroppedAndStorageStaysBounded() throws Exception {
        DhtNode victim = anyNode();
        InetSocketAddress to = victim.address();
        DhtNode.Snapshot before = victim.snapshot().get(10, TimeUnit.SECONDS);
        long droppedBefore = before.dropped();
        NodeId me = NodeId.random(new SecureRandom());
        Random r = new Random(7);
        byte[] ping = Krpc.query(Bytes.of("aa"), "ping", me, Map.of(), null);
        List<byte[]> corpus = List.of(ping,
                Krpc.query(Bytes.of("ab"), "find_node", me, Map.of("target", NodeId.random(new SecureRandom()).bytes()), null),
                Krpc.query(Bytes.of("ac"), "get_peers", me, Map.of("info_hash", new byte[20]), null),
                Krpc.query(Bytes.of("ad"), "rput", me, Map.of("target", new byte[20], "token", "x",
                        "rec", Map.of("k", new byte[32], "key", "x", "seq", 1L, "ttl", 60L, "v", Map.of(), "sig", new byte[64])), null));
        // 1. hostile datagrams straight into the node's receive path (no socket buffer in between)
        List<byte[]> hostile = new ArrayList<>();
        for (int i = 0; i < 20_000; i++) {
            byte[] d;
            switch (i % 6) {
                case 0 -> { // random bytes
                    d = new byte[1 + r.nextInt(1500)];
                    r.nextBytes(d);
                }
                case 1 -> { // truncated valid message
                    byte[] base = corpus.get(r.nextInt(corpus.size()));
                    d = Arrays.copyOf(base, r.nextInt(base.length));
                }
                case 2 -> { // mutated valid message
                    d = corpus.get(r.nextInt(corpus.size())).clone();
                    for (int m = 0; m < 1 + r.nextInt(4); m++) {
                        d[r.nextInt(d.length)] = (byte) r.nextInt(256);
                    }
                }
                case 3 -> // oversized string length claims and deep nesting
                    d = (r.nextBoolean() ? "d1:t2:aa1:y1:q1:q4:ping1:ad2:id99999999:" : "l".repeat(5000))
                            .getBytes(StandardCharsets.US_ASCII);
                case 4 -> d = new byte[60_000]; // big datagram of zeros
                default -> d = corpus.get(3); // unsigned record with a bad token
            }
            hostile.add(d);
        }
        int undecodable = 0;
        for (byte[] d : hostile) {
            try {
                Krpc.decode(d, 0, d.length);
            } catch (Krpc.KrpcException e) {
                undecodable++;
            }
        }
        InetSocketAddress fakeSender = new InetSocketAddress("127.0.0.1", 9);
        victim.onLoop(() -> {
            for (byte[] d : hostile) {
                victim.receive(d, fakeSender); // must not throw
            }
            return CompletableFuture.completedFuture(null);
        }).get(60, TimeUnit.SECONDS);
        long dropped = victim.snapshot().get(10, TimeUnit.SECONDS).dropped() - droppedBefore;
        assertTrue(dropped >= undecodable, "dropped " + dropped + " but " + undecodable + " did not even decode");
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress("127.0.0.1", 0))) {
            // flood the peer store through the front door: one token, many info-hashes
            s.setSoTimeout(5000);
            s.send(new DatagramPacket(corpus.get(2), corpus.get(2).length, to));
            byte[] buf = new byte[4096];
            byte[] token = null;
            for (int tries = 0; tries < 50 && token == null; tries++) {
                DatagramPacket p = new DatagramPacket(buf, buf.length);
                s.receive(p);
                try {
                    if (Krpc.decode(p.getData(), 0, p.getLength()) instanceof Krpc.Response resp
                            && resp.transaction().equals(Bytes.of("ac"))) {
                        token = ((Bytes) resp.values().get(Bytes.of("token"))).toByteArray();
                    }
                } catch (Krpc.KrpcException e) {
                    // an error answer to one of the hostile datagrams
                }
            }
            assertNotNull(token, "no get_peers answer with a token");
            for (int i = 0; i < 10_000; i++) {
                Map<String, Object> a = new LinkedHashMap<>();
                a.put("info_hash", NodeId.random(new SecureRandom()).bytes());
                a.put("port", 1000L + i % 60000);
                a.put("token", token);
                byte[] d = Krpc.query(Bytes.of(new byte[] {(byte) (i >> 8), (byte) i}), "announce_peer", me, a, null);
                s.send(new DatagramPacket(d, d.length, to));
                if (i % 500 == 0) {
                    Thread.sleep(5);
                }
            }
        }
        // the announces are processed once they stop adding to the store (or it is full)
        DhtNode.Snapshot after = awaitStoredPeersSettled(victim);
        assertTrue(after.storedPeers() <= DhtNode.Settings.chiral().maxInfoHashes(),
                "peer store exceeded its bound: " + after.storedPeers());
        assertTrue(after.storedPeers() > 1000, "the announces with a valid token were not stored: " + after.storedPeers());
        DhtNode other = anyNode();
        assertTrue(other.ping(to).get(10, TimeUnit.SECONDS), "the node stopped answering");
        Lookup.Result rec = other.getRecords("x").get(30, TimeUnit.SECONDS);
        assertTrue(rec.records().isEmpty(), "an unsigned record was stored");
        // the flood of hostile contacts displaced none of the honest nodes the victim knew before
        List<NodeId> kept = after.entries().stream().map(e -> e.contact().id()).toList();
        List<NodeId> lost = before.entries().stream().map(e -> e.contact().id()).filter(id -> !kept.contains(id)).toList();
        assertTrue(lost.isEmpty(), "honest contacts evicted from the routing table: " + lost);
    }

    /**
     * Polls the victim's snapshot until its peer store stops growing (unchanged over three readings 200 ms apart) or
     * reaches its bound; fails after 30 s. The one wait of this class.
     */
    private static DhtNode.Snapshot awaitStoredPeersSettled(DhtNode victim) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        DhtNode.Snapshot last = victim.snapshot().get(10, TimeUnit.SECONDS);
        int unchanged = 0;
        while (true) {
            Thread.sleep(200);
            DhtNode.Snapshot now = victim.snapshot().get(10, TimeUnit.SECONDS);
            unchanged = now.storedPeers() == last.storedPeers() ? unchanged + 1 : 0;
            if (unchanged == 3 || now.storedPeers() >= DhtNode.Settings.chiral().maxInfoHashes()) {
                return now;
            }
            assertTrue(System.nanoTime() < deadline, "the peer store still grows after 30 s: " + now.storedPeers());
            last = now;
        }
    }

}
