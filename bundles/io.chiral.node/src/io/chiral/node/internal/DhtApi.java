package io.chiral.node.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import io.chiral.api.ContentDirectory;
import io.chiral.api.Dht;
import io.chiral.api.FileId;
import io.chiral.api.PeerInfo;
import io.chiral.api.ProtocolManager;

/** The control channel's DHT endpoints ({@code dht/*}, {@code search}) and provider discovery for {@code get}. */
final class DhtApi {
    static final long LOOKUP_SECONDS = 30;
    private static final int MAX_KEY = 200;

    private final Supplier<ContentDirectory> directory;
    private final Supplier<List<Dht>> dhts;
    private final ProtocolManager protocols;
    private final String selfId;

    DhtApi(Supplier<ContentDirectory> directory, Supplier<List<Dht>> dhts, ProtocolManager protocols, String selfId) {
        this.directory = directory;
        this.dhts = dhts;
        this.protocols = protocols;
        this.selfId = selfId;
    }

    /** Providers found for {@code id} and the sources among them this node can use (its protocols, not itself). */
    record Discovery(int providers, List<PeerInfo> sources) {
    }

    Discovery discover(FileId id) {
        ContentDirectory d = requireDirectory();
        List<ContentDirectory.Provider> found = await(d.providers(id), "provider lookup of " + id.shortHex());
        List<PeerInfo> sources = new ArrayList<>();
        int providers = 0;
        for (ContentDirectory.Provider p : found) {
            if (p.nodeId().equals(selfId)) {
                continue;
            }
            providers++;
            for (Map.Entry<String, List<String>> e : p.protocols().entrySet()) {
                if (protocols.protocol(e.getKey()).filter(io.chiral.api.ContentProtocol::fetchesByCid).isEmpty()) {
                    continue;
                }
                if (e.getKey().equals("bittorrent") && p.infoHash().isEmpty()) {
                    continue; // a BitTorrent address serves a CID only through the torrent the record names
                }
                for (String a : e.getValue()) {
                    try {
                        PeerInfo parsed = PeerInfo.parse(a, e.getKey());
                        sources.add(new PeerInfo(e.getKey(), parsed.address(), p.nodeId(), "chiral"));
                        break; // one address per protocol and provider: the first is the preferred one
                    } catch (IllegalArgumentException bad) {
                        // a malformed address in someone's record: skip it
                    }
                }
            }
        }
        return new Discovery(providers, sources);
    }

    JsonElement stats() {
        JsonArray out = new JsonArray();
        for (Dht d : dhts.get()) {
            Dht.Stats s = d.stats();
            JsonObject o = new JsonObject();
            o.addProperty("network", s.network());
            o.addProperty("nodeId", s.nodeId());
            o.addProperty("address", hostPort(s.address()));
            o.addProperty("routingTable", s.routingTableSize());
            o.addProperty("buckets", s.buckets());
            o.addProperty("storedPeers", s.storedPeers());
            o.addProperty("storedItems", s.storedItems());
            o.addProperty("storedRecords", s.storedRecords());
            o.addProperty("queriesIn", s.queriesIn());
            o.addProperty("queriesOut", s.queriesOut());
            o.addProperty("responsesIn", s.responsesIn());
            o.addProperty("timeouts", s.timeouts());
            o.addProperty("dropped", s.droppedPackets());
            out.add(o);
        }
        return out;
    }

    JsonElement peers() {
        JsonObject out = new JsonObject();
        for (Dht d : dhts.get()) {
            JsonArray a = new JsonArray();
            for (Dht.Contact c : d.contacts()) {
                JsonObject o = new JsonObject();
                o.addProperty("id", c.nodeId());
                o.addProperty("address", hostPort(c.address()));
                o.addProperty("lastSeenMillis", c.lastSeenMillis());
                o.addProperty("failures", c.failures());
                a.add(o);
            }
            out.add(d.network(), a);
        }
        return out;
    }

