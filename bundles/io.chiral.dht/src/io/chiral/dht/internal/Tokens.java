package io.chiral.dht.internal;

import java.net.InetAddress;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;

/**
 * Write tokens of {@code get_peers} / {@code get} answers: the first 8 bytes of SHA-1(secret ‖ requester IP).
 * The secret rotates every {@link #ROTATE_MILLIS}; tokens of the current and the previous secret are accepted, so a
 * token lives 5 to 10 minutes and only for the address it was handed to.
 */
final class Tokens {
    static final long ROTATE_MILLIS = 5 * 60_000L;
    static final int LENGTH = 8;

    private final SecureRandom random;
    private byte[] current = new byte[16];
    private byte[] previous = new byte[16];
    private long rotatedAt;

    Tokens(SecureRandom random, long now) {
        this.random = random;
        random.nextBytes(current);
        random.nextBytes(previous);
        rotatedAt = now;
    }

    byte[] issue(InetAddress ip, long now) {
        rotate(now);
        return token(current, ip);
    }

    boolean valid(byte[] token, InetAddress ip, long now) {
        rotate(now);
        return token != null && token.length == LENGTH
                && (MessageDigest.isEqual(token, token(current, ip)) || MessageDigest.isEqual(token, token(previous, ip)));
    }

    private void rotate(long now) {
        while (now - rotatedAt >= ROTATE_MILLIS) {
            previous = current;
            current = new byte[16];
            random.nextBytes(current);
            rotatedAt = now - rotatedAt >= 2 * ROTATE_MILLIS ? now : rotatedAt + ROTATE_MILLIS;
        }
    }

    private static byte[] token(byte[] secret, InetAddress ip) {
        byte[] a = ip.getAddress();
        byte[] in = Arrays.copyOf(secret, secret.length + a.length);
        System.arraycopy(a, 0, in, secret.length, a.length);
        return Arrays.copyOf(Bep44.sha1(in), LENGTH);
    }
}
