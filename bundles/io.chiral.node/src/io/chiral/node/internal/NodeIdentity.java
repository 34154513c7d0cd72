package io.chiral.node.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.interfaces.EdECPrivateKey;
import java.security.spec.NamedParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * The node's Ed25519 key pair, kept in {@code <dataDir>/config/node.key} (PKCS#8 DER, mode 600, created once).
 * The node id is the raw 32-byte public key in hex. The public key is not stored: it is derived again from the
 * private key's seed on every start.
 */
final class NodeIdentity {
    static final String FILE = "node.key";
    private static final int MAX_KEY_FILE = 1024;

    private final KeyPair keyPair;
    private final String nodeId;

    private NodeIdentity(KeyPair keyPair) {
        this.keyPair = keyPair;
        byte[] x509 = keyPair.getPublic().getEncoded();
        this.nodeId = HexFormat.of().formatHex(Arrays.copyOfRange(x509, x509.length - 32, x509.length));
    }

    /** Loads the key in {@code configDir}, or creates it when there is none. */
    static NodeIdentity loadOrCreate(Path configDir) throws IOException {
        Path file = configDir.resolve(FILE);
        try {
            if (Files.exists(file)) {
                if (Files.size(file) > MAX_KEY_FILE) {
                    throw new IOException(file + " is not an Ed25519 key (too large)");
                }
                return new NodeIdentity(load(Files.readAllBytes(file)));
            }
            KeyPair kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
            ControlFiles.writeAtomically(file, kp.getPrivate().getEncoded());
            return new NodeIdentity(kp);
        } catch (GeneralSecurityException | RuntimeException e) {
            throw new IOException(file + " is not a usable Ed25519 key (" + e.getMessage() + "); move it away to get a new node id", e);
        }
    }

    private static KeyPair load(byte[] pkcs8) throws GeneralSecurityException {
        PrivateKey priv = KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
        if (!(priv instanceof EdECPrivateKey ed)) {
            throw new GeneralSecurityException("not an EdDSA private key");
        }
        byte[] seed = ed.getBytes().orElseThrow(() -> new GeneralSecurityException("private key has no seed"));
        // Ed25519 key generation reads exactly the 32-byte seed from the random source: feeding it the stored seed
        // yields the stored key together with its public key.
        KeyPairGenerator gen = KeyPairGenerator.getInstance("Ed25519");
        gen.initialize(NamedParameterSpec.ED25519, new SeedRandom(seed));
        KeyPair derived = gen.generateKeyPair();
        byte[] probe = "chiral node identity".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        Signature signer = Signature.getInstance("Ed25519");
        signer.initSign(priv);
        signer.update(probe);
        byte[] sig = signer.sign();
        Signature verifier = Signature.getInstance("Ed25519");
        verifier.initVerify(derived.getPublic());
        verifier.update(probe);
        if (!verifier.verify(sig)) {
            throw new GeneralSecurityException("cannot derive the public key");
        }
        return new KeyPair(derived.getPublic(), priv);
    }

    /** 64 hex characters: the raw Ed25519 public key. */
    String nodeId() {
        return nodeId;
    }

    KeyPair keyPair() {
        return keyPair;
    }

    /** A random source that returns a fixed seed; used once to re-derive a key pair. */
    private static final class SeedRandom extends SecureRandom {
        private static final long serialVersionUID = 1L;
        private final byte[] seed;

        SeedRandom(byte[] seed) {
            this.seed = seed.clone();
        }

        @Override
        public void nextBytes(byte[] bytes) {
            if (bytes.length != seed.length) {
                throw new IllegalStateException("unexpected request for " + bytes.length + " random bytes");
            }
            System.arraycopy(seed, 0, bytes, 0, seed.length);
        }
    }
}