    JsonArray addresses() {
        JsonArray out = new JsonArray();
        for (Dht d : dhts.get()) {
            JsonObject o = new JsonObject();
            o.addProperty("network", d.network());
            // bound to the wildcard address: the addresses others can reach (127.0.0.1 first), never 0:0:0:0:...
            List<String> reachable = io.chiral.net.ListenAddresses.of(d.address().getAddress(), d.address().getPort());
            o.addProperty("address", reachable.get(0));
            o.add("addresses", ControlJson.strings(reachable));
            o.addProperty("nodeId", d.nodeId());
            out.add(o);
        }
        return out;
    }

    JsonElement get(JsonObject body) {
        String key = ControlJson.requiredString(body, "key", MAX_KEY).strip();
        JsonArray out = new JsonArray();
        for (ContentDirectory.Record r : await(requireDirectory().get(key), "lookup of " + key)) {
            JsonObject o = new JsonObject();
            o.addProperty("key", r.key());
            o.addProperty("publisher", r.publisher());
            o.addProperty("seq", r.seq());
            o.addProperty("ttl", r.ttlSeconds());
            o.add("value", JsonParser.parseString(r.json()));
            out.add(o);
        }
        return out;
    }

    JsonElement find(JsonObject body) {
        FileId id = cid(ControlJson.requiredString(body, "cid", 64));
        ContentDirectory d = requireDirectory();
        JsonObject o = new JsonObject();
        o.addProperty("cid", id.hex());
        await(d.file(id), "lookup of " + id.shortHex()).ifPresent(f -> o.add("file", file(f)));
        JsonArray providers = new JsonArray();
        for (ContentDirectory.Provider p : await(d.providers(id), "provider lookup of " + id.shortHex())) {
            JsonObject po = new JsonObject();
            po.addProperty("nodeId", p.nodeId());
            JsonObject protos = new JsonObject();
            p.protocols().forEach((name, addrs) -> protos.add(name, ControlJson.strings(addrs)));
            po.add("protocols", protos);
            po.addProperty("wallet", p.walletAddress());
            po.addProperty("pricePerMb", p.pricePerMb());
            po.addProperty("chunks", p.chunks().cardinality());
            po.addProperty("totalChunks", p.totalChunks());
            po.addProperty("publishedMillis", p.publishedMillis());
            po.addProperty("self", p.nodeId().equals(selfId));
            providers.add(po);
        }
        o.add("providers", providers);
        return o;
    }

    JsonElement search(JsonObject body) {
        String word = ControlJson.requiredString(body, "word", 64).strip();
        if (word.length() < 3) {
            throw ControlException.badRequest("search words have at least 3 letters or digits: '" + word + "'");
        }
        JsonArray out = new JsonArray();
        for (ContentDirectory.FileRecord f : await(requireDirectory().search(word), "search for " + word)) {
            out.add(file(f));
        }
        return out;
    }

    private static JsonObject file(ContentDirectory.FileRecord f) {
        JsonObject o = new JsonObject();
        o.addProperty("cid", f.id().hex());
        o.addProperty("name", f.name());
        o.addProperty("size", f.size());
        if (f.chunkSize() > 0) {
            o.addProperty("chunkSize", f.chunkSize());
            o.addProperty("chunks", f.chunkCount());
            o.addProperty("merkleRoot", f.merkleRoot());
            o.addProperty("mimeType", f.mimeType());
        }
        o.addProperty("publisher", f.publisher());
        return o;
    }

    private ContentDirectory requireDirectory() {
        ContentDirectory d = directory.get();
        if (d == null) {
            throw new ControlException(503, "the Chiral DHT is not running on this node");
        }
        return d;
    }

    private static FileId cid(String s) {
        if (!FileId.isCid(s.strip())) {
            throw ControlException.badRequest("not a CID (64 lowercase hex): '" + s + "'");
        }
        return FileId.parse(s.strip());
    }

    static <T> T await(CompletionStage<T> stage, String what) {
        try {
            return stage.toCompletableFuture().get(LOOKUP_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new ControlException(504, what + " took longer than " + LOOKUP_SECONDS + " s");
        } catch (ExecutionException e) {
            throw new ControlException(502, what + " failed: " + ControlApi.describe(e.getCause()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ControlException(503, what + " interrupted");
        }
    }

    static String hostPort(java.net.InetSocketAddress a) {
        return io.chiral.net.ListenAddresses.hostPort(a.getAddress(), a.getPort());
    }
}
