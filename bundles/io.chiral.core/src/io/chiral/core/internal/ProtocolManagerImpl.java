package io.chiral.core.internal;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Logger;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.event.Event;
import org.osgi.service.event.EventAdmin;

import io.chiral.api.ChiralEvents;
import io.chiral.api.ContentProtocol;
import io.chiral.api.DownloadRequest;
import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;
import io.chiral.api.ProtocolManager;
import io.chiral.api.TransferHandle;

/**
 * Tracks {@link ContentProtocol} services as they come and go, routes identifiers, and owns the downloads of
 * this node. Downloads interrupted by a crash or a stop are resumed when the node starts again; a source whose
 * protocol is missing waits until that protocol is installed.
 */
@Component(service = ProtocolManager.class, immediate = true)
public class ProtocolManagerImpl implements ProtocolManager {
    private static final Logger LOG = Logger.getLogger(ProtocolManagerImpl.class.getName());

    private final Map<String, ContentProtocol> protocols = new ConcurrentSkipListMap<>();
    private final Map<FileId, Download> downloads = new ConcurrentHashMap<>();
    private final List<Download> order = new CopyOnWriteArrayList<>();
    @Reference
    private ChunkStore store;
    private volatile EventAdmin events;
    private volatile boolean active;
    /** Engine settings read by each new download; tests shorten the stall timeout and drive the clock. */
    volatile long stallMillis = Download.STALL_MILLIS;
    volatile java.util.function.LongSupplier clock = System::nanoTime;

    public ProtocolManagerImpl() {
    }

    /** Without DS (tests in this package): the store is given, {@link #activate()} is called by the caller. */
    ProtocolManagerImpl(ChunkStore store) {
        this.store = store;
    }

    @Activate
    void activate() {
        active = true;
        for (ChunkStore.DownloadRecord rec : store.downloads()) {
            if (rec.metadata() == null || rec.outputDir() == null) {
                continue;
            }
            List<PeerInfo> peers = new ArrayList<>();
            for (String label : rec.sources()) {
                try {
                    peers.add(PeerInfo.parse(label, "http"));
                } catch (IllegalArgumentException e) {
                    LOG.warning("ignoring bad source " + label + " of pending download " + rec.id().shortHex());
                }
            }
            Download d = new Download(this, store, rec.id(), Path.of(rec.outputDir()), rec.metadata());
            d.addSources(peers);
            downloads.put(rec.id(), d);
            order.add(d);
            LOG.info("resuming interrupted download of " + rec.metadata().name() + " (" + rec.id().shortHex() + ")");
            store.workers().execute(d::start);
        }
    }

