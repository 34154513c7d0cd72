package io.chiral.dht.internal;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

import org.osgi.service.component.ComponentServiceObjects;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.FieldOption;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.event.Event;
import org.osgi.service.event.EventConstants;
import org.osgi.service.event.EventHandler;

import io.chiral.api.ChiralEvents;
import io.chiral.api.ContentDirectory;
import io.chiral.api.ContentProtocol;
import io.chiral.api.ContentStore;
import io.chiral.api.Dht;
import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.NodeKey;
import io.chiral.bencode.Bytes;

/**
 * The Chiral network's records on the {@code chiral} DHT instance. Publishes, for every file in the
 * {@link ContentStore}: the file record under the CID, this node's provider record under
 * {@code providers::<cid>} (protocols with their listen addresses, wallet, price, chunks), a
 * {@code keyword_idx::<word>} record per word of the name, and {@code info_hash_idx::<btih>} when a BitTorrent
 * info-hash is known. Publishes when a file is added or downloaded, again every {@code REPUBLISH_MINUTES}, and
 * when protocols come or go (their addresses are in the provider record). Records are signed with the
 * {@link NodeKey} and live {@value #TTL_SECONDS} s on the nodes that store them.
 */
@Component(immediate = true, property = {EventConstants.EVENT_TOPIC + "=" + ChiralEvents.FILE_ADDED,
        EventConstants.EVENT_TOPIC + "=" + ChiralEvents.FILE_REMOVED,
        EventConstants.EVENT_TOPIC + "=" + ChiralEvents.TRANSFER_COMPLETED,
        EventConstants.EVENT_TOPIC + "=" + ChiralEvents.PROTOCOL_ADDED,
        EventConstants.EVENT_TOPIC + "=" + ChiralEvents.PROTOCOL_REMOVED,
        EventConstants.EVENT_TOPIC + "=" + ChiralEvents.DHT_JOINED})
public class ChiralDirectory implements ContentDirectory, EventHandler {
    private static final Logger LOG = Logger.getLogger(ChiralDirectory.class.getName());
    static final long TTL_SECONDS = 2 * 3600;
    static final long REPUBLISH_MINUTES = 30;
    static final int MAX_KEYWORDS = 8;
    static final int MAX_ADDRESSES = 4;
    static final int RETRY_SECONDS = 5;
    static final int MAX_RETRIES = 12;

    private final DhtNode node;
    private final NodeKey key;
    private final ContentStore store;
    private final Map<FileId, Optional<String>> published = new ConcurrentHashMap<>();
    private final ScheduledFuture<?> republisher;
    private volatile ScheduledFuture<?> pendingRepublish;
    private volatile boolean closed;

    /**
     * The local transports, bound without being obtained: a transport that uses this directory (BitTorrent's dual
     * lookup) would otherwise be activated from inside this component's activation and find it half-made, a cycle
     * that Felix SCR resolves only sometimes. Each is obtained the first time a provider record is built, on the DHT's
     * thread, and released by SCR when it goes.
     */
    @Reference(service = ContentProtocol.class, cardinality = ReferenceCardinality.MULTIPLE,
            policy = ReferencePolicy.DYNAMIC, policyOption = ReferencePolicyOption.GREEDY,
            fieldOption = FieldOption.UPDATE)
    private final List<ComponentServiceObjects<ContentProtocol>> protocols =
            new java.util.concurrent.CopyOnWriteArrayList<>();
    private final Map<ComponentServiceObjects<ContentProtocol>, ContentProtocol> obtained = new ConcurrentHashMap<>();

    @Activate
    public ChiralDirectory(@Reference(target = "(" + Dht.NETWORK_PROPERTY + "=" + Dht.CHIRAL + ")") Dht dht,
            @Reference NodeKey key, @Reference ContentStore store) {
        this.node = ((DhtComponent) dht).node();
        this.key = key;
        this.store = store;
        this.republisher = node.loopGroupNext().scheduleAtFixedRate(this::republishAll, 20,
                REPUBLISH_MINUTES * 60, TimeUnit.SECONDS);
        scheduleRepublish(2);
    }

    @Deactivate
    void deactivate() {
        closed = true;
        republisher.cancel(false);
        ScheduledFuture<?> p = pendingRepublish;
        if (p != null) {
            p.cancel(false);
        }
    }

    /** Republishes everything after {@code seconds} (coalescing bursts of events). */
    private void scheduleRepublish(int seconds) {
        ScheduledFuture<?> p = pendingRepublish;
        if (p != null && !p.isDone()) {
            return;
        }
        pendingRepublish = node.loopGroupNext().schedule(this::republishAll, seconds, TimeUnit.SECONDS);
    }

    private void republishAll() {
        if (closed) {
            return;
        }
        try {
            for (FileMetadata m : store.list()) {
                publish(m, published.getOrDefault(m.id(), Optional.empty()));
            }
        } catch (RuntimeException e) {
            LOG.warning("republishing failed: " + e);
        }
    }

