package io.chiral.core.internal;

import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;

/**
 * Binary Merkle tree over chunk hashes. Leaves are the chunk SHA-256 values; an interior node is
 * SHA-256(0x01 || left || right) (the prefix separates interior nodes from leaves, as in RFC 6962); an odd node at
 * the end of a level is carried up unchanged. The root of one chunk is its hash; the root of an empty file is
 * SHA-256 of the empty string.
 */
public final class Merkle {
    private Merkle() {
    }

    public static byte[] root(List<byte[]> leaves) {
        MessageDigest md = Hex.sha256();
        if (leaves.isEmpty()) {
            return md.digest();
        }
        List<byte[]> level = leaves;
        while (level.size() > 1) {
            List<byte[]> next = new ArrayList<>((level.size() + 1) / 2);
            for (int i = 0; i < level.size(); i += 2) {
                if (i + 1 == level.size()) {
                    next.add(level.get(i));
                } else {
                    md.update((byte) 0x01);
                    md.update(level.get(i));
                    md.update(level.get(i + 1));
                    next.add(md.digest());
                }
            }
            level = next;
        }
        return level.get(0);
    }

    public static String rootHex(List<String> leafHex) {
        List<byte[]> leaves = new ArrayList<>(leafHex.size());
        for (String h : leafHex) {
            leaves.add(Hex.HEX.parseHex(h));
        }
        return Hex.hex(root(leaves));
    }

    /**
     * Proof for leaf {@code index}: the sibling hashes from the leaf up, each prefixed by 'L' or 'R' telling on
     * which side the sibling stands. Levels where the node is carried up contribute nothing.
     */
    public static List<String> proof(List<byte[]> leaves, int index) {
        List<String> proof = new ArrayList<>();
        MessageDigest md = Hex.sha256();
        List<byte[]> level = leaves;
        int idx = index;
        while (level.size() > 1) {
            int sibling = idx ^ 1;
            if (sibling < level.size()) {
                proof.add((sibling < idx ? "L" : "R") + Hex.hex(level.get(sibling)));
            }
            List<byte[]> next = new ArrayList<>((level.size() + 1) / 2);
            for (int i = 0; i < level.size(); i += 2) {
                if (i + 1 == level.size()) {
                    next.add(level.get(i));
                } else {
                    md.update((byte) 0x01);
                    md.update(level.get(i));
                    md.update(level.get(i + 1));
                    next.add(md.digest());
                }
            }
            level = next;
            idx >>= 1;
        }
        return proof;
    }

    /** Checks a {@link #proof} for {@code leaf} against {@code root}. */
    public static boolean verify(byte[] leaf, List<String> proof, byte[] root) {
        MessageDigest md = Hex.sha256();
        byte[] node = leaf;
        for (String step : proof) {
            if (step.length() != 65) {
                return false;
            }
            byte[] sib = Hex.HEX.parseHex(step, 1, 65);
            md.update((byte) 0x01);
            if (step.charAt(0) == 'L') {
                md.update(sib);
                md.update(node);
            } else if (step.charAt(0) == 'R') {
                md.update(node);
                md.update(sib);
            } else {
                return false;
            }
            node = md.digest();
        }
        return MessageDigest.isEqual(node, root);
    }
}
