package io.chiral.protocol.bittorrent.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

import io.chiral.protocol.bittorrent.internal.PeerWire.*;

class PeerWireTest {
    static final Limits LIMITS = Limits.DEFAULT.withPieceCount(100);

    static byte[] filled(int n, int seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** 100 pieces: 13 bytes, the last 4 bits spare. */
    static byte[] bitfield100() {
        byte[] b = filled(13, 1);
        b[12] &= (byte) 0xf0;
        return b;
    }

    /** Every kind of message that can follow a Bitfield, in a valid order for a 100-piece torrent. */
    static List<Message> allAfterBitfield() {
        return List.of(new KeepAlive(), new Choke(), new Unchoke(), new Interested(), new NotInterested(),
                new Have(99), new Request(3, 16384, 16384), new Piece(3, 0, filled(100, 2)),
                new Piece(0, 16384, filled(PeerWire.BLOCK, 3)), new Cancel(3, 16384, 16384), new Port(6881),
                new Suggest(7), new Reject(0, 0, 1), new AllowedFast(42), new Extended(0, "d1:md6:chiralii3eee"
                        .getBytes(StandardCharsets.US_ASCII)), new Extended(3, filled(50, 4)), new KeepAlive());
    }

    static byte[] stream(List<Message> messages) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        messages.forEach(m -> out.writeBytes(PeerWire.encode(m)));
        return out.toByteArray();
    }

    static List<Message> validStream() {
        List<Message> all = new ArrayList<>();
        all.add(new Bitfield(bitfield100()));
        all.addAll(allAfterBitfield());
        return all;
    }

    static Decoder decoder(Limits limits) {
        return new Decoder(limits, true, true);
    }

    /** Decodes {@code data} delivered in chunks of {@code chunk} bytes through a buffer of 4 + maxMessage bytes. */
    static List<Message> decodeChunked(byte[] data, Decoder d, Limits limits, int chunk) throws TorrentException {
        ByteBuffer buf = ByteBuffer.allocate(Math.min(4 + limits.maxMessage(), data.length + 8));
        List<Message> out = new ArrayList<>();
        for (int at = 0; at < data.length; at += chunk) {
            buf.put(data, at, Math.min(chunk, data.length - at));
            buf.flip();
            for (Message m = d.next(buf); m != null; m = d.next(buf)) {
                out.add(m);
            }
            buf.compact();
        }
        assertEquals(0, buf.position(), "no bytes left over");
        return out;
    }

    static Message single(byte[] wire) throws TorrentException {
        ByteBuffer in = ByteBuffer.wrap(wire);
        Message m = decoder(LIMITS).next(in);
        assertFalse(in.hasRemaining(), "one message consumes exactly its bytes");
        return m;
    }

    static TorrentException rejected(Limits limits, byte[] wire) {
        return assertThrows(TorrentException.class, () -> decodeChunked(wire, decoder(limits), limits, wire.length));
    }

    static byte[] raw(int length, int id, int... body) {
        ByteBuffer b = ByteBuffer.allocate(5 + body.length).putInt(length).put((byte) id);
        for (int x : body) {
            b.put((byte) x);
        }
        return b.array();
    }

    static byte[] ints(int id, int... values) {
        ByteBuffer b = ByteBuffer.allocate(5 + 4 * values.length).putInt(1 + 4 * values.length).put((byte) id);
        for (int v : values) {
            b.putInt(v);
        }
        return b.array();
    }

    // ---- handshake ----

