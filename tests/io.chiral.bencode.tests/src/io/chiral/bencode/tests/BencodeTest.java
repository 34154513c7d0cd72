package io.chiral.bencode.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SortedMap;

import org.junit.jupiter.api.Test;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.BencodeException;
import io.chiral.bencode.Bytes;

class BencodeTest {
    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    static Object decode(String s) throws BencodeException {
        return Bencode.decode(b(s), Bencode.Limits.NETWORK);
    }

    @Test
    void decodesTheFourTypes() throws Exception {
        assertEquals(42L, decode("i42e"));
        assertEquals(-7L, decode("i-7e"));
        assertEquals(0L, decode("i0e"));
        assertEquals(Long.MAX_VALUE, decode("i9223372036854775807e"));
        assertEquals(Bytes.of("spam"), decode("4:spam"));
        assertEquals(Bytes.of(""), decode("0:"));
        assertEquals(List.of(Bytes.of("a"), 1L), decode("l1:ai1ee"));
        @SuppressWarnings("unchecked")
        SortedMap<Bytes, Object> d = (SortedMap<Bytes, Object>) decode("d1:ai1e1:bl0:ee");
        assertEquals(1L, d.get(Bytes.of("a")));
        assertEquals(List.of(Bytes.of("")), d.get(Bytes.of("b")));
    }

    @Test
    void krpcPingFromBep5RoundTrips() throws Exception {
        String ping = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        Object v = decode(ping);
        assertArrayEquals(b(ping), Bencode.encode(v));
        assertEquals("d1:ai1e1:bi2ee", new String(Bencode.encode(Map.of("b", 2L, "a", 1L)), StandardCharsets.US_ASCII));
    }

    @Test
    void rejectsNonCanonicalAndMalformedInput() {
        for (String bad : new String[] {"", "i-0e", "i03e", "ie", "i-e", "i12", "i9223372036854775808e", "03:abc",
                "5:abc", "4abc", "l", "li1e", "d", "d1:ai1e", "di1ei2ee", "d1:bi1e1:ai2ee", "d1:ai1e1:ai2ee",
                "i1ei2e", "x", "1:", "-1:a"}) {
            assertThrows(BencodeException.class, () -> decode(bad), "accepted: " + bad);
        }
    }

    @Test
    void limitsHold() {
        String deep = "l".repeat(17) + "e".repeat(17);
        BencodeException e = assertThrows(BencodeException.class, () -> decode(deep));
        assertTrue(e.getMessage().contains("nesting"), e.getMessage());
        String many = "l" + "i1e".repeat(5000) + "e";
        assertThrows(BencodeException.class, () -> decode(many));
        assertThrows(BencodeException.class, () -> Bencode.decode(new byte[70_000], Bencode.Limits.NETWORK));
        // a huge announced length never allocates: it is checked against the input first
        assertThrows(BencodeException.class, () -> decode("2147483647:x"));
        assertThrows(BencodeException.class, () -> decode("99999999999999999999:x"));
    }

    /**
     * Bounded mutation fuzz (fixed seed, so a failure reproduces): mutated valid messages must either decode or be
     * rejected with a BencodeException, nothing else; whatever decodes must re-encode to the very same bytes.
     */
    @Test
    void mutatedInputIsRejectedCleanlyOrRoundTripsExactly() throws Exception {
        String[] seeds = {
            "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
            "d1:rd2:id20:mnopqrstuvwxyz1234565:nodes52:" + "x".repeat(52) + "e1:t2:aa1:y1:re",
            "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
            "d4:infod6:lengthi1024e4:name3:foo12:piece lengthi262144e6:pieces20:" + "p".repeat(20) + "ee",
            "li-12345ei0el0:d0:0:eee"};
        Random r = new Random(20261123);
        int accepted = 0;
        for (int iter = 0; iter < 200_000; iter++) {
            byte[] in = b(seeds[r.nextInt(seeds.length)]);
            int mutations = 1 + r.nextInt(4);
            for (int m = 0; m < mutations; m++) {
                in = mutate(in, r);
            }
            Object v;
            try {
                v = Bencode.decode(in, Bencode.Limits.NETWORK);
            } catch (BencodeException expected) {
                continue;
            }
            accepted++;
            assertArrayEquals(in, Bencode.encode(v), "accepted input is not canonical: " + new String(in, StandardCharsets.ISO_8859_1));
        }
        assertTrue(accepted > 1000, "the fuzz should also produce valid inputs, got " + accepted);
    }

    private static byte[] mutate(byte[] in, Random r) {
        byte[] alphabet = b("0123456789ildex:-");
        int op = r.nextInt(4);
        if (in.length == 0) {
            return new byte[] {alphabet[r.nextInt(alphabet.length)]};
        }
        int at = r.nextInt(in.length);
        switch (op) {
            case 0: { // replace a byte
                byte[] out = in.clone();
                out[at] = r.nextBoolean() ? alphabet[r.nextInt(alphabet.length)] : (byte) r.nextInt(256);
                return out;
            }
            case 1: { // delete a byte
                byte[] out = new byte[in.length - 1];
                System.arraycopy(in, 0, out, 0, at);
                System.arraycopy(in, at + 1, out, at, in.length - at - 1);
                return out;
            }
            case 2: { // insert a byte
                byte[] out = new byte[in.length + 1];
                System.arraycopy(in, 0, out, 0, at);
                out[at] = alphabet[r.nextInt(alphabet.length)];
                System.arraycopy(in, at, out, at + 1, in.length - at);
                return out;
            }
            default: { // truncate
                byte[] out = new byte[at];
                System.arraycopy(in, 0, out, 0, at);
                return out;
            }
        }
    }
}
