package io.chiral.api;

/**
 * The node's Ed25519 identity. Records the node publishes (DHT provider records, file metadata) are signed with
 * it; peers check them against {@link #publicKey()}. The private key never leaves the service.
 */
public interface NodeKey {
    /** The node id: the raw 32-byte Ed25519 public key as 64 lowercase hex characters. */
    String nodeId();

    /** The raw 32-byte Ed25519 public key. */
    byte[] publicKey();

    /** An Ed25519 signature (64 bytes) over {@code message}. */
    byte[] sign(byte[] message);
}
