package io.chiral.protocol.bittorrent.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import org.junit.jupiter.api.Test;

import io.chiral.protocol.bittorrent.internal.Extension.*;

class ExtensionTest {
    static final String ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    static final String WALLET = "0x52908400098527886E0F7030069857D2E4169EE7";

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    static byte[] concat(byte[] a, byte[] c) {
        byte[] out = Arrays.copyOf(a, a.length + c.length);
        System.arraycopy(c, 0, out, a.length, c.length);
        return out;
    }

    static void rejectsHandshake(String s) {
        assertThrows(TorrentException.class, () -> Extension.decodeHandshake(b(s)), s);
    }

    static void rejectsMetadata(byte[] payload, long size) {
        assertThrows(TorrentException.class, () -> Extension.decodeMetadata(payload, size), new String(payload, 0,
                Math.min(payload.length, 80), StandardCharsets.ISO_8859_1));
    }

    static void rejectsChiral(String s) {
        assertThrows(TorrentException.class, () -> Extension.decodeChiral(b(s)), s);
    }

    // ---- extended handshake ----

    @Test
    void bep10HandshakeRoundTripsAndIgnoresUnknownKeys() throws Exception {
        Handshake h = new Handshake(Map.of("ut_metadata", 3, "chiral", 7, "lt_donthave", 0), "Chiral 0.1", 6881, 250,
                31_235);
        byte[] wire = Extension.encodeHandshake(h);
        assertEquals("d1:md6:chirali7e11:lt_donthavei0e11:ut_metadatai3ee13:metadata_sizei31235e1:pi6881e"
                + "4:reqqi250e1:v10:Chiral 0.1e", new String(wire, StandardCharsets.ISO_8859_1));
        assertEquals(h, Extension.decodeHandshake(wire));
        assertEquals(3, h.id("ut_metadata"));
        assertEquals(0, h.id("lt_donthave"));
        assertEquals(0, h.id("ut_pex"));
        Handshake minimal = Extension.decodeHandshake(b("d1:md11:ut_metadatai1ee6:yourip4:\1\2\3\4e"));
        assertEquals(new Handshake(Map.of("ut_metadata", 1), null, 0, 0, -1), minimal);
        assertArrayEquals(b("d1:mdee"), Extension.encodeHandshake(new Handshake(Map.of(), null, 0, 0, -1)));
    }

    @Test
    void bep10HandshakeRejections() {
        rejectsHandshake("de");
        rejectsHandshake("d1:mlee");
        rejectsHandshake("d1:md11:ut_metadatai256eee");
        rejectsHandshake("d1:md11:ut_metadatai-1eee");
        rejectsHandshake("d1:md11:ut_metadata1:3ee");
        rejectsHandshake("d1:md1:ai1e1:bi1eee");
        rejectsHandshake("d1:md0:i1eee");
        rejectsHandshake("d1:md65:" + "x".repeat(65) + "i1eee");
        rejectsHandshake("d1:md2:a\0i1eee");
        rejectsHandshake("d1:mde13:metadata_sizei16777217ee");
        rejectsHandshake("d1:mde13:metadata_sizei0ee");
        rejectsHandshake("d1:mde13:metadata_size2:10e");
        rejectsHandshake("d1:mde1:pi0ee");
        rejectsHandshake("d1:mde1:pi65536ee");
        rejectsHandshake("d1:mde4:reqqi0ee");
        rejectsHandshake("d1:mde1:v129:" + "v".repeat(129) + "e");
        rejectsHandshake("d1:md1:bi1e1:ai2eee");
        rejectsHandshake("d1:mdeei1e");
        rejectsHandshake("");
        StringBuilder many = new StringBuilder("d1:md");
        for (int i = 0; i < 65; i++) {
            many.append("3:x").append((char) ('A' + i / 10)).append((char) ('0' + i % 10)).append("i0e");
        }
        rejectsHandshake(many.append("ee").toString());
        assertTrue(many.toString().startsWith("d1:md3:xA0i0e3:xA1"));
    }

    // ---- BEP 9 ----

