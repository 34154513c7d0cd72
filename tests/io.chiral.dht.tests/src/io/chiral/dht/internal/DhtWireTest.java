package io.chiral.dht.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;

import io.chiral.bencode.Bytes;

class DhtWireTest {
    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    static Krpc.Message decode(String s) throws Krpc.KrpcException {
        byte[] d = b(s);
        return Krpc.decode(d, 0, d.length);
    }

    static NodeId id(int seed) {
        byte[] x = new byte[20];
        new Random(seed).nextBytes(x);
        return NodeId.of(x);
    }

    static Contact contact(NodeId id, int port) throws Exception {
        return new Contact(id, new InetSocketAddress(InetAddress.getByAddress(new byte[] {127, 0, 0, 1}), port));
    }

    @Test
    void bep5ExampleMessagesDecodeAndReencodeIdentically() throws Exception {
        String ping = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        Krpc.Query q = assertInstanceOf(Krpc.Query.class, decode(ping));
        assertEquals("ping", q.method());
        assertEquals(NodeId.of(b("abcdefghij0123456789")), q.sender());
        assertArrayEquals(b(ping), Krpc.query(Bytes.of("aa"), "ping", q.sender(), Map.of(), null));

        String pong = "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re";
        Krpc.Response r = assertInstanceOf(Krpc.Response.class, decode(pong));
        assertArrayEquals(b(pong), Krpc.response(Bytes.of("aa"), r.sender(), Map.of(), null));

        String err = "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
        Krpc.Error e = assertInstanceOf(Krpc.Error.class, decode(err));
        assertEquals(201, e.code());
        assertEquals("A Generic Error Ocurred", e.message());
        assertArrayEquals(b(err), Krpc.error(Bytes.of("aa"), 201, "A Generic Error Ocurred"));

        Krpc.Response peers = assertInstanceOf(Krpc.Response.class,
                decode("d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re"));
        @SuppressWarnings("unchecked")
        List<Object> values = (List<Object>) peers.values().get(Bytes.of("values"));
        InetSocketAddress first = Contact.parsePeer(((Bytes) values.get(0)).toByteArray());
        assertEquals("97.120.106.101", first.getAddress().getHostAddress());
        assertEquals(0x2e75, first.getPort());
    }

    @Test
    void invalidMessagesGiveProtocolErrorsWithTheirTransaction() {
        String[] bad = {"i1e", "de", "d1:t2:aa1:y1:qe", "d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
            "d1:t2:aa1:y1:ze", "d1:rde1:t2:aa1:y1:re", "d1:eli201ee1:t2:aa1:y1:ee", "garbage"};
        for (String s : bad) {
            Krpc.KrpcException e = assertThrows(Krpc.KrpcException.class, () -> decode(s), s);
            assertEquals(Krpc.PROTOCOL_ERROR, e.code());
        }
        Krpc.KrpcException e = assertThrows(Krpc.KrpcException.class, () -> decode("d1:t2:aa1:y1:qe"));
        assertEquals(Bytes.of("aa"), e.transaction(), "the error can be answered to its transaction");
    }

    /** Bounded, seeded fuzz: whatever the bytes, decode returns a message or throws KrpcException, nothing else. */
    @Test
    void decoderFuzz() {
        byte[][] seeds = {b("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"),
            b("d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe"),
            b("d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re"),
            b("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee")};
        Random r = new Random(5);
        int ok = 0;
        for (int i = 0; i < 100_000; i++) {
            byte[] d = seeds[r.nextInt(seeds.length)].clone();
            if (r.nextInt(10) == 0) {
                d = new byte[r.nextInt(200)];
                r.nextBytes(d);
            } else {
                for (int m = 1 + r.nextInt(3); m > 0; m--) {
                    d[r.nextInt(d.length)] = (byte) (r.nextBoolean() ? "0123456789ildex:"
                            .charAt(r.nextInt(16)) : r.nextInt(256));
                }
            }
            try {
                Krpc.decode(d, 0, d.length);
                ok++;
            } catch (Krpc.KrpcException expected) {
                // rejected cleanly
            }
        }
        assertTrue(ok > 100, "some mutations stay valid: " + ok);
    }

    @Test
    void compactEncodingsRoundTripAndRejectBadLengths() throws Exception {
        List<Contact> cs = List.of(contact(id(1), 6881), contact(id(2), 1));
        byte[] enc = Contact.encodeNodes(cs);
        assertEquals(52, enc.length);
        assertEquals(cs, Contact.parseNodes(enc));
        assertThrows(IllegalArgumentException.class, () -> Contact.parseNodes(new byte[27]));
        assertThrows(IllegalArgumentException.class, () -> Contact.parsePeer(new byte[7]));
    }

    @Test
    void xorMetric() {
        NodeId zero = NodeId.of(new byte[20]);
        byte[] one = new byte[20];
        one[19] = 1;
        byte[] top = new byte[20];
        top[0] = (byte) 0x80;
        assertEquals(159, zero.commonPrefix(NodeId.of(one)));
        assertEquals(0, zero.commonPrefix(NodeId.of(top)));
        assertEquals(160, zero.commonPrefix(zero));
        assertTrue(zero.closer(NodeId.of(one), NodeId.of(top)) < 0);
        SecureRandom sr = new SecureRandom();
        NodeId self = id(9);
        for (int p = 0; p < 160; p += 7) {
            assertEquals(p, self.commonPrefix(self.randomInBucket(p, sr)), "bucket " + p);
        }
    }

    @Test
    void routingTableKeepsKPerBucketAndFindsTheClosest() throws Exception {
        NodeId self = id(0);
        RoutingTable rt = new RoutingTable(self, 8);
        List<Contact> all = new ArrayList<>();
        for (int i = 1; i <= 3000; i++) {
            Contact c = contact(id(i), 1000 + (i % 60000));
            all.add(c);
            rt.seen(c, i);
        }
        assertTrue(rt.size() <= 160 * 8);
        for (int p = 0; p < 160; p++) {
            assertTrue(rt.bucket(p).size() <= 8);
        }
        // bucket 0 holds about half of all random ids, so it is full; a newcomer there waits as a replacement
        assertEquals(8, rt.bucket(0).size());
        NodeId target = id(12345);
        List<Contact> closest = rt.closest(target, 8);
        // everything the table holds that is closer than its 8th answer must be among the answers
        List<Contact> held = new ArrayList<>();
        for (int p = 0; p < 160; p++) {
            rt.bucket(p).forEach(e -> held.add(e.contact()));
        }
        held.sort((a, b) -> target.closer(a.id(), b.id()));
        assertEquals(held.subList(0, 8), closest);

        // a contact that fails twice is dropped and a replacement takes its place
        Contact victim = rt.bucket(0).get(0).contact();
        rt.failed(victim.id(), 5000);
        assertTrue(rt.contains(victim.id()), "one failure is forgiven");
        rt.failed(victim.id(), 5001);
        assertTrue(!rt.contains(victim.id()));
        assertEquals(8, rt.bucket(0).size(), "the freshest replacement moved in");

        // refresh: nothing is stale against time 0; against 'now' every bucket down to the deepest one is
        assertTrue(rt.staleBuckets(0).isEmpty());
        List<Integer> stale = rt.staleBuckets(Long.MAX_VALUE);
        assertEquals(0, stale.get(0));
        assertEquals(stale.size() - 1, stale.get(stale.size() - 1));
        assertTrue(!rt.bucket(stale.get(stale.size() - 1)).isEmpty(), "the deepest listed bucket holds contacts");
        // the table never holds itself
        rt.seen(contact(self, 9), 6000);
        assertTrue(!rt.contains(self));
    }
}