    @Test
    void handshakeRoundTripsAndReadsItsReservedBits() throws Exception {
        Handshake h = Handshake.of(filled(20, 5), filled(20, 6), true, true, true);
        byte[] wire = PeerWire.encodeHandshake(h);
        assertEquals(PeerWire.HANDSHAKE_LENGTH, wire.length);
        assertEquals(19, wire[0]);
        assertEquals(PeerWire.PROTOCOL, new String(wire, 1, 19, StandardCharsets.US_ASCII));
        assertEquals(0x10, wire[25]);
        assertEquals(0x05, wire[27]);
        ByteBuffer in = ByteBuffer.wrap(wire);
        Handshake back = PeerWire.decodeHandshake(in);
        assertEquals(h, back);
        assertFalse(in.hasRemaining());
        assertTrue(back.extensionProtocol() && back.fast() && back.dht());
        Handshake plain = Handshake.of(filled(20, 5), filled(20, 6), false, false, false);
        assertFalse(plain.extensionProtocol() || plain.fast() || plain.dht());
        assertTrue(Handshake.of(filled(20, 5), filled(20, 6), false, false, true).dht());
        assertFalse(Handshake.of(filled(20, 5), filled(20, 6), false, false, true).fast());
    }

    @Test
    void handshakeWaitsForAllBytesAndRejectsAWrongProtocolAtOnce() throws Exception {
        byte[] wire = PeerWire.encodeHandshake(Handshake.of(filled(20, 5), filled(20, 6), true, false, false));
        for (int n = 0; n < wire.length; n++) {
            ByteBuffer in = ByteBuffer.wrap(wire, 0, n);
            assertNull(PeerWire.decodeHandshake(in), "prefix of " + n);
            assertEquals(0, in.position());
        }
        byte[] bad = wire.clone();
        bad[5] = 'X';
        assertThrows(TorrentException.class, () -> PeerWire.decodeHandshake(ByteBuffer.wrap(bad, 0, 6)));
        assertThrows(TorrentException.class, () -> PeerWire.decodeHandshake(ByteBuffer.wrap(new byte[] {18})));
        assertThrows(TorrentException.class, () -> PeerWire.decodeHandshake(ByteBuffer.wrap(
                "GET / HTTP/1.1\r\n".getBytes(StandardCharsets.US_ASCII))));
    }

    // ---- messages ----

    @Test
    void everyMessageRoundTrips() throws Exception {
        List<Message> all = new ArrayList<>(validStream());
        all.add(new HaveAll());
        all.add(new HaveNone());
        assertEquals(17, all.stream().map(Object::getClass).distinct().count(), "all 17 sendable kinds");
        for (Message m : all) {
            byte[] wire = PeerWire.encode(m);
            assertEquals(wire.length - 4, ByteBuffer.wrap(wire).getInt(), "length prefix of " + m);
            assertEquals(m, single(wire), "round trip of " + m);
            assertArrayEquals(wire, PeerWire.encode(single(wire)));
        }
        assertArrayEquals(new byte[] {0, 0, 0, 5, 4, 0, 0, 0, 99}, PeerWire.encode(new Have(99)));
        assertArrayEquals(new byte[] {0, 0, 0, 3, 9, 0x1a, (byte) 0xe1}, PeerWire.encode(new Port(6881)));
        assertArrayEquals(new byte[] {0, 0, 0, 1, 14}, PeerWire.encode(new HaveAll()));
    }

    @Test
    void aStreamSplitAtEveryBoundaryDecodesToTheSameMessages() throws Exception {
        List<Message> expected = validStream();
        byte[] wire = stream(expected);
        assertEquals(expected, decodeChunked(wire, decoder(LIMITS), LIMITS, wire.length));
        assertEquals(expected, decodeChunked(wire, decoder(LIMITS), LIMITS, 1), "byte by byte");
        for (int cut = 0; cut <= wire.length; cut++) {
            Decoder d = decoder(LIMITS);
            ByteBuffer buf = ByteBuffer.allocate(wire.length);
            List<Message> got = new ArrayList<>();
            buf.put(wire, 0, cut).flip();
            for (Message m = d.next(buf); m != null; m = d.next(buf)) {
                got.add(m);
            }
            buf.compact().put(wire, cut, wire.length - cut).flip();
            for (Message m = d.next(buf); m != null; m = d.next(buf)) {
                got.add(m);
            }
            assertEquals(expected, got, "split at " + cut);
            assertFalse(buf.hasRemaining());
        }
    }