    @Test
    void metadataMessagesRoundTrip() throws Exception {
        int size = 2 * Extension.METADATA_PIECE + 100;
        byte[] info = new byte[size];
        new Random(9).nextBytes(info);
        List<MetadataMessage> all = List.of(new MetadataRequest(0), new MetadataReject(2),
                new MetadataData(0, size, Arrays.copyOf(info, Extension.METADATA_PIECE)),
                new MetadataData(2, size, Arrays.copyOfRange(info, 2 * Extension.METADATA_PIECE, size)));
        for (MetadataMessage m : all) {
            byte[] wire = Extension.encodeMetadata(m);
            assertEquals(m, Extension.decodeMetadata(wire, size), m.toString());
            assertEquals(m, Extension.decodeMetadata(wire, -1), m.toString() + " with the size unknown");
        }
        assertArrayEquals(b("d8:msg_typei0e5:piecei0ee"), Extension.encodeMetadata(new MetadataRequest(0)));
        byte[] data = Extension.encodeMetadata(new MetadataData(0, 3, b("ee!")));
        assertEquals("d8:msg_typei1e5:piecei0e10:total_sizei3eeee!", new String(data, StandardCharsets.ISO_8859_1));
        assertEquals(new MetadataData(0, 3, b("ee!")), Extension.decodeMetadata(data, 3));
        assertEquals(new MetadataUnknown(7), Extension.decodeMetadata(b("d8:msg_typei7ee"), -1));
        assertEquals(1024, Extension.metadataPieces(Extension.MAX_METADATA_SIZE));
    }

    @Test
    void metadataRejections() {
        byte[] piece = new byte[Extension.METADATA_PIECE];
        rejectsMetadata(b("d5:piecei0ee"), -1);
        rejectsMetadata(b("d8:msg_type1:05:piecei0ee"), -1);
        rejectsMetadata(b("d8:msg_typei0ee"), -1);
        rejectsMetadata(b("d8:msg_typei0e5:piecei-1ee"), -1);
        rejectsMetadata(b("d8:msg_typei0e5:piecei2ee"), 2 * Extension.METADATA_PIECE);
        rejectsMetadata(b("d8:msg_typei0e5:piecei1024ee"), -1);
        rejectsMetadata(b("d8:msg_typei2e5:piecei0eexx"), -1);
        rejectsMetadata(b("d8:msg_typei0e5:piecei0eex"), -1);
        rejectsMetadata(b("d8:msg_typei0e5:piecei0e"), -1);
        rejectsMetadata(b("li0ee"), -1);
        rejectsMetadata(b(""), -1);
        rejectsMetadata(b("e"), -1);
        rejectsMetadata(b("d8:msg_typei1e5:piecei0ee"), -1);
        rejectsMetadata(concat(b("d8:msg_typei1e5:piecei0e10:total_sizei16777217ee"), piece), -1);
        rejectsMetadata(concat(b("d8:msg_typei1e5:piecei0e10:total_sizei20000ee"), piece), 20001);
        rejectsMetadata(concat(b("d8:msg_typei1e5:piecei0e10:total_sizei20000ee"), new byte[100]), -1);
        rejectsMetadata(concat(b("d8:msg_typei1e5:piecei1e10:total_sizei20000ee"), piece), -1);
        rejectsMetadata(concat(b("d8:msg_typei1e5:piecei2e10:total_sizei20000ee"), new byte[0]), -1);
        rejectsMetadata(concat(b("d8:msg_typei1e5:piecei0e10:total_sizei3ee"), b("ee!!")), -1);
        rejectsMetadata(concat(b("d8:msg_typei1e5:piecei0e10:total_sizei3ee"), b("e!")), -1);
        rejectsMetadata(b("d8:msg_typei1e5:piecei0e10:total_sizei03eeee!"), -1);
        rejectsMetadata(b("d5:piecei0e8:msg_typei0ee"), -1);
        rejectsMetadata(b("l".repeat(40) + "e".repeat(40)), -1);
        rejectsMetadata(b("99999999999999999999:"), -1);
    }

