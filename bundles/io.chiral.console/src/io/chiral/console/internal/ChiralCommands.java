package io.chiral.console.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.interfaces.EdECPrivateKey;
import java.security.spec.NamedParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.StringJoiner;
import java.util.logging.Level;
import java.util.logging.Logger;

import org.apache.felix.service.command.Descriptor;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

import io.chiral.api.ContentProtocol;
import io.chiral.api.ContentStore;
import io.chiral.api.DownloadRequest;
import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;
import io.chiral.api.ProtocolManager;
import io.chiral.api.TransferHandle;
import io.chiral.api.TransferProgress;

/**
 * Gogo commands {@code chiral:*} for the node's console ({@code chiral daemon --console}). They work on the
 * services directly, not through the control channel. Every command returns text; errors come back as one line
 * {@code chiral: <message>}.
 */
@Component(service = Object.class, property = {
        "osgi.command.scope=chiral",
        "osgi.command.function=help",
        "osgi.command.function=id",
        "osgi.command.function=add",
        "osgi.command.function=get",
        "osgi.command.function=ls",
        "osgi.command.function=rm",
        "osgi.command.function=protocols",
        "osgi.command.function=transfers"})
public class ChiralCommands {
    private static final Logger LOG = Logger.getLogger(ChiralCommands.class.getName());
    private static final double MIB = 1024.0 * 1024.0;
    private static final int MAX_KEY_FILE = 1024;

    @Reference
    private ProtocolManager protocols;
    @Reference
    private ContentStore store;

    /** A command body that may fail. */
    private interface Action {
        String run() throws Exception;
    }

    private static String run(String what, Action action) {
        try {
            return action.run();
        } catch (IllegalArgumentException e) {
            return "chiral: " + message(e);
        } catch (NoSuchFileException e) {
            return "chiral: no such file: " + e.getFile();
        } catch (Exception e) {
            LOG.log(Level.FINE, what + " failed", e);
            return "chiral: " + what + " failed: " + message(e);
        }
    }

    private static String message(Throwable e) {
        String m = e.getMessage();
        if (m == null || m.isBlank()) {
            return e.getClass().getSimpleName();
        }
        int nl = m.indexOf('\n');
        return nl < 0 ? m.strip() : m.substring(0, nl).strip();
    }

    @Descriptor("list the chiral commands")
    public String help() {
        return String.join("\n",
                "chiral:id                            this node's id and listen addresses",
                "chiral:add FILE                      add a file to the store and seed it on every protocol",
                "chiral:get ID HOST:PORT[,...] [DIR]  start downloading a CID (or a URL a protocol handles)",
                "chiral:ls                            files this node seeds",
                "chiral:rm CID                        stop seeding a file (the file itself stays)",
                "chiral:protocols                     installed protocols and their addresses",
                "chiral:transfers                     downloads of this run and their progress",
                "chiral:help                          this list (help chiral:COMMAND explains one command)");
    }

    @Descriptor("show this node's id (Ed25519 public key) and the addresses its protocols listen on")
    public String id() {
        return run("id", () -> {
            StringJoiner out = new StringJoiner("\n");
            out.add("id " + nodeId());
            for (ContentProtocol p : protocols.protocols()) {
                for (String a : p.listenAddresses()) {
                    out.add(p.name() + " " + a);
                }
            }
            return out.toString();
        });
    }

    @Descriptor("add a file to the store and seed it on every installed protocol; prints its CID")
    public String add(@Descriptor("path of the file (relative to the node's working directory)") String file) {
        return run("add", () -> {
            Path p = Path.of(file).toAbsolutePath().normalize();
            if (!Files.isRegularFile(p)) {
                return "chiral: " + (Files.exists(p) ? "not a regular file: " : "no such file: ") + p;
            }
            FileMetadata m = store.add(p);
            for (ContentProtocol proto : protocols.protocols()) {
                try {
                    proto.seed(m);
                } catch (RuntimeException e) {
                    LOG.warning(proto.name() + " cannot seed " + m.id().shortHex() + ": " + e);
                }
            }
            return "added " + m.name() + " " + m.size() + " bytes, " + m.chunkCount()
                    + (m.chunkCount() == 1 ? " chunk" : " chunks") + "\n" + m.id().hex();
        });
    }

    @Descriptor("start downloading into the node's downloads directory; returns at once (see chiral:transfers)")
    public String get(@Descriptor("CID (64 hex) or a URL such as http://HOST:PORT/file/CID") String id,
            @Descriptor("peers to fetch from: HOST:PORT or PROTOCOL://HOST:PORT, comma-separated") String from) {
        return start(id, from, null);
    }

    @Descriptor("start downloading into DIR; returns at once (see chiral:transfers)")
    public String get(@Descriptor("CID (64 hex) or a URL such as http://HOST:PORT/file/CID") String id,
            @Descriptor("peers to fetch from: HOST:PORT or PROTOCOL://HOST:PORT, comma-separated") String from,
            @Descriptor("directory to save the file in") String dir) {
        return start(id, from, dir);
    }