    @Test
    void anUnknownIdIsSkippedWithinBounds() throws Exception {
        byte[] wire = raw(4, 42, 1, 2, 3);
        assertEquals(new Unknown(42, 4), single(wire));
        rejected(LIMITS, raw(LIMITS.maxMessage() + 1, 42));
        assertNull(decoder(LIMITS).next(ByteBuffer.wrap(raw(LIMITS.maxMessage(), 42))), "bounded: waits");
    }

    @Test
    void aLengthNearTheIntLimitWaitsInsteadOfOverflowing() throws Exception {
        // tests/io.chiral.fuzz PeerWireFuzzTestInputs: with maxMessage near 2^31, 4 + length overflowed to a negative
        // count, so the decoder went on without the body and failed with an IllegalArgumentException
        Limits huge = new Limits(Integer.MAX_VALUE, PeerWire.BLOCK, Limits.UNKNOWN_PIECES);
        ByteBuffer in = ByteBuffer.wrap(raw(Integer.MAX_VALUE - 2, 99, 1, 2, 3));
        assertNull(new Decoder(huge, false, false).next(in), "waits for the body");
        assertEquals(0, in.position());
    }

    @Test
    void lengthPrefixesAreCheckedBeforeTheBodyArrives() throws Exception {
        // only the 5 header bytes present: the length must already be judged
        rejected(LIMITS, raw(0x7fffffff, PeerWire.PIECE));
        rejected(LIMITS, raw(-1, PeerWire.EXTENDED));
        rejected(LIMITS, new byte[] {(byte) 0x80, 0, 0, 0});
        rejected(LIMITS, raw(9 + PeerWire.BLOCK + 1, PeerWire.PIECE));
        rejected(LIMITS, raw(9, PeerWire.PIECE));
        rejected(LIMITS, raw(LIMITS.maxMessage() + 1, PeerWire.EXTENDED));
        rejected(LIMITS, raw(1, PeerWire.EXTENDED));
        assertNull(decoder(LIMITS).next(ByteBuffer.wrap(raw(9 + PeerWire.BLOCK, PeerWire.PIECE))), "valid: waits");
    }