    @Deactivate
    void deactivate() {
        active = false;
        for (Download d : order) {
            d.suspend();
        }
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void addProtocol(ContentProtocol protocol) {
        protocols.put(protocol.name(), protocol);
        LOG.info("protocol available: " + protocol.name());
        post(ChiralEvents.PROTOCOL_ADDED, Map.of(ChiralEvents.PROP_PROTOCOL, protocol.name()));
        if (active) {
            for (Download d : order) {
                store.workers().execute(() -> {
                    d.start();
                    d.openSources();
                });
            }
        }
    }

    void removeProtocol(ContentProtocol protocol) {
        if (protocols.remove(protocol.name(), protocol)) {
            LOG.info("protocol gone: " + protocol.name());
            for (Download d : order) {
                d.protocolRemoved(protocol.name());
            }
            post(ChiralEvents.PROTOCOL_REMOVED, Map.of(ChiralEvents.PROP_PROTOCOL, protocol.name()));
        }
    }

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    void setEventAdmin(EventAdmin ea) {
        events = ea;
    }

    void unsetEventAdmin(EventAdmin ea) {
        if (events == ea) {
            events = null;
        }
    }

    ContentProtocol protocolFor(String name) {
        return protocols.get(name);
    }

    @Override
    public List<ContentProtocol> protocols() {
        return List.copyOf(protocols.values());
    }

    @Override
    public Optional<ContentProtocol> protocol(String name) {
        return Optional.ofNullable(protocols.get(name));
    }

    @Override
    public TransferHandle download(DownloadRequest request) {
        String ident = request.identifier().strip();
        FileId id;
        List<PeerInfo> peers = new ArrayList<>(request.sources());
        if (FileId.isCid(ident)) {
            id = FileId.parse(ident);
        } else {
            ContentProtocol handler = null;
            for (ContentProtocol p : protocols.values()) {
                if (p.canHandle(ident)) {
                    handler = p;
                    break;
                }
            }
            if (handler == null) {
                throw new IllegalArgumentException("cannot download '" + ident + "': not a CID (64 hex characters)"
                        + " and no installed protocol handles it (installed: " + String.join(", ", protocols.keySet()) + ")");
            }
            Optional<TransferHandle> own = handler.startTransfer(request);
            if (own.isPresent()) {
                return own.get();
            }
            ContentProtocol.Resolution r;
            try {
                r = handler.resolve(ident).toCompletableFuture().join();
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("cannot resolve '" + ident + "': " + Download.describe(e), e);
            }
            id = r.id();
            peers.addAll(r.peers());
        }
        for (PeerInfo p : peers) {
            if (!protocols.containsKey(p.protocol())) {
                throw new IllegalArgumentException("no installed protocol '" + p.protocol() + "' to reach " + p.address()
                        + " (installed: " + (protocols.isEmpty() ? "none" : String.join(", ", protocols.keySet())) + ")");
            }
        }
        Path out = request.outputDirectory() != null ? request.outputDirectory()
                : store.dataDir().resolve("downloads");
        Download d;
        synchronized (this) {
            Download existing = downloads.get(id);
            if (existing != null && !existing.state().isFinal()) {
                existing.addSources(peers);
                store.workers().execute(() -> {
                    existing.openSources();
                    existing.resume();
                });
                return existing;
            }
            if (existing != null && existing.state() == io.chiral.api.TransferState.COMPLETED
                    && existing.outputDirectory().equals(out)
                    && store.contentPath(id).map(p -> p.getParent().equals(out)).orElse(false)) {
                // already downloaded here in this run (e.g. resumed at start and finished): nothing to fetch
                return existing;
            }
            Optional<Path> here = verifiedCopyIn(id, out);
            if (here.isPresent() && store.metadata(id).isPresent()) {
                // downloaded (or added) here before, e.g. in an earlier run: the verified file is the answer
                d = new Download(this, store, id, out, store.metadata(id).get());
                d.alreadyHere(here.get());
                if (existing != null) {
                    order.remove(existing);
                }
                downloads.put(id, d);
                order.add(d);
                return d;
            }
            FileMetadata known = store.download(id).map(ChunkStore.DownloadRecord::metadata).orElse(null);
            d = new Download(this, store, id, out, known);
            d.addSources(peers);
            if (existing != null) {
                order.remove(existing);
            }
            downloads.put(id, d);
            order.add(d);
        }
        store.workers().execute(d::start);
        return d;
    }

    /** The store's complete, unchanged copy of {@code id} when it lies directly in {@code dir}. */
    private Optional<Path> verifiedCopyIn(FileId id, Path dir) {
        Optional<Path> have;
        try {
            have = store.contentPath(id);
        } catch (java.io.UncheckedIOException e) {
            return Optional.empty();
        }
        return have.filter(p -> sameDirectory(p.getParent(), dir));
    }

    private static boolean sameDirectory(Path a, Path b) {
        if (a == null || b == null) {
            return false;
        }
        try {
            return a.equals(b) || java.nio.file.Files.isSameFile(a, b);
        } catch (java.io.IOException e) {
            return false;
        }
    }

    @Override
    public Optional<TransferHandle> transfer(FileId id) {
        return Optional.ofNullable(downloads.get(id));
    }

    @Override
    public List<TransferHandle> transfers() {
        List<TransferHandle> all = new ArrayList<>(order);
        for (ContentProtocol p : protocols.values()) {
            try {
                all.addAll(p.transfers());
            } catch (RuntimeException e) {
                LOG.warning(p.name() + " cannot list its transfers: " + e);
            }
        }
        return all;
    }

    @Override
    public Optional<TransferHandle> transfer(String id) {
        String key = id.strip().toLowerCase(java.util.Locale.ROOT);
        if (FileId.isCid(key)) {
            Download d = downloads.get(FileId.parse(key));
            if (d != null) {
                return Optional.of(d);
            }
        }
        return transfers().stream().filter(t -> t.id().equalsIgnoreCase(key)
                || (t.fileId() != null && t.fileId().hex().equals(key))).reduce((a, b) -> b);
    }

    /** Offers a newly completed file on every protocol. */
    void seedAll(FileMetadata meta) {
        for (ContentProtocol p : protocols.values()) {
            try {
                p.seed(meta);
            } catch (RuntimeException e) {
                LOG.warning(p.name() + " cannot seed " + meta.id().shortHex() + ": " + e);
            }
        }
    }

    void post(String topic, Download d, String error) {
        Map<String, Object> props = new HashMap<>();
        props.put(ChiralEvents.PROP_CID, d.fileId().hex());
        var pr = d.progress();
        props.put(ChiralEvents.PROP_BYTES_PER_SOURCE, pr.bytesPerSource());
        props.put(ChiralEvents.PROP_SIZE, pr.totalBytes());
        if (error != null) {
            props.put(ChiralEvents.PROP_ERROR, error);
        }
        post(topic, props);
    }

    private void post(String topic, Map<String, Object> props) {
        EventAdmin ea = events;
        if (ea != null) {
            ea.postEvent(new Event(topic, props));
        }
    }
}
