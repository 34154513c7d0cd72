package io.chiral.protocol.bittorrent.internal;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

import org.bouncycastle.math.ec.rfc8032.Ed25519;

/**
 * The proof of a {@code chiral} hello's identity (msg_type 5, see docs/chiral-extension.md): the prover signs, with
 * the Ed25519 key whose public half is its node id, {@code "chiral-peer-proof-v1"}, the torrent's 20-byte info-hash,
 * its own 32-byte public key and the nonce the verifier put in its hello on this connection. A fresh random nonce
 * per connection makes a signature from another connection (or another torrent) worthless here.
 */
final class ChiralAuth {
    private static final byte[] DOMAIN = "chiral-peer-proof-v1".getBytes(StandardCharsets.US_ASCII);
    static final int PUBLIC_KEY = Ed25519.PUBLIC_KEY_SIZE;

    private ChiralAuth() {
    }

    /** The signed message: domain, info-hash, prover key, then the verifier's nonce (all fixed-length but the nonce). */
    static byte[] proofMessage(byte[] infoHash, byte[] proverKey, byte[] verifierNonce) {
        byte[] m = new byte[DOMAIN.length + infoHash.length + proverKey.length + verifierNonce.length];
        int at = 0;
        System.arraycopy(DOMAIN, 0, m, at, DOMAIN.length);
        at += DOMAIN.length;
        System.arraycopy(infoHash, 0, m, at, infoHash.length);
        at += infoHash.length;
        System.arraycopy(proverKey, 0, m, at, proverKey.length);
        at += proverKey.length;
        System.arraycopy(verifierNonce, 0, m, at, verifierNonce.length);
        return m;
    }

    /**
     * True when {@code signature} proves that the holder of node id {@code chiralPeerId} (64 hex digits, the raw
     * public key) answered {@code verifierNonce} for {@code infoHash}. Never throws.
     */
    static boolean verify(String chiralPeerId, byte[] infoHash, byte[] verifierNonce, byte[] signature) {
        if (chiralPeerId == null || chiralPeerId.length() != 2 * PUBLIC_KEY || signature == null
                || signature.length != Ed25519.SIGNATURE_SIZE || infoHash == null || verifierNonce == null) {
            return false;
        }
        try {
            byte[] pk = HexFormat.of().parseHex(chiralPeerId);
            byte[] m = proofMessage(infoHash, pk, verifierNonce);
            return Ed25519.verify(signature, 0, pk, 0, m, 0, m.length);
        } catch (RuntimeException e) {
            return false;
        }
    }
}