    @Test
    void valueEndFindsTheExtentOfOneValue() throws Exception {
        assertEquals(4, Extension.valueEnd(b("i12eXYZ"), 0, 7));
        assertEquals(5, Extension.valueEnd(b("3:abcX"), 0, 5));
        assertEquals(8, Extension.valueEnd(b("d1:ai1ee"), 0, 8));
        assertEquals(12, Extension.valueEnd(b("ld1:ali1eeee!"), 0, 13));
        assertEquals(4, Extension.valueEnd(b("xx2:deyy"), 2, 8) - 2);
        assertThrows(TorrentException.class, () -> Extension.valueEnd(b("d1:a"), 0, 4));
        assertThrows(TorrentException.class, () -> Extension.valueEnd(b("e"), 0, 1));
        assertThrows(TorrentException.class, () -> Extension.valueEnd(b("5:ab"), 0, 4));
    }

    // ---- chiral ----

    @Test
    void chiralMessageRoundTrips() throws Exception {
        ChiralHello h = new ChiralHello(ID, 875, WALLET);
        byte[] wire = Extension.encodeChiral(h);
        assertEquals("d14:chiral_peer_id64:" + ID + "8:msg_typei1e16:reputation_scorei875e14:wallet_address42:" + WALLET
                + "e", new String(wire, StandardCharsets.US_ASCII));
        assertEquals(h, Extension.decodeChiral(wire));
        ChiralHello anonymous = new ChiralHello(ID, 0, "");
        assertEquals(anonymous, Extension.decodeChiral(Extension.encodeChiral(anonymous)));
        assertEquals(new ChiralHello(ID, 1000, ""), Extension.decodeChiral(Extension.encodeChiral(
                new ChiralHello(ID, 1000, ""))));
    }

    @Test
    void chiralRejections() {
        String ok = "d14:chiral_peer_id64:" + ID + "8:msg_typei1e16:reputation_scorei875e14:wallet_address0:e";
        assertTrue(ok.contains("i875e"));
        rejectsChiral(ok.replace("i875e", "i1001e"));
        rejectsChiral(ok.replace("i875e", "i-1e"));
        rejectsChiral(ok.replace("i875e", "5:0.875"));
        rejectsChiral(ok.replace("msg_typei1e", "msg_typei2e"));
        rejectsChiral(ok.replace("8:msg_typei1e", ""));
        rejectsChiral(ok.replace("64:" + ID, "64:" + ID.toUpperCase()));
        rejectsChiral(ok.replace("64:" + ID, "63:" + ID.substring(1)));
        rejectsChiral(ok.replace("64:" + ID, "64:" + ID.substring(1) + "g"));
        rejectsChiral(ok.replace("0:e", "41:" + WALLET.substring(0, 41) + "e"));
        rejectsChiral(ok.replace("0:e", "42:1x" + WALLET.substring(2) + "e"));
        rejectsChiral(ok.replace("0:e", "42:0x" + "g" + WALLET.substring(3) + "e"));
        rejectsChiral(ok.replace("14:wallet_address0:", ""));
        rejectsChiral(ok.replace("0:e", "i0ee"));
        rejectsChiral(ok + "x");
        rejectsChiral("le");
        assertThrows(IllegalArgumentException.class, () -> new ChiralHello(ID, 1001, ""));
        assertThrows(IllegalArgumentException.class, () -> new ChiralHello("ab", 1, ""));
        assertThrows(IllegalArgumentException.class, () -> new ChiralHello(ID, 1, "0x12"));
    }

