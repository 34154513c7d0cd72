package io.chiral.core.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

class MerkleTest {
    private static byte[] sha(byte[]... parts) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        for (byte[] p : parts) {
            md.update(p);
        }
        return md.digest();
    }

    private static List<byte[]> leaves(int n) throws Exception {
        List<byte[]> l = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            l.add(sha(("chunk-" + i).getBytes(StandardCharsets.UTF_8)));
        }
        return l;
    }

    @Test
    void emptyTreeIsHashOfNothing() throws Exception {
        assertArrayEquals(sha(), Merkle.root(List.of()));
    }

    @Test
    void oneLeafIsItsOwnRoot() throws Exception {
        List<byte[]> l = leaves(1);
        assertArrayEquals(l.get(0), Merkle.root(l));
    }

    @Test
    void interiorNodesArePrefixedAndOddNodesCarriedUp() throws Exception {
        List<byte[]> l = leaves(3);
        byte[] ab = sha(new byte[] {1}, l.get(0), l.get(1));
        byte[] expected = sha(new byte[] {1}, ab, l.get(2));
        assertArrayEquals(expected, Merkle.root(l));
        // without the prefix the root would differ: leaves and interior nodes cannot be confused
        byte[] unprefixed = sha(sha(l.get(0), l.get(1)), l.get(2));
        assertFalse(MessageDigest.isEqual(unprefixed, Merkle.root(l)));
    }

    @Test
    void proofsVerifyForEveryLeafAndFailWhenTampered() throws Exception {
        for (int n : new int[] {1, 2, 3, 5, 8, 13, 64, 100}) {
            List<byte[]> l = leaves(n);
            byte[] root = Merkle.root(l);
            for (int i = 0; i < n; i++) {
                List<String> proof = Merkle.proof(l, i);
                assertTrue(Merkle.verify(l.get(i), proof, root), "leaf " + i + " of " + n);
                byte[] wrong = l.get(i).clone();
                wrong[0] ^= 1;
                assertFalse(Merkle.verify(wrong, proof, root), "tampered leaf " + i + " of " + n);
                if (!proof.isEmpty()) {
                    List<String> bad = new ArrayList<>(proof);
                    String s = bad.get(0);
                    bad.set(0, (s.charAt(0) == 'L' ? "R" : "L") + s.substring(1));
                    assertFalse(Merkle.verify(l.get(i), bad, root), "swapped side " + i + " of " + n);
                }
            }
        }
    }

    @Test
    void rootHexMatchesRoot() throws Exception {
        List<byte[]> l = leaves(7);
        List<String> hex = new ArrayList<>();
        l.forEach(b -> hex.add(Hex.hex(b)));
        assertEquals(Hex.hex(Merkle.root(l)), Merkle.rootHex(hex));
    }
}
