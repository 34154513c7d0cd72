package io.chiral.dht.internal;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * BEP 44 (storing arbitrary data in the DHT): targets, the exact byte string a mutable item's signature covers,
 * and the size limits.
 */
public final class Bep44 {
    public static final int MAX_VALUE = 1000;
    public static final int MAX_SALT = 64;
    public static final int VALUE_TOO_BIG = 205;
    public static final int INVALID_SIGNATURE = 206;
    public static final int SALT_TOO_BIG = 207;
    public static final int CAS_MISMATCH = 301;
    public static final int SEQ_TOO_LOW = 302;

    private Bep44() {
    }

    /** Target of an immutable item: SHA-1 of its bencoded value. */
    public static NodeId immutableTarget(byte[] bencodedValue) {
        return NodeId.of(sha1(bencodedValue));
    }

    /** Target of a mutable item: SHA-1 of the public key followed by the salt. */
    public static NodeId mutableTarget(byte[] publicKey, byte[] salt) {
        byte[] in = new byte[publicKey.length + (salt == null ? 0 : salt.length)];
        System.arraycopy(publicKey, 0, in, 0, publicKey.length);
        if (salt != null) {
            System.arraycopy(salt, 0, in, publicKey.length, salt.length);
        }
        return NodeId.of(sha1(in));
    }

    /**
     * What a mutable item's signature covers: {@code 4:salt<len>:<salt>} when there is a salt, then
     * {@code 3:seqi<seq>e1:v} and the bencoded value, byte for byte.
     */
    public static byte[] signedBytes(byte[] salt, long seq, byte[] bencodedValue) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(bencodedValue.length + 96);
        if (salt != null && salt.length > 0) {
            out.writeBytes(("4:salt" + salt.length + ":").getBytes(StandardCharsets.US_ASCII));
            out.writeBytes(salt);
        }
        out.writeBytes(("3:seqi" + seq + "e1:v").getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(bencodedValue);
        return out.toByteArray();
    }

    public static byte[] sign(byte[] seed, byte[] salt, long seq, byte[] bencodedValue) {
        return Ed25519Keys.sign(seed, signedBytes(salt, seq, bencodedValue));
    }

    public static boolean verify(byte[] publicKey, byte[] salt, long seq, byte[] bencodedValue, byte[] signature) {
        return Ed25519Keys.verify(publicKey, signedBytes(salt, seq, bencodedValue), signature);
    }

    static byte[] sha1(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-1").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-1 is required of every JDK", e);
        }
    }
}
