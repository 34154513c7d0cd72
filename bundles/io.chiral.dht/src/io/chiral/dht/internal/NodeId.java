package io.chiral.dht.internal;

import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HexFormat;

/** A 160-bit Kademlia id (node id, info-hash, or SHA-1 of a key), compared by XOR distance. */
public final class NodeId implements Comparable<NodeId> {
    public static final int LENGTH = 20;
    public static final int BITS = LENGTH * 8;
    private final byte[] id;

    private NodeId(byte[] id) {
        this.id = id;
    }

    public static NodeId of(byte[] bytes) {
        if (bytes.length != LENGTH) {
            throw new IllegalArgumentException("a node id is 20 bytes, got " + bytes.length);
        }
        return new NodeId(bytes.clone());
    }

    public static NodeId parseHex(String hex) {
        return of(HexFormat.of().parseHex(hex));
    }

    public static NodeId random(SecureRandom random) {
        byte[] b = new byte[LENGTH];
        random.nextBytes(b);
        return new NodeId(b);
    }

    public byte[] bytes() {
        return id.clone();
    }

    /** XOR distance to {@code other}, as 20 bytes (compare with {@link #closer}). */
    public byte[] distance(NodeId other) {
        byte[] d = new byte[LENGTH];
        for (int i = 0; i < LENGTH; i++) {
            d[i] = (byte) (id[i] ^ other.id[i]);
        }
        return d;
    }

    /** Negative when {@code a} is closer to this id than {@code b}, zero when equally close. */
    public int closer(NodeId a, NodeId b) {
        for (int i = 0; i < LENGTH; i++) {
            int da = (id[i] ^ a.id[i]) & 0xff;
            int db = (id[i] ^ b.id[i]) & 0xff;
            if (da != db) {
                return Integer.compare(da, db);
            }
        }
        return 0;
    }

    /**
     * Length of the common bit prefix with {@code other} (0..160). A node whose prefix with ours is {@code p} belongs
     * in bucket {@code p}; 160 means the same id.
     */
    public int commonPrefix(NodeId other) {
        for (int i = 0; i < LENGTH; i++) {
            int x = (id[i] ^ other.id[i]) & 0xff;
            if (x != 0) {
                return i * 8 + Integer.numberOfLeadingZeros(x) - 24;
            }
        }
        return BITS;
    }

    /** An id sharing exactly {@code prefix} bits with this one and random after (for bucket refresh). */
    public NodeId randomInBucket(int prefix, SecureRandom random) {
        if (prefix < 0 || prefix >= BITS) {
            throw new IllegalArgumentException("bucket " + prefix + " out of range");
        }
        byte[] b = new byte[LENGTH];
        random.nextBytes(b);
        for (int bit = 0; bit <= prefix; bit++) {
            int mask = 0x80 >>> (bit % 8);
            boolean mine = (id[bit / 8] & mask) != 0;
            boolean set = bit < prefix ? mine : !mine; // the bit after the prefix differs
            b[bit / 8] = (byte) (set ? (b[bit / 8] | mask) : (b[bit / 8] & ~mask));
        }
        return new NodeId(b);
    }

    public String hex() {
        return HexFormat.of().formatHex(id);
    }

    @Override
    public int compareTo(NodeId o) {
        return Arrays.compareUnsigned(id, o.id);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NodeId n && Arrays.equals(id, n.id);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(id);
    }

    @Override
    public String toString() {
        return hex();
    }
}
