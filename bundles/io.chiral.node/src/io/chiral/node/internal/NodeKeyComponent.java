package io.chiral.node.internal;

import java.io.IOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.Signature;
import java.util.HexFormat;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;

import io.chiral.api.NodeKey;

/** The node's Ed25519 identity as a service: loaded from (or created in) {@code <dataDir>/config/node.key}. */
@Component(configurationPid = "io.chiral.node.control", configurationPolicy = ConfigurationPolicy.REQUIRE)
public class NodeKeyComponent implements NodeKey {
    private final NodeIdentity identity;
    private final byte[] publicKey;

    @Activate
    public NodeKeyComponent(ControlServer.Config config) throws IOException {
        if (config.dataDir() == null || config.dataDir().isBlank()) {
            throw new IOException("io.chiral.node.control: dataDir is not configured");
        }
        Path configDir = Path.of(config.dataDir()).toAbsolutePath().normalize().resolve("config");
        java.nio.file.Files.createDirectories(configDir);
        identity = NodeIdentity.loadOrCreate(configDir);
        publicKey = HexFormat.of().parseHex(identity.nodeId());
    }

    @Override
    public String nodeId() {
        return identity.nodeId();
    }

    @Override
    public byte[] publicKey() {
        return publicKey.clone();
    }

    @Override
    public byte[] sign(byte[] message) {
        try {
            Signature s = Signature.getInstance("Ed25519");
            s.initSign(identity.keyPair().getPrivate());
            s.update(message);
            return s.sign();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("Ed25519 signing failed", e);
        }
    }
}
