package io.chiral.dht.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

import org.junit.jupiter.api.Test;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.Bytes;

/** BEP 44 and BEP 42 test vectors from the BEPs, write tokens, and signed Chiral records. */
public class SecurityVectorsTest {
    private static final HexFormat HEX = HexFormat.of();
    private static final byte[] VALUE = "12:Hello World!".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] BEP44_PUBLIC = HEX.parseHex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548");

    @Test
    void bep44MutableWithoutSalt() {
        assertEquals("3:seqi1e1:v12:Hello World!", new String(Bep44.signedBytes(null, 1, VALUE), StandardCharsets.US_ASCII));
        byte[] sig = HEX.parseHex("305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff"
                + "1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01");
        assertTrue(Bep44.verify(BEP44_PUBLIC, null, 1, VALUE, sig));
        assertEquals("4a533d47ec9c7d95b1ad75f576cffc641853b750", Bep44.mutableTarget(BEP44_PUBLIC, null).hex());
        assertFalse(Bep44.verify(BEP44_PUBLIC, null, 2, VALUE, sig), "another seq must not verify");
        byte[] bad = sig.clone();
        bad[10] ^= 1;
        assertFalse(Bep44.verify(BEP44_PUBLIC, null, 1, VALUE, bad), "a flipped bit must not verify");
    }

    @Test
    void bep44MutableWithSalt() {
        byte[] salt = "foobar".getBytes(StandardCharsets.US_ASCII);
        assertEquals("4:salt6:foobar3:seqi1e1:v12:Hello World!",
                new String(Bep44.signedBytes(salt, 1, VALUE), StandardCharsets.US_ASCII));
        byte[] sig = HEX.parseHex("6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d"
                + "df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08");
        assertTrue(Bep44.verify(BEP44_PUBLIC, salt, 1, VALUE, sig));
        assertEquals("411eba73b6f087ca51a3795d9c8c938d365e32c1", Bep44.mutableTarget(BEP44_PUBLIC, salt).hex());
    }

    @Test
    void bep44Immutable() {
        assertEquals("e5f96f6f38320f0f33959cb4d3d656452117aadb", Bep44.immutableTarget(VALUE).hex());
    }

    @Test
    void ed25519SignsAndVerifiesWithSeeds() {
        byte[] seed = new byte[32];
        new SecureRandom().nextBytes(seed);
        byte[] pk = Ed25519Keys.publicKey(seed);
        byte[] sig = Bep44.sign(seed, null, 7, VALUE);
        assertTrue(Bep44.verify(pk, null, 7, VALUE, sig));
        assertFalse(Ed25519Keys.verify(new byte[31], VALUE, sig), "malformed key is false, not an exception");
        assertFalse(Ed25519Keys.verify(pk, VALUE, new byte[64]));
    }

    @Test
    void bep42Vectors() throws Exception {
        String[][] vectors = {
                {"124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"},
                {"21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"},
                {"65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"},
                {"84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"},
                {"43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"}};
        for (String[] v : vectors) {
            InetAddress ip = InetAddress.getByName(v[0]);
            NodeId id = NodeId.parseHex(v[1]);
            assertTrue(Bep42.valid(id, ip), v[0]);
            byte[] wrong = id.bytes();
            wrong[0] ^= (byte) 0x80;
            assertFalse(Bep42.valid(NodeId.of(wrong), ip), "tampered prefix for " + v[0]);
            NodeId generated = Bep42.generate(ip, new SecureRandom());
            assertTrue(Bep42.valid(generated, ip), "generated id for " + v[0]);
        }
        assertTrue(Bep42.valid(NodeId.random(new SecureRandom()), InetAddress.getByName("127.0.0.1")),
                "local addresses are exempt");
        assertTrue(Bep42.valid(NodeId.random(new SecureRandom()), InetAddress.getByName("192.168.1.9")));
    }

    @Test
    void tokensAreBoundToAddressAndExpire() throws Exception {
        long t0 = 1_000_000L;
        Tokens tokens = new Tokens(new SecureRandom(), t0);
        InetAddress a = InetAddress.getByName("10.1.2.3");
        InetAddress b = InetAddress.getByName("10.1.2.4");
        byte[] tok = tokens.issue(a, t0);
        assertEquals(Tokens.LENGTH, tok.length);
        assertTrue(tokens.valid(tok, a, t0 + 1000));
        assertFalse(tokens.valid(tok, b, t0 + 1000), "a token is only good for the address it was given to");
        assertTrue(tokens.valid(tok, a, t0 + Tokens.ROTATE_MILLIS + 1), "still good after one rotation");
        assertFalse(tokens.valid(tok, a, t0 + 2 * Tokens.ROTATE_MILLIS + 1), "expired after two rotations");
        assertFalse(tokens.valid(new byte[3], a, t0));
        assertFalse(tokens.valid(null, a, t0));
    }

    @Test
    void chiralRecordsMustBeSigned() throws Exception {
        byte[] seed = new byte[32];
        new SecureRandom().nextBytes(seed);
        byte[] pk = Ed25519Keys.publicKey(seed);
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("name", "report.pdf");
        v.put("size", 12345L);
        ChiralRecord r = ChiralRecord.create("abc", null, 42, 3600, v, pk, m -> Ed25519Keys.sign(seed, m));
        ChiralRecord back = ChiralRecord.parse(Bencode.decode(r.encode(), Bencode.Limits.NETWORK));
        assertEquals("abc", back.key());
        assertEquals(42, back.seq());
        assertArrayEquals(pk, back.publicKey());
        assertEquals(ChiralRecord.targetOf("abc"), back.target());

        // tampered value
        @SuppressWarnings("unchecked")
        SortedMap<Bytes, Object> wire = new TreeMap<>((SortedMap<Bytes, Object>) Bencode.decode(r.encode(), Bencode.Limits.NETWORK));
        @SuppressWarnings("unchecked")
        SortedMap<Bytes, Object> value = new TreeMap<>((SortedMap<Bytes, Object>) wire.get(Bytes.of("v")));
        value.put(Bytes.of("size"), 99999L);
        wire.put(Bytes.of("v"), value);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ChiralRecord.parse(wire));
        assertTrue(e.getMessage().contains("signature"), e.getMessage());
        // unsigned
        @SuppressWarnings("unchecked")
        SortedMap<Bytes, Object> unsigned = new TreeMap<>((SortedMap<Bytes, Object>) Bencode.decode(r.encode(), Bencode.Limits.NETWORK));
        unsigned.remove(Bytes.of("sig"));
        assertThrows(IllegalArgumentException.class, () -> ChiralRecord.parse(unsigned));
        // signed by someone else but claiming this key
        byte[] other = new byte[32];
        other[0] = 1;
        ChiralRecord forged = ChiralRecord.create("abc", null, 43, 3600, v, pk, m -> Ed25519Keys.sign(other, m));
        assertThrows(IllegalArgumentException.class,
                () -> ChiralRecord.parse(Bencode.decode(forged.encode(), Bencode.Limits.NETWORK)));
        // oversized
        Map<String, Object> big = Map.of("blob", new byte[ChiralRecord.MAX_ENCODED]);
        assertThrows(IllegalArgumentException.class,
                () -> ChiralRecord.create("abc", null, 1, 60, big, pk, m -> Ed25519Keys.sign(seed, m)));
        assertThrows(IllegalArgumentException.class, () -> ChiralRecord.parse("not a dict"));
    }
}