    private String start(String id, String from, String dir) {
        return run("get", () -> {
            List<PeerInfo> peers = new ArrayList<>();
            for (String s : from.split(",")) {
                if (!s.isBlank()) {
                    peers.add(PeerInfo.parse(s, "http"));
                }
            }
            Path out = null;
            if (dir != null) {
                try {
                    out = Path.of(dir).toAbsolutePath().normalize();
                } catch (InvalidPathException e) {
                    return "chiral: not a directory name: '" + dir + "'";
                }
            }
            TransferHandle h = protocols.download(new DownloadRequest(id.strip(), peers, out));
            return "transfer " + h.fileId().hex() + " " + h.state() + " (follow it with chiral:transfers)";
        });
    }

    @Descriptor("list the files this node seeds: CID, size in bytes, name")
    public String ls() {
        return run("ls", () -> {
            StringJoiner out = new StringJoiner("\n");
            for (FileMetadata m : store.list()) {
                Optional<Path> p = store.contentPath(m.id());
                if (p.isPresent()) {
                    out.add(m.id().hex() + "  " + m.size() + "  " + m.name());
                }
            }
            return out.length() == 0 ? "no files" : out.toString();
        });
    }

    @Descriptor("stop seeding a file and forget it; the file itself is left alone")
    public String rm(@Descriptor("CID of the file (64 hex)") String cid) {
        return run("rm", () -> {
            FileId id = FileId.parse(cid);
            if (!store.remove(id)) {
                return "chiral: not in the store: " + id.hex();
            }
            for (ContentProtocol p : protocols.protocols()) {
                try {
                    p.stopSeeding(id);
                } catch (RuntimeException e) {
                    LOG.warning(p.name() + " cannot stop seeding " + id.shortHex() + ": " + e);
                }
            }
            return "removed " + id.hex();
        });
    }

    @Descriptor("list the installed protocols and the addresses they listen on")
    public String protocols() {
        return run("protocols", () -> {
            StringJoiner out = new StringJoiner("\n");
            for (ContentProtocol p : protocols.protocols()) {
                List<String> addresses = p.listenAddresses();
                out.add(p.name() + (addresses.isEmpty() ? "" : " " + String.join(",", addresses)));
            }
            return out.length() == 0 ? "no protocols installed" : out.toString();
        });
    }

    @Descriptor("list the downloads of this run: CID, state, progress, sources and name")
    public String transfers() {
        return run("transfers", () -> {
            StringJoiner out = new StringJoiner("\n");
            for (TransferHandle h : protocols.transfers()) {
                TransferProgress p = h.progress();
                int pct = p.totalBytes() > 0 ? (int) Math.min(100, p.verifiedBytes() * 100 / p.totalBytes())
                        : p.totalBytes() == 0 ? 100 : 0;
                StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%s  %-11s %3d%%  %.1f/%s MiB  %d sources  %s",
                        h.fileId().hex(), p.state(), pct, p.verifiedBytes() / MIB,
                        p.totalBytes() >= 0 ? String.format(Locale.ROOT, "%.1f", p.totalBytes() / MIB) : "?",
                        p.bytesPerSource().size(), p.name()));
                if (p.error() != null) {
                    line.append("  (").append(p.error()).append(')');
                }
                out.add(line);
            }
            return out.length() == 0 ? "no transfers" : out.toString();
        });
    }

    /** The node id: the raw Ed25519 public key of {@code <chiral.data>/config/node.key}, in hex. */
    private static String nodeId() throws IOException, GeneralSecurityException {
        String dataDir = System.getProperty("chiral.data");
        if (dataDir == null || dataDir.isBlank()) {
            throw new IllegalArgumentException("the node has no data directory (chiral.data is not set)");
        }
        Path key = Path.of(dataDir, "config", "node.key");
        if (!Files.exists(key)) {
            throw new IllegalArgumentException("no node identity yet (" + key + " does not exist)");
        }
        if (Files.size(key) > MAX_KEY_FILE) {
            throw new IllegalArgumentException(key + " is not an Ed25519 key");
        }
        var priv = KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(Files.readAllBytes(key)));
        if (!(priv instanceof EdECPrivateKey ed) || ed.getBytes().isEmpty()) {
            throw new IllegalArgumentException(key + " is not an Ed25519 key");
        }
        byte[] seed = ed.getBytes().get();
        // Ed25519 key generation reads exactly the 32-byte seed from its random source.
        KeyPairGenerator gen = KeyPairGenerator.getInstance("Ed25519");
        gen.initialize(NamedParameterSpec.ED25519, new SecureRandom() {
            private static final long serialVersionUID = 1L;

            @Override
            public void nextBytes(byte[] bytes) {
                System.arraycopy(seed, 0, bytes, 0, Math.min(bytes.length, seed.length));
            }
        });
        byte[] x509 = gen.generateKeyPair().getPublic().getEncoded();
        return HexFormat.of().formatHex(Arrays.copyOfRange(x509, x509.length - 32, x509.length));
    }
}