    @Test
    void helloNonceAndProofRoundTripWithinBounds() throws Exception {
        byte[] nonce = new byte[32];
        new Random(5).nextBytes(nonce);
        ChiralHello h = new ChiralHello(ID, 500, "").withNonce(nonce);
        byte[] wire = Extension.encodeChiral(h);
        assertTrue(new String(wire, StandardCharsets.ISO_8859_1).contains("5:nonce32:"), "the nonce is on the wire");
        assertEquals(h, Extension.decodeChiral(wire));
        assertEquals(new ChiralHello(ID, 500, ""), new ChiralHello(ID, 500, "", null));
        ChiralProof proof = new ChiralProof(io.chiral.bencode.Bytes.of(new byte[64]));
        byte[] pw = Extension.encodeChiral(proof);
        assertEquals("d8:msg_typei5e3:sig64:", new String(pw, 0, 22, StandardCharsets.ISO_8859_1));
        assertEquals(proof, Extension.decodeChiral(pw));

        String ok = "d14:chiral_peer_id64:" + ID + "8:msg_typei1e5:nonce16:" + "n".repeat(16)
                + "16:reputation_scorei875e14:wallet_address0:e";
        assertEquals(16, ((ChiralHello) Extension.decodeChiral(b(ok))).nonce().length());
        // an unknown key beside them is ignored, as before
        assertInstanceOf(ChiralHello.class, Extension.decodeChiral(b(ok.replace("e14:wallet", "e4:tttti1e14:wallet"))));
        rejectsChiral(ok.replace("5:nonce16:" + "n".repeat(16), "5:nonce15:" + "n".repeat(15)));
        rejectsChiral(ok.replace("5:nonce16:" + "n".repeat(16), "5:nonce65:" + "n".repeat(65)));
        rejectsChiral(ok.replace("5:nonce16:" + "n".repeat(16), "5:noncei7e"));
        rejectsChiral("d8:msg_typei5e3:sig63:" + "s".repeat(63) + "e");
        rejectsChiral("d8:msg_typei5e3:sig65:" + "s".repeat(65) + "e");
        rejectsChiral("d8:msg_typei5ee");
        rejectsChiral("d8:msg_typei5e3:sigi1ee");
        assertEquals(new ChiralUnknown(6), Extension.decodeChiral(b("d8:msg_typei6e3:sig1:xe")));
        assertThrows(IllegalArgumentException.class, () -> new ChiralHello(ID, 1, "").withNonce(new byte[15]));
        assertThrows(IllegalArgumentException.class, () -> new ChiralProof(io.chiral.bencode.Bytes.of(new byte[63])));
    }

    @Test
    void aProofVerifiesOnlyForItsKeyNonceAndTorrent() {
        byte[] seed = new byte[32];
        new Random(9).nextBytes(seed);
        byte[] pk = new byte[32];
        org.bouncycastle.math.ec.rfc8032.Ed25519.generatePublicKey(seed, 0, pk, 0);
        String id = java.util.HexFormat.of().formatHex(pk);
        byte[] ih = new byte[20];
        byte[] nonce = new byte[32];
        byte[] otherNonce = new byte[32];
        otherNonce[0] = 1;
        byte[] m = ChiralAuth.proofMessage(ih, pk, nonce);
        byte[] sig = new byte[64];
        org.bouncycastle.math.ec.rfc8032.Ed25519.sign(seed, 0, m, 0, m.length, sig, 0);
        assertTrue(ChiralAuth.verify(id, ih, nonce, sig));
        assertTrue(!ChiralAuth.verify(id, ih, otherNonce, sig), "a signature over another connection's nonce");
        byte[] otherIh = ih.clone();
        otherIh[3] = 7;
        assertTrue(!ChiralAuth.verify(id, otherIh, nonce, sig), "a signature for another torrent");
        assertTrue(!ChiralAuth.verify(ID, ih, nonce, sig), "a signature by another key");
        byte[] bad = sig.clone();
        bad[10] ^= 1;
        assertTrue(!ChiralAuth.verify(id, ih, nonce, bad));
        assertTrue(!ChiralAuth.verify(id, ih, nonce, new byte[63]));
        assertTrue(!ChiralAuth.verify("zz".repeat(32), ih, nonce, sig));
    }

