package io.chiral.dht.internal;

import org.bouncycastle.math.ec.rfc8032.Ed25519;

/** Ed25519 (RFC 8032) through Bouncy Castle: key derivation, signing and verification on raw byte arrays. */
public final class Ed25519Keys {
    public static final int PUBLIC_KEY = Ed25519.PUBLIC_KEY_SIZE;
    public static final int SEED = Ed25519.SECRET_KEY_SIZE;
    public static final int SIGNATURE = Ed25519.SIGNATURE_SIZE;

    private Ed25519Keys() {
    }

    public static byte[] publicKey(byte[] seed) {
        check(seed, SEED, "private key seed");
        byte[] pk = new byte[PUBLIC_KEY];
        Ed25519.generatePublicKey(seed, 0, pk, 0);
        return pk;
    }

    public static byte[] sign(byte[] seed, byte[] message) {
        check(seed, SEED, "private key seed");
        byte[] sig = new byte[SIGNATURE];
        Ed25519.sign(seed, 0, message, 0, message.length, sig, 0);
        return sig;
    }

    /** False for a bad signature, a malformed key or signature: never throws. */
    public static boolean verify(byte[] publicKey, byte[] message, byte[] signature) {
        if (publicKey == null || publicKey.length != PUBLIC_KEY || signature == null || signature.length != SIGNATURE) {
            return false;
        }
        try {
            return Ed25519.verify(signature, 0, publicKey, 0, message, 0, message.length);
        } catch (RuntimeException e) {
            return false;
        }
    }

    private static void check(byte[] b, int len, String what) {
        if (b == null || b.length != len) {
            throw new IllegalArgumentException(what + " must be " + len + " bytes");
        }
    }
}
