package io.chiral.dht.internal;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Kademlia routing table: bucket {@code p} holds up to {@code k} contacts whose id shares exactly {@code p} leading
 * bits with ours, least recently seen first, plus up to {@code k} replacements. Bounded: at most
 * {@code 160 × 2k} contacts whatever peers send. A contact failing {@link #MAX_FAILURES} queries in a row is
 * dropped and the freshest replacement takes its place. Not thread-safe: the DHT drives it from one event loop.
 */
public final class RoutingTable {
    public static final int MAX_FAILURES = 2;

    /** A contact with its liveness. */
    public static final class Entry {
        final Contact contact;
        long lastSeen;
        int failures;

        Entry(Contact contact, long now) {
            this.contact = contact;
            this.lastSeen = now;
        }

        public Contact contact() {
            return contact;
        }

        public long lastSeen() {
            return lastSeen;
        }

        public int failures() {
            return failures;
        }
    }

    private final NodeId self;
    private final int k;
    private final List<LinkedHashMap<NodeId, Entry>> buckets = new ArrayList<>(NodeId.BITS);
    private final List<LinkedHashMap<NodeId, Entry>> replacements = new ArrayList<>(NodeId.BITS);
    private final long[] lastChanged = new long[NodeId.BITS];

    public RoutingTable(NodeId self, int k) {
        if (k < 1 || k > 64) {
            throw new IllegalArgumentException("k must be 1..64, got " + k);
        }
        this.self = self;
        this.k = k;
        for (int i = 0; i < NodeId.BITS; i++) {
            buckets.add(new LinkedHashMap<>());
            replacements.add(new LinkedHashMap<>());
        }
    }

    public NodeId self() {
        return self;
    }

    public int k() {
        return k;
    }

    /**
     * Records that {@code c} answered or queried us. Returns the least recently seen contact of a full bucket,
     * which the caller should ping (a failed ping, via {@link #failed}, makes room for {@code c}, which waits in
     * the replacement cache); empty when {@code c} was placed or refreshed.
     */
    public Optional<Contact> seen(Contact c, long now) {
        int p = self.commonPrefix(c.id());
        if (p >= NodeId.BITS) {
            return Optional.empty(); // ourselves
        }
        LinkedHashMap<NodeId, Entry> bucket = buckets.get(p);
        Entry e = bucket.remove(c.id());
        if (e != null) {
            if (!e.contact.address().equals(c.address())) {
                bucket.put(c.id(), e); // same id from another address: keep the one we know (BEP 42 decides later)
                return Optional.empty();
            }
            e.lastSeen = now;
            e.failures = 0;
            bucket.put(c.id(), e); // move to most recently seen
            lastChanged[p] = now;
            return Optional.empty();
        }
        if (bucket.size() < k) {
            bucket.put(c.id(), new Entry(c, now));
            replacements.get(p).remove(c.id());
            lastChanged[p] = now;
            return Optional.empty();
        }
        LinkedHashMap<NodeId, Entry> spare = replacements.get(p);
        spare.remove(c.id());
        spare.put(c.id(), new Entry(c, now));
        if (spare.size() > k) {
            Iterator<NodeId> oldest = spare.keySet().iterator();
            oldest.next();
            oldest.remove();
        }
        return Optional.of(bucket.values().iterator().next().contact);
    }

    /** A query to {@code id} timed out or failed. */
    public void failed(NodeId id, long now) {
        int p = self.commonPrefix(id);
        if (p >= NodeId.BITS) {
            return;
        }
        LinkedHashMap<NodeId, Entry> bucket = buckets.get(p);
        Entry e = bucket.get(id);
        if (e == null) {
            replacements.get(p).remove(id);
            return;
        }
        if (++e.failures >= MAX_FAILURES) {
            bucket.remove(id);
            LinkedHashMap<NodeId, Entry> spare = replacements.get(p);
            if (!spare.isEmpty()) {
                NodeId freshest = null;
                for (NodeId n : spare.keySet()) {
                    freshest = n;
                }
                bucket.put(freshest, spare.remove(freshest));
            }
            lastChanged[p] = now;
        }
    }

    /** Up to {@code n} contacts closest to {@code target} by XOR distance, closest first, failing ones last. */
    public List<Contact> closest(NodeId target, int n) {
        List<Entry> all = new ArrayList<>();
        for (Map<NodeId, Entry> b : buckets) {
            all.addAll(b.values());
        }
        all.sort(Comparator.<Entry>comparingInt(e -> e.failures > 0 ? 1 : 0)
                .thenComparing((a, b) -> target.closer(a.contact.id(), b.contact.id())));
        List<Contact> out = new ArrayList<>(Math.min(n, all.size()));
        for (int i = 0; i < all.size() && i < n; i++) {
            out.add(all.get(i).contact);
        }
        return out;
    }

    public boolean contains(NodeId id) {
        int p = self.commonPrefix(id);
        return p < NodeId.BITS && buckets.get(p).containsKey(id);
    }

    public int size() {
        int n = 0;
        for (Map<NodeId, Entry> b : buckets) {
            n += b.size();
        }
        return n;
    }

    /** Buckets (by prefix length) that have contacts or lie below the deepest one and did not change since {@code before}. */
    public List<Integer> staleBuckets(long before) {
        int deepest = -1;
        for (int p = 0; p < NodeId.BITS; p++) {
            if (!buckets.get(p).isEmpty()) {
                deepest = p;
            }
        }
        List<Integer> out = new ArrayList<>();
        for (int p = 0; p <= deepest; p++) {
            if (lastChanged[p] < before) {
                out.add(p);
            }
        }
        return out;
    }

    public List<Entry> bucket(int prefix) {
        return List.copyOf(buckets.get(prefix).values());
    }
}