    @Override
    public void handleEvent(Event event) {
        String topic = event.getTopic();
        if (ChiralEvents.DHT_JOINED.equals(topic)) {
            if (Dht.CHIRAL.equals(event.getProperty(ChiralEvents.PROP_NETWORK))) {
                scheduleRepublish(1); // records published while this node knew nobody reached no one
            }
            return;
        }
        if (ChiralEvents.PROTOCOL_ADDED.equals(topic) || ChiralEvents.PROTOCOL_REMOVED.equals(topic)) {
            scheduleRepublish(1);
            return;
        }
        Object cid = event.getProperty(ChiralEvents.PROP_CID);
        if (!(cid instanceof String s) || !FileId.isCid(s)) {
            return;
        }
        FileId id = FileId.parse(s);
        if (ChiralEvents.FILE_REMOVED.equals(topic)) {
            unpublish(id);
            return;
        }
        store.metadata(id).ifPresent(m -> publish(m, published.getOrDefault(id, Optional.empty())));
    }

    // ---- publishing ----

    @Override
    public CompletionStage<Integer> publish(FileMetadata file, Optional<String> btih) {
        return publish(file, btih, 0);
    }

    /**
     * Publishes; when no other node took the records (a node that has only just started and knows nobody yet),
     * tries again every {@value #RETRY_SECONDS} s, at most {@value #MAX_RETRIES} times, instead of waiting for the
     * next republish.
     */
    private CompletionStage<Integer> publish(FileMetadata file, Optional<String> btih, int attempt) {
        CompletionStage<Integer> done = publishOnce(file, btih);
        done.whenComplete((stored, e) -> {
            if ((e != null || stored == 0) && attempt < MAX_RETRIES && !closed && published.containsKey(file.id())) {
                node.loopGroupNext().schedule(() -> publish(file, btih, attempt + 1), RETRY_SECONDS, TimeUnit.SECONDS);
            }
        });
        return done;
    }

    private CompletionStage<Integer> publishOnce(FileMetadata file, Optional<String> btih) {
        published.put(file.id(), btih);
        long seq = System.currentTimeMillis();
        List<ChiralRecord> recs = new ArrayList<>();
        String cid = file.id().hex();
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("name", file.name());
        meta.put("size", file.size());
        meta.put("chunk_size", (long) file.chunkSize());
        meta.put("chunks", (long) file.chunkCount());
        meta.put("merkle_root", file.merkleRoot());
        meta.put("mime", file.mimeType());
        recs.add(sign(cid, null, seq, meta));
        recs.add(sign(PROVIDERS_PREFIX + cid, null, seq, providerValue(file, btih)));
        byte[] cidBytes = HexFormat.of().parseHex(cid);
        for (String word : keywords(file.name())) {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("cid", cid);
            v.put("name", file.name());
            v.put("size", file.size());
            recs.add(sign(KEYWORD_PREFIX + word, cidBytes, seq, v));
        }
        btih.ifPresent(h -> recs.add(sign(INFO_HASH_PREFIX + h.toLowerCase(Locale.ROOT), null, seq, Map.of("cid", cid))));
        List<CompletableFuture<Integer>> puts = new ArrayList<>();
        for (ChiralRecord r : recs) {
            puts.add(node.putRecord(r));
        }
        return CompletableFuture.allOf(puts.toArray(CompletableFuture[]::new))
                .thenApply(x -> puts.stream().mapToInt(CompletableFuture::join).min().orElse(0));
    }

    private Map<String, Object> providerValue(FileMetadata file, Optional<String> btih) {
        Map<String, Object> protos = new TreeMap<>();
        obtained.keySet().retainAll(protocols);
        for (ComponentServiceObjects<ContentProtocol> s : protocols) {
            ContentProtocol p = obtained.computeIfAbsent(s, ComponentServiceObjects::getService);
            if (p == null) {
                continue; // it failed to activate, or went away meanwhile
            }
            List<String> addrs = p.listenAddresses();
            if (!addrs.isEmpty()) {
                protos.put(p.name(), List.copyOf(addrs.subList(0, Math.min(MAX_ADDRESSES, addrs.size()))));
            }
        }
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("protocols", protos);
        v.put("wallet", "");
        v.put("price_per_mb", "0");
        v.put("chunks", (long) file.chunkCount());
        v.put("complete", 1L);
        btih.ifPresent(h -> v.put("btih", h.toLowerCase(Locale.ROOT)));
        return v;
    }

    private ChiralRecord sign(String k, byte[] sub, long seq, Map<String, Object> value) {
        return ChiralRecord.create(k, sub, seq, TTL_SECONDS, value, key.publicKey(), key::sign);
    }

    /** Lower-case words of a file name (letters and digits, at least 3 long), at most {@value #MAX_KEYWORDS}. */
    static Set<String> keywords(String name) {
        Set<String> out = new LinkedHashSet<>();
        for (String w : name.toLowerCase(Locale.ROOT).split("[^\\p{L}\\p{N}]+")) {
            if (w.length() >= 3 && w.length() <= 64 && out.size() < MAX_KEYWORDS) {
                out.add(w);
            }
        }
        return out;
    }

    @Override
    public void unpublish(FileId id) {
        published.remove(id);
    }

