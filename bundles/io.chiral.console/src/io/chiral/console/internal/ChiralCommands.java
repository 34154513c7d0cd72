package io.chiral.console.internal;

import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.StringJoiner;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

import org.apache.felix.service.command.Descriptor;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.FieldOption;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

import io.chiral.api.ContentDirectory;
import io.chiral.api.ContentProtocol;
import io.chiral.api.ContentStore;
import io.chiral.api.Dht;
import io.chiral.api.DownloadRequest;
import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.NodeKey;
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
        "osgi.command.function=transfers",
        "osgi.command.function=find",
        "osgi.command.function=search",
        "osgi.command.function=dht"})
public class ChiralCommands {
    private static final Logger LOG = Logger.getLogger(ChiralCommands.class.getName());
    private static final double MIB = 1024.0 * 1024.0;

    @Reference
    private ProtocolManager protocols;
    @Reference
    private ContentStore store;
    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    private volatile NodeKey key;
    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    private volatile ContentDirectory directory;
    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC, fieldOption = FieldOption.UPDATE)
    private final List<Dht> dhts = new java.util.concurrent.CopyOnWriteArrayList<>();
    private static final long LOOKUP_SECONDS = 30;

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
                "chiral:find CID                      providers of a CID in the Chiral DHT",
                "chiral:search WORD                   files whose name has WORD (DHT keyword index)",
                "chiral:dht                           DHT instances and their counters",
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
            FileMetadata m;
            try {
                m = store.add(p);
            } catch (java.nio.file.AccessDeniedException e) {
                return "chiral: cannot read " + e.getFile() + ": permission denied";
            }
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
            return "transfer " + h.id() + " " + h.state() + " (follow it with chiral:transfers)";
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
                        h.id(), p.state(), pct, p.verifiedBytes() / MIB,
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

    @Descriptor("find the providers of a CID in the Chiral DHT (and its file record)")
    public String find(@Descriptor("CID of the file (64 hex)") String cid) {
        return run("find", () -> {
            FileId id = parseCid(cid);
            ContentDirectory d = requireDirectory();
            StringJoiner out = new StringJoiner("\n");
            d.file(id).toCompletableFuture().get(LOOKUP_SECONDS, TimeUnit.SECONDS).ifPresentOrElse(
                    f -> out.add(f.name() + "  " + f.size() + " bytes  " + f.chunkCount() + " chunks  merkle " + f.merkleRoot()),
                    () -> out.add("no file record for " + id.hex()));
            List<ContentDirectory.Provider> ps = d.providers(id).toCompletableFuture().get(LOOKUP_SECONDS, TimeUnit.SECONDS);
            out.add(ps.size() + (ps.size() == 1 ? " provider" : " providers"));
            for (ContentDirectory.Provider p : ps) {
                out.add("  " + p.nodeId() + "  " + p.protocols() + "  " + p.chunks().cardinality() + "/" + p.totalChunks()
                        + " chunks");
            }
            return out.toString();
        });
    }

    @Descriptor("find files whose name contains WORD (Chiral DHT keyword index)")
    public String search(@Descriptor("a word of the file name, at least 3 letters or digits") String word) {
        return run("search", () -> {
            List<ContentDirectory.FileRecord> found = requireDirectory().search(word).toCompletableFuture()
                    .get(LOOKUP_SECONDS, TimeUnit.SECONDS);
            StringJoiner out = new StringJoiner("\n");
            for (ContentDirectory.FileRecord f : found) {
                out.add(f.id().hex() + "  " + f.size() + "  " + f.name());
            }
            return found.isEmpty() ? "no files found for '" + word + "'" : out.toString();
        });
    }

    @Descriptor("DHT instances: network, node id, UDP address, routing table size, stored records and counters")
    public String dht() {
        return run("dht", () -> {
            StringJoiner out = new StringJoiner("\n");
            for (Dht d : dhts) {
                Dht.Stats s = d.stats();
                out.add(String.format(Locale.ROOT, "%s  %s  udp %s  table %d  records %d  peers %d  items %d  queries in %d out %d  timeouts %d",
                        s.network(), s.nodeId(), s.address(), s.routingTableSize(), s.storedRecords(), s.storedPeers(),
                        s.storedItems(), s.queriesIn(), s.queriesOut(), s.timeouts()));
            }
            return out.length() == 0 ? "no DHT running" : out.toString();
        });
    }

    private ContentDirectory requireDirectory() {
        ContentDirectory d = directory;
        if (d == null) {
            throw new IllegalArgumentException("the Chiral DHT is not running on this node");
        }
        return d;
    }

    private static FileId parseCid(String cid) {
        if (!FileId.isCid(cid.strip().toLowerCase(Locale.ROOT))) {
            throw new IllegalArgumentException("not a CID (64 hex): '" + cid + "'");
        }
        return FileId.parse(cid.strip().toLowerCase(Locale.ROOT));
    }

    private String nodeId() {
        NodeKey k = key;
        if (k == null) {
            throw new IllegalArgumentException("the node has no identity yet (its data directory is not configured)");
        }
        return k.nodeId();
    }
}