    @Test
    void fileDescriptionMessagesRoundTrip() throws Exception {
        FileRequest req = new FileRequest(ID, 3);
        byte[] wire = Extension.encodeChiral(req);
        assertEquals("d3:cid32:", new String(wire, 0, 9, StandardCharsets.ISO_8859_1));
        assertEquals(req, Extension.decodeChiral(wire));
        assertEquals(new FileReject(ID, 0), Extension.decodeChiral(Extension.encodeChiral(new FileReject(ID, 0))));
        byte[] data = new byte[100];
        new Random(9).nextBytes(data);
        FileData last = new FileData(ID, 2, 2 * 16_384 + 100, 262_144, data);
        assertEquals(last, Extension.decodeChiral(Extension.encodeChiral(last)));
        // a later version's message is ignored, not an error
        assertEquals(new ChiralUnknown(9), Extension.decodeChiral(b("d8:msg_typei9ee")));

        io.chiral.api.FileMetadata m = new io.chiral.api.FileMetadata(io.chiral.api.FileId.parse(ID), "notes.txt",
                600_000, 262_144, List.of("11".repeat(32), "22".repeat(32), "33".repeat(32)), "44".repeat(32), "text/plain");
        byte[] description = Extension.encodeFileDescription(m);
        assertEquals(m, Extension.decodeFileDescription(description, ID));
        assertThrows(TorrentException.class,
                () -> Extension.decodeFileDescription(Arrays.copyOf(description, description.length - 1), ID));
    }

    @Test
    void fileDescriptionRejections() {
        String cid = "32:" + "x".repeat(32);
        rejectsChiral("d3:cid31:" + "x".repeat(31) + "8:msg_typei2e5:piecei0ee");
        rejectsChiral("d8:msg_typei2e5:piecei0ee");
        rejectsChiral("d3:cid" + cid + "8:msg_typei2e5:piecei-1ee");
        rejectsChiral("d3:cid" + cid + "8:msg_typei2e5:piecei1024ee"); // beyond 16 MiB
        rejectsChiral("d3:cid" + cid + "8:msg_typei2e5:piecei0eex");
        String data = "d3:cid" + cid + "8:msg_typei3e5:piecei0e12:piece_lengthi16384e10:total_sizei4ee";
        assertTrue(assertDoesNotThrowChiral(data + "abcd") instanceof FileData);
        rejectsChiral(data + "abc");
        rejectsChiral(data + "abcde");
        rejectsChiral(data.replace("i16384e", "i16383e") + "abcd");
        rejectsChiral(data.replace("i16384e", "i8192e") + "abcd");
        rejectsChiral(data.replace("i16384e", "i134217728e") + "abcd");
        rejectsChiral(data.replace("10:total_sizei4e", "10:total_sizei16777217e") + "abcd");
        rejectsChiral(data.replace("5:piecei0e", "5:piecei1e") + "abcd");
        // descriptions: hashes in 32-byte units, a 32-byte root, a chunk count that matches the size
        String root = "11:merkle_root32:" + "r".repeat(32);
        rejectsDescription("d10:chunk_sizei262144e6:hashes31:" + "h".repeat(31) + root + "4:sizei10ee");
        rejectsDescription("d10:chunk_sizei262144e6:hashes32:" + "h".repeat(32) + "11:merkle_root3:abc4:sizei10ee");
        rejectsDescription("d10:chunk_sizei262144e6:hashes32:" + "h".repeat(32) + root + "4:sizei300000ee");
        rejectsDescription("d10:chunk_sizei0e6:hashes32:" + "h".repeat(32) + root + "4:sizei10ee");
        rejectsDescription("d10:chunk_sizei262144e6:hashes32:" + "h".repeat(32) + root + "4:sizei-1ee");
        rejectsDescription("li1ee");
    }

    private static ChiralMessage assertDoesNotThrowChiral(String s) {
        return org.junit.jupiter.api.Assertions.assertDoesNotThrow(() -> Extension.decodeChiral(b(s)));
    }

    private static void rejectsDescription(String s) {
        assertThrows(TorrentException.class, () -> Extension.decodeFileDescription(b(s), ID), s);
    }

    // ---- fuzz ----