    @Test
    void aRejectedMessageIsNotConsumed() throws Exception {
        ByteBuffer in = ByteBuffer.wrap(stream(List.of(new Choke(), new Have(1))));
        ByteBuffer bad = ByteBuffer.allocate(in.capacity() + 9).put(in).put(ints(PeerWire.HAVE, 100)).flip();
        Decoder d = decoder(LIMITS);
        assertEquals(new Choke(), d.next(bad));
        assertEquals(new Have(1), d.next(bad));
        int at = bad.position();
        assertThrows(TorrentException.class, () -> d.next(bad));
        assertEquals(at, bad.position());
        assertThrows(IllegalArgumentException.class,
                () -> d.next(ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN)));
    }

    @Test
    void fixedSizeMessagesMustHaveTheirExactSize() {
        rejected(LIMITS, raw(2, PeerWire.CHOKE, 0));
        rejected(LIMITS, raw(2, PeerWire.HAVE_ALL, 0));
        rejected(LIMITS, raw(6, PeerWire.HAVE, 0, 0, 0, 1, 0));
        rejected(LIMITS, raw(4, PeerWire.HAVE, 0, 0, 1));
        rejected(LIMITS, raw(14, PeerWire.REQUEST, new int[13]));
        rejected(LIMITS, raw(12, PeerWire.CANCEL, new int[11]));
        rejected(LIMITS, raw(12, PeerWire.REJECT, new int[11]));
        rejected(LIMITS, raw(4, PeerWire.PORT, 0, 1, 0));
        rejected(LIMITS, raw(6, PeerWire.ALLOWED_FAST, new int[5]));
        rejected(LIMITS, raw(6, PeerWire.SUGGEST, new int[5]));
    }

    @Test
    void fieldsOutOfRangeAreRejected() throws Exception {
        rejected(LIMITS, ints(PeerWire.HAVE, -1));
        rejected(LIMITS, ints(PeerWire.HAVE, 100));
        assertEquals(new Have(1000), decodeChunked(ints(PeerWire.HAVE, 1000), decoder(Limits.DEFAULT),
                Limits.DEFAULT, 9).get(0), "no piece count: any non-negative index");
        rejected(Limits.DEFAULT, ints(PeerWire.HAVE, Integer.MIN_VALUE));
        rejected(LIMITS, ints(PeerWire.REQUEST, 0, 0, PeerWire.BLOCK + 1));
        rejected(LIMITS, ints(PeerWire.REQUEST, 0, 0, 0));
        rejected(LIMITS, ints(PeerWire.REQUEST, 0, -1, 1));
        rejected(LIMITS, ints(PeerWire.REQUEST, 0, Integer.MAX_VALUE, 2));
        rejected(LIMITS, ints(PeerWire.REQUEST, 100, 0, 1));
        rejected(LIMITS, ints(PeerWire.CANCEL, 0, 0, -5));
        rejected(LIMITS, ints(PeerWire.REJECT, -3, 0, 5));
        rejected(LIMITS, ints(PeerWire.SUGGEST, 100));
        rejected(LIMITS, ints(PeerWire.ALLOWED_FAST, -2));
        rejected(LIMITS, ints(PeerWire.PIECE, 100, 0, 0));
        rejected(LIMITS, ints(PeerWire.PIECE, 1, -16384, 0));
        rejected(LIMITS, raw(3, PeerWire.PORT, 0, 0));
        Limits small = new Limits(100, 10, 5);
        rejected(small, ints(PeerWire.REQUEST, 0, 0, 11));
        rejected(small, raw(20, PeerWire.PIECE, new int[16]));
        rejected(small, ints(PeerWire.HAVE, 5));
    }

    @Test
    void bitfieldsMustFitThePieceCountExactly() throws Exception {
        byte[] ok = bitfield100();
        assertEquals(new Bitfield(ok), single(PeerWire.encode(new Bitfield(ok))));
        rejected(LIMITS, PeerWire.encode(new Bitfield(new byte[12])));
        rejected(LIMITS, PeerWire.encode(new Bitfield(new byte[14])));
        for (int bit = 0; bit < 4; bit++) {
            byte[] spare = ok.clone();
            spare[12] |= (byte) (1 << bit);
            rejected(LIMITS, PeerWire.encode(new Bitfield(spare)));
        }
        Limits eight = Limits.DEFAULT.withPieceCount(8);
        byte[] full = PeerWire.encode(new Bitfield(new byte[] {(byte) 0xff}));
        assertEquals(new Bitfield(new byte[] {(byte) 0xff}), decodeChunked(full, decoder(eight), eight, 1).get(0));
        Bitfield b = new Bitfield(new byte[] {(byte) 0x81});
        assertTrue(b.has(0) && b.has(7) && !b.has(1) && !b.has(8) && !b.has(-1));
        rejected(Limits.DEFAULT, raw(1, PeerWire.BITFIELD));
        assertThrows(IllegalArgumentException.class, () -> new Limits(1000, 16, 8000));
    }

    @Test
    void sessionRulesAreEnforced() throws Exception {
        byte[] bitfieldLate = stream(List.of(new Have(1), new Bitfield(bitfield100())));
        assertEquals(2, decodeChunked(bitfieldLate, decoder(LIMITS), LIMITS, 7).size(),
                "a late bitfield is decoded (aria2 sends one after its first pieces; the session merges it)");
        rejected(LIMITS, stream(List.of(new Have(1), new HaveAll())));
        rejected(LIMITS, stream(List.of(new HaveNone(), new HaveAll())));
        rejected(LIMITS, stream(List.of(new Choke(), new HaveAll())));
        assertEquals(2, decodeChunked(stream(List.of(new KeepAlive(), new HaveAll())), decoder(LIMITS), LIMITS, 3)
                .size(), "keep-alive does not count as the first message");
        Decoder plain = new Decoder(LIMITS, false, false);
        for (Message m : List.of(new HaveAll(), new Suggest(1), new Reject(1, 0, 1), new AllowedFast(1),
                new Extended(1, new byte[0]))) {
            assertThrows(TorrentException.class, () -> plain.next(ByteBuffer.wrap(PeerWire.encode(m))), m.toString());
        }
        Handshake fast = Handshake.of(new byte[20], new byte[20], false, true, false);
        Handshake both = Handshake.of(new byte[20], new byte[20], true, true, false);
        Decoder negotiated = Decoder.negotiated(LIMITS, fast, both);
        assertInstanceOf(HaveAll.class, negotiated.next(ByteBuffer.wrap(PeerWire.encode(new HaveAll()))));
        assertThrows(TorrentException.class,
                () -> negotiated.next(ByteBuffer.wrap(PeerWire.encode(new Extended(0, new byte[1])))));
        Decoder bep10 = Decoder.negotiated(LIMITS, both, both);
        assertEquals(2, decodeChunked(stream(List.of(new Extended(0, new byte[] {'d', 'e'}), new HaveAll())), bep10,
                LIMITS, 5).size(), "the extended handshake may precede HaveAll (libtorrent sends it first)");
        assertEquals(2, decodeChunked(stream(List.of(new Extended(1, new byte[1]), new HaveAll())),
                Decoder.negotiated(LIMITS, both, both), LIMITS, 5)
                .size(), "ut_metadata requests may precede HaveNone/HaveAll too (libtorrent on a magnet link)");
    }

    // ---- fuzz ----

    /**
     * Seeded mutation fuzz over valid streams: random bytes, truncation, bit flips, byte overwrites, inflated and
     * deflated length prefixes, spliced streams. Whatever the bytes, decoding yields messages or a
     * TorrentException, and no decoded payload exceeds the limits (so nothing larger was allocated); every 16th
     * input is decoded again in random-sized chunks and must give the same messages and the same verdict.
     */
    @Test
    void decoderFuzz() {
        Limits[] limits = {LIMITS, Limits.DEFAULT, new Limits(300, 64, 9)};
        List<byte[]> seeds = new ArrayList<>();
        seeds.add(stream(validStream()));
        seeds.add(stream(List.of(new HaveAll(), new Have(3), new Piece(8, 64, filled(64, 9)), new Request(1, 0, 64))));
        seeds.add(stream(List.of(new Bitfield(new byte[] {(byte) 0xff, (byte) 0x80}), new Extended(2, filled(200, 8)),
                new Port(1), new Cancel(8, 0, 64))));
        Random r = new Random(20_251_123L);
        int messages = 0;
        int rejectedStreams = 0;
        int splits = 0;
        int runs = 200_000;
        long started = System.nanoTime();
        for (int i = 0; i < runs; i++) {
            byte[] d = mutate(seeds.get(r.nextInt(seeds.size())), seeds, r);
            Limits l = limits[r.nextInt(limits.length)];
            boolean fast = r.nextInt(8) != 0;
            boolean ext = r.nextInt(8) != 0;
            List<Object> whole = decodeOrRejection(d, new Decoder(l, fast, ext), d.length);
            for (Object o : whole) {
                if (o instanceof Message m) {
                    assertWithin(l, m);
                    messages++;
                } else {
                    rejectedStreams++;
                }
            }
            if (i % 16 == 0) {
                int chunk = 1 + r.nextInt(Math.max(1, d.length));
                assertEquals(whole, decodeOrRejection(d, new Decoder(l, fast, ext), chunk), "chunks of " + chunk);
                splits++;
            }
        }
        long ms = (System.nanoTime() - started) / 1_000_000;
        System.out.println("PeerWire fuzz: " + runs + " streams, " + messages + " messages, " + rejectedStreams
                + " rejected, " + splits + " re-decoded in chunks, " + ms + " ms");
        assertTrue(rejectedStreams > runs / 10 && messages > runs, rejectedStreams + " / " + messages);
    }

    /** The messages decoded from {@code d} fed in chunks, then "rejected" if it was; stops at the rejection. */
    static List<Object> decodeOrRejection(byte[] d, Decoder dec, int chunk) {
        List<Object> out = new ArrayList<>();
        ByteBuffer buf = ByteBuffer.allocate(d.length);
        try {
            for (int at = 0; at < d.length; at += chunk) {
                buf.put(d, at, Math.min(chunk, d.length - at)).flip();
                for (Message m = dec.next(buf); m != null; m = dec.next(buf)) {
                    out.add(m);
                }
                buf.compact();
            }
        } catch (TorrentException e) {
            out.add("rejected");
        }
        return out;
    }

    static void assertWithin(Limits l, Message m) {
        switch (m) {
            case Piece p -> assertTrue(p.length() <= l.maxBlock());
            case Bitfield b -> assertTrue(b.length() <= l.maxMessage() - 1 && (!l.knowsPieces()
                    || b.length() == PeerWire.bitfieldLength(l.pieceCount())));
            case Extended e -> assertTrue(e.length() <= l.maxMessage() - 2);
            case Unknown u -> assertTrue(u.length() <= l.maxMessage());
            case Request q -> assertTrue(q.length() <= l.maxBlock());
            default -> {
            }
        }
    }

    static byte[] mutate(byte[] seed, List<byte[]> seeds, Random r) {
        byte[] d = seed.clone();
        switch (r.nextInt(7)) {
            case 0 -> {
                d = new byte[r.nextInt(300)];
                r.nextBytes(d);
            }
            case 1 -> d = java.util.Arrays.copyOf(d, r.nextInt(d.length + 1));
            case 2 -> {
                for (int n = 1 + r.nextInt(4); n > 0; n--) {
                    d[r.nextInt(d.length)] ^= (byte) (1 << r.nextInt(8));
                }
            }
            case 3 -> {
                for (int n = 1 + r.nextInt(3); n > 0; n--) {
                    d[r.nextInt(d.length)] = (byte) r.nextInt(256);
                }
            }
            case 4 -> inflatePrefix(d, r);
            case 5 -> {
                byte[] other = seeds.get(r.nextInt(seeds.size()));
                int cut = r.nextInt(d.length);
                int from = r.nextInt(other.length);
                byte[] s = java.util.Arrays.copyOf(d, cut + other.length - from);
                System.arraycopy(other, from, s, cut, other.length - from);
                d = s;
            }
            default -> {
                inflatePrefix(d, r);
                d = java.util.Arrays.copyOf(d, r.nextInt(d.length + 1));
            }
        }
        return d;
    }

    /** Rewrites the length prefix of a message boundary: a little off, or far too large, or negative. */
    static void inflatePrefix(byte[] d, Random r) {
        List<Integer> starts = new ArrayList<>();
        ByteBuffer b = ByteBuffer.wrap(d);
        for (int at = 0; at + 4 <= d.length;) {
            starts.add(at);
            long len = b.getInt(at) & 0xffffffffL;
            at += 4 + (int) Math.min(len, Integer.MAX_VALUE - 8);
            if (at < 0) {
                break;
            }
        }
        if (starts.isEmpty()) {
            return;
        }
        int at = starts.get(r.nextInt(starts.size()));
        int old = b.getInt(at);
        int v = switch (r.nextInt(4)) {
            case 0 -> old + 1 + r.nextInt(4);
            case 1 -> old - 1 - r.nextInt(4);
            case 2 -> r.nextInt();
            default -> (1 << 20) + r.nextInt(64);
        };
        b.putInt(at, v);
    }
}