    // ---- reading ----

    @Override
    public CompletionStage<List<Provider>> providers(FileId id) {
        return node.getRecords(PROVIDERS_PREFIX + id.hex()).thenApply(res -> {
            List<Provider> out = new ArrayList<>();
            for (ChiralRecord r : res.records()) {
                try {
                    out.add(provider(r));
                } catch (RuntimeException e) {
                    LOG.fine("ignoring malformed provider record from " + hex(r.publicKey()) + ": " + e.getMessage());
                }
            }
            out.sort((a, b) -> Long.compare(b.publishedMillis(), a.publishedMillis()));
            return out;
        });
    }

    private static Provider provider(ChiralRecord r) {
        SortedMap<Bytes, Object> v = r.value();
        Map<String, List<String>> protos = new TreeMap<>();
        if (v.get(Bytes.of("protocols")) instanceof SortedMap<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                List<String> addrs = new ArrayList<>();
                if (e.getValue() instanceof List<?> l) {
                    for (Object a : l) {
                        if (a instanceof Bytes b && b.length() <= 300 && addrs.size() < MAX_ADDRESSES) {
                            addrs.add(b.utf8());
                        }
                    }
                }
                protos.put(((Bytes) e.getKey()).utf8(), List.copyOf(addrs));
            }
        }
        int total = v.get(Bytes.of("chunks")) instanceof Long c && c >= 0 && c <= FileMetadata.MAX_CHUNKS ? (int) (long) c : 0;
        BitSet chunks = new BitSet(total);
        if (v.get(Bytes.of("have")) instanceof Bytes have) {
            chunks = BitSet.valueOf(have.toByteArray());
            chunks.clear(total, Math.max(total, chunks.length()));
        } else {
            chunks.set(0, total);
        }
        String btih = str(v, "btih");
        return new Provider(hex(r.publicKey()), protos, str(v, "wallet"), str(v, "price_per_mb"), total, chunks, r.seq(),
                btih.matches("[0-9a-f]{40}") ? btih : "");
    }

    @Override
    public CompletionStage<Optional<FileRecord>> file(FileId id) {
        return node.getRecords(id.hex()).thenApply(res -> res.records().stream()
                .sorted((a, b) -> Long.compare(b.seq(), a.seq()))
                .map(r -> fileRecord(id, r)).filter(Optional::isPresent).map(Optional::get).findFirst());
    }

    private static Optional<FileRecord> fileRecord(FileId id, ChiralRecord r) {
        SortedMap<Bytes, Object> v = r.value();
        if (v.get(Bytes.of("size")) instanceof Long size && v.get(Bytes.of("chunk_size")) instanceof Long cs
                && v.get(Bytes.of("chunks")) instanceof Long n && size >= 0 && cs > 0 && cs <= FileMetadata.MAX_CHUNK_SIZE) {
            return Optional.of(new FileRecord(id, FileMetadata.sanitizeName(str(v, "name")), size, (int) (long) cs,
                    (int) Math.min(n, Integer.MAX_VALUE), str(v, "merkle_root"), str(v, "mime"), hex(r.publicKey()), r.seq()));
        }
        return Optional.empty();
    }

    @Override
    public CompletionStage<List<FileRecord>> search(String word) {
        String w = word.strip().toLowerCase(Locale.ROOT);
        return node.getRecords(KEYWORD_PREFIX + w).thenApply(res -> {
            Map<String, FileRecord> byCid = new LinkedHashMap<>();
            for (ChiralRecord r : res.records()) {
                SortedMap<Bytes, Object> v = r.value();
                String cid = str(v, "cid");
                if (FileId.isCid(cid) && v.get(Bytes.of("size")) instanceof Long size && size >= 0) {
                    byCid.putIfAbsent(cid, new FileRecord(FileId.parse(cid), FileMetadata.sanitizeName(str(v, "name")),
                            size, 0, 0, "", "", hex(r.publicKey()), r.seq()));
                }
            }
            return List.copyOf(byCid.values());
        });
    }

    @Override
    public CompletionStage<Optional<FileId>> byInfoHash(String btih) {
        return node.getRecords(INFO_HASH_PREFIX + btih.toLowerCase(Locale.ROOT)).thenApply(res -> res.records().stream()
                .sorted((a, b) -> Long.compare(b.seq(), a.seq())).map(r -> str(r.value(), "cid"))
                .filter(FileId::isCid).map(FileId::parse).findFirst());
    }

    @Override
    public CompletionStage<List<Record>> get(String k) {
        return node.getRecords(k).thenApply(res -> {
            List<Record> out = new ArrayList<>();
            for (ChiralRecord r : res.records()) {
                out.add(new Record(r.key(), hex(r.publicKey()), r.seq(), r.ttlSeconds(), BencodeJson.toJson(r.value())));
            }
            return out;
        });
    }

    private static String str(SortedMap<Bytes, Object> v, String field) {
        return v.get(Bytes.of(field)) instanceof Bytes b && b.length() <= 1024 ? b.utf8() : "";
    }

    private static String hex(byte[] b) {
        return HexFormat.of().formatHex(b);
    }
}