    /**
     * Seeded mutation fuzz of the three extension decoders: random bytes, truncation, bit flips, bencode-shaped
     * overwrites, spliced payloads. Each call returns a value or throws TorrentException, nothing else; returned
     * metadata data never exceeds one 16 KiB piece and extension maps never exceed their bounds.
     */
    @Test
    void extensionFuzz() throws Exception {
        byte[] info = new byte[40_000];
        new Random(3).nextBytes(info);
        byte[][] seeds = {
            Extension.encodeHandshake(new Handshake(Map.of("ut_metadata", 3, "chiral", 7), "Chiral", 6881, 250, 40_000)),
            Extension.encodeMetadata(new MetadataRequest(1)),
            Extension.encodeMetadata(new MetadataReject(2)),
            Extension.encodeMetadata(new MetadataData(2, 40_000, Arrays.copyOfRange(info, 32_768, 40_000))),
            Extension.encodeMetadata(new MetadataData(0, 40, Arrays.copyOf(info, 40))),
            Extension.encodeChiral(new ChiralHello(ID, 500, WALLET)),
            Extension.encodeChiral(new ChiralHello(ID, 1, "")),
            Extension.encodeChiral(new FileRequest(ID, 2)),
            Extension.encodeChiral(new FileData(ID, 1, 20_000, 1 << 20, Arrays.copyOfRange(info, 0, 20_000 - 16_384)))};
        Random r = new Random(20_251_124L);
        int ok = 0;
        int runs = 200_000;
        long started = System.nanoTime();
        for (int i = 0; i < runs; i++) {
            byte[] d = mutate(seeds[r.nextInt(seeds.length)], seeds, r);
            try {
                switch (r.nextInt(3)) {
                    case 0 -> {
                        Handshake h = Extension.decodeHandshake(d);
                        assertTrue(h.extensions().size() <= Extension.MAX_EXTENSIONS);
                    }
                    case 1 -> {
                        MetadataMessage m = Extension.decodeMetadata(d, r.nextBoolean() ? -1 : 40_000);
                        if (m instanceof MetadataData data) {
                            assertTrue(data.length() <= Extension.METADATA_PIECE && data.length() > 0);
                        }
                    }
                    default -> {
                        ChiralMessage m = Extension.decodeChiral(d);
                        if (m instanceof FileData f) {
                            assertTrue(f.data().length <= Extension.METADATA_PIECE && f.data().length > 0);
                            assertTrue(f.pieceLength() % PeerWire.BLOCK == 0 && f.pieceLength() <= Extension.MAX_PIECE_LENGTH);
                        }
                    }
                }
                ok++;
            } catch (TorrentException expected) {
                // rejected cleanly
            }
        }
        long ms = (System.nanoTime() - started) / 1_000_000;
        System.out.println("Extension fuzz: " + runs + " payloads, " + ok + " accepted, " + ms + " ms");
        assertTrue(ok > 1000 && ok < runs, "accepted " + ok);
    }

    static byte[] mutate(byte[] seed, byte[][] seeds, Random r) {
        byte[] d = seed.clone();
        switch (r.nextInt(6)) {
            case 0 -> {
                d = new byte[r.nextInt(120)];
                r.nextBytes(d);
            }
            case 1 -> d = Arrays.copyOf(d, r.nextInt(d.length + 1));
            case 2 -> {
                for (int n = 1 + r.nextInt(3); n > 0; n--) {
                    d[r.nextInt(Math.min(d.length, 120))] ^= (byte) (1 << r.nextInt(8));
                }
            }
            case 3 -> {
                for (int n = 1 + r.nextInt(3); n > 0; n--) {
                    d[r.nextInt(Math.min(d.length, 120))] = (byte) "0123456789ildex:-".charAt(r.nextInt(17));
                }
            }
            case 4 -> {
                byte[] other = seeds[r.nextInt(seeds.length)];
                int cut = r.nextInt(d.length);
                int from = r.nextInt(other.length);
                byte[] s = Arrays.copyOf(d, cut + other.length - from);
                System.arraycopy(other, from, s, cut, other.length - from);
                d = s;
            }
            default -> d = Arrays.copyOf(d, d.length + 1 + r.nextInt(20));
        }
        return d;
    }

    @Test
    void extensionMapsAreSortedCopies() throws Exception {
        Map<String, Integer> m = new TreeMap<>(Map.of("b", 1, "a", 2));
        Handshake h = new Handshake(m, null, 0, 0, -1);
        m.put("c", 3);
        assertEquals(2, h.extensions().size());
        assertThrows(UnsupportedOperationException.class, () -> h.extensions().put("d", 4));
    }
}
