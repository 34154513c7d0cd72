package io.chiral.node.internal;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Pattern;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import io.chiral.api.ContentProtocol;
import io.chiral.api.ContentStore;
import io.chiral.api.DownloadRequest;
import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;
import io.chiral.api.ProtocolManager;
import io.chiral.api.TransferHandle;

/**
 * The endpoints of the control channel under {@value #PREFIX}. Plain Java, no Netty: it takes a
 * {@link ControlRequest} and returns a {@link ControlResponse}; callers run it off the event loop because adding
 * a file hashes it and provisioning takes seconds.
 */
final class ControlApi {
    static final String PREFIX = "/api/v0/";
    private static final Logger LOG = Logger.getLogger(ControlApi.class.getName());
    private static final int MAX_PATH = 4096;
    private static final int MAX_ID = 8192;
    private static final int MAX_SOURCES = 64;
    private static final int MAX_SOURCE_LENGTH = 1024;
    private static final Pattern FEATURE_ID = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.\\-]{0,199}");

    /** What {@code /id} tells about this node. */
    record NodeInfo(String nodeId, String dataDir, String version, Supplier<String> controlAddress) {
    }

    private final ProtocolManager protocols;
    private final ContentStore store;
    private final Supplier<Provisioner> provisioner;
    private final NodeInfo node;
    private final Runnable stopFramework;
    private final DhtApi dht;

    ControlApi(ProtocolManager protocols, ContentStore store, Supplier<Provisioner> provisioner, NodeInfo node,
            Runnable stopFramework, DhtApi dht) {
        this.dht = dht;
        this.protocols = protocols;
        this.store = store;
        this.provisioner = provisioner;
        this.node = node;
        this.stopFramework = stopFramework;
    }

    ControlResponse handle(ControlRequest req) {
        try {
            return route(req);
        } catch (ControlException e) {
            return ControlResponse.error(e.status(), e.getMessage());
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, req.method() + " " + req.path() + " failed", e);
            return ControlResponse.error(500, describe(e));
        }
    }

    private ControlResponse route(ControlRequest req) {
        String path = req.path();
        while (path.length() > 1 && path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        if (!path.startsWith(PREFIX)) {
            throw ControlException.notFound("unknown endpoint " + req.method() + " " + req.path());
        }
        String[] parts = path.substring(PREFIX.length()).split("/", -1);
        String m = req.method();
        if (parts.length == 1) {
            switch (parts[0]) {
                case "id": return get(m, path, this::id);
                case "add": return post(m, path, () -> add(ControlJson.object(req.body())));
                case "get": return post(m, path, () -> download(ControlJson.object(req.body())));
                case "transfers": return get(m, path, this::transfers);
                case "ls": return get(m, path, this::list);
                case "rm": return post(m, path, () -> remove(ControlJson.object(req.body())));
                case "protocols": return get(m, path, this::protocolList);
                case "install": return post(m, path, () -> install(ControlJson.object(req.body())));
                case "uninstall": return post(m, path, () -> uninstall(ControlJson.object(req.body())));
                case "features": return get(m, path, this::features);
                case "stop": return stop(m, path);
                case "search": return post(m, path, () -> dht.search(ControlJson.object(req.body())));
                default: break;
            }
        } else if (parts[0].equals("dht") && parts.length == 2) {
            switch (parts[1]) {
                case "stats": return get(m, path, dht::stats);
                case "peers": return get(m, path, dht::peers);
                case "get": return post(m, path, () -> dht.get(ControlJson.object(req.body())));
                case "find": return post(m, path, () -> dht.find(ControlJson.object(req.body())));
                default: break;
            }
        } else if (parts[0].equals("peers") && parts.length == 2) {
            return get(m, path, () -> peers(parts[1]));
        } else if (parts[0].equals("transfers") && parts.length == 2) {
            return get(m, path, () -> transfer(parts[1]));
        } else if (parts[0].equals("transfers") && parts.length == 3) {
            return post(m, path, () -> control(parts[1], parts[2]));
        }
        throw ControlException.notFound("unknown endpoint " + req.method() + " " + req.path());
    }

    private static ControlResponse get(String method, String path, Supplier<JsonElement> action) {
        if (!method.equals("GET")) {
            throw new ControlException(405, "use GET for " + path);
        }
        return ControlResponse.ok(action.get());
    }

    private static ControlResponse post(String method, String path, Supplier<JsonElement> action) {
        if (!method.equals("POST")) {
            throw new ControlException(405, "use POST for " + path);
        }
        return ControlResponse.ok(action.get());
    }

    // ---- node ----

    private JsonElement id() {
        JsonObject o = new JsonObject();
        o.addProperty("id", node.nodeId());
        JsonArray addresses = new JsonArray();
        for (ContentProtocol p : protocols.protocols()) {
            for (String a : listenAddresses(p)) {
                JsonObject entry = new JsonObject();
                entry.addProperty("protocol", p.name());
                entry.addProperty("address", a);
                addresses.add(entry);
            }
        }
        o.add("addresses", addresses);
        o.add("dht", dht.addresses());
        o.addProperty("control", node.controlAddress().get());
        o.addProperty("dataDir", node.dataDir());
        o.addProperty("version", node.version());
        return o;
    }

    private JsonElement protocolList() {
        JsonArray out = new JsonArray();
        for (ContentProtocol p : protocols.protocols()) {
            JsonObject o = new JsonObject();
            o.addProperty("name", p.name());
            o.add("addresses", ControlJson.strings(listenAddresses(p)));
            out.add(o);
        }
        return out;
    }

    private static List<String> listenAddresses(ContentProtocol p) {
        try {
            List<String> a = p.listenAddresses();
            return a == null ? List.of() : a;
        } catch (RuntimeException e) {
            LOG.warning(p.name() + " cannot list its addresses: " + e);
            return List.of();
        }
    }

    private ControlResponse stop(String method, String path) {
        if (!method.equals("POST")) {
            throw new ControlException(405, "use POST for " + path);
        }
        JsonObject o = new JsonObject();
        o.addProperty("stopping", true);
        LOG.info("stop requested over the control channel");
        return new ControlResponse(200, o, stopFramework);
    }

    // ---- store ----

    private JsonElement add(JsonObject body) {
        String text = ControlJson.requiredString(body, "path", MAX_PATH);
        Path file = absolutePath(text, "path");
        FileMetadata meta;
        try {
            meta = store.add(file);
        } catch (NoSuchFileException e) {
            throw ControlException.badRequest("no such file: " + file);
        } catch (java.nio.file.AccessDeniedException e) {
            throw ControlException.badRequest("cannot read " + e.getFile() + ": permission denied");
        } catch (java.nio.file.FileSystemException e) {
            throw ControlException.badRequest(e.getMessage());
        } catch (IOException e) {
            throw new ControlException(500, "cannot add " + file + ": " + describe(e));
        }
        String shareOver = ControlJson.optionalString(body, "protocol", 64);
        List<String> trackers = ControlJson.stringList(body, "trackers", 32, 2048);
        ContentProtocol sharing = null;
        if (shareOver != null) {
            sharing = protocols.protocol(shareOver.strip().toLowerCase(java.util.Locale.ROOT)).orElseThrow(
                    () -> ControlException.badRequest("no installed protocol '" + abbreviate(shareOver) + "' (installed: "
                            + String.join(", ", protocols.protocols().stream().map(ContentProtocol::name).toList()) + ")"));
        } else if (!trackers.isEmpty()) {
            throw ControlException.badRequest("--tracker needs --protocol bittorrent");
        }
        for (ContentProtocol p : protocols.protocols()) {
            if (p == sharing) {
                continue;
            }
            try {
                p.seed(meta);
            } catch (RuntimeException e) {
                LOG.warning(p.name() + " cannot seed " + meta.id().shortHex() + ": " + e);
            }
        }
        JsonObject o = ControlJson.metadata(meta);
        store.contentPath(meta.id()).ifPresent(real -> o.addProperty("path", real.toString()));
        if (sharing != null) {
            java.util.Map<String, String> shared;
            try {
                shared = sharing.share(meta, trackers.isEmpty() ? java.util.Map.of() : java.util.Map.of("tracker", trackers));
            } catch (IllegalArgumentException e) {
                throw ControlException.badRequest(describe(e));
            } catch (UncheckedIOException e) {
                throw new ControlException(500, "cannot share " + file + " over " + sharing.name() + ": " + describe(e));
            }
            JsonObject share = new JsonObject();
            shared.forEach(share::addProperty);
            o.add(sharing.name(), share);
        }
        return o;
    }

    private JsonElement list() {
        JsonArray out = new JsonArray();
        for (FileMetadata m : store.list()) {
            Optional<Path> path;
            try {
                path = store.contentPath(m.id());
            } catch (UncheckedIOException e) {
                path = Optional.empty();
            }
            if (path.isEmpty()) {
                continue; // changed or gone on disk: the store dropped it
            }
            JsonObject o = new JsonObject();
            o.addProperty("cid", m.id().hex());
            o.addProperty("name", m.name());
            o.addProperty("size", m.size());
            o.addProperty("path", path.get().toString());
            out.add(o);
        }
        return out;
    }

    private JsonElement remove(JsonObject body) {
        FileId id = ControlJson.cid(ControlJson.requiredString(body, "cid", 200));
        boolean removed;
        try {
            removed = store.remove(id);
        } catch (IOException e) {
            throw new ControlException(500, "cannot remove " + id.hex() + ": " + describe(e));
        }
        if (!removed) {
            throw ControlException.notFound("not in the store: " + id.hex());
        }
        for (ContentProtocol p : protocols.protocols()) {
            try {
                p.stopSeeding(id);
            } catch (RuntimeException e) {
                LOG.warning(p.name() + " cannot stop seeding " + id.shortHex() + ": " + e);
            }
        }
        JsonObject o = new JsonObject();
        o.addProperty("removed", id.hex());
        return o;
    }

    // ---- transfers ----

    private JsonElement download(JsonObject body) {
        String ident = ControlJson.requiredString(body, "id", MAX_ID).strip();
        List<PeerInfo> sources = new ArrayList<>();
        for (String s : ControlJson.stringList(body, "from", MAX_SOURCES, MAX_SOURCE_LENGTH)) {
            try {
                sources.add(PeerInfo.parse(s, "http"));
            } catch (IllegalArgumentException e) {
                throw ControlException.badRequest(e.getMessage());
            }
        }
        String outText = ControlJson.optionalString(body, "out", MAX_PATH);
        Path out = outText == null ? null : absolutePath(outText, "out");
        java.time.Duration sourceTimeout = null;
        com.google.gson.JsonElement st = body.get("sourceTimeout");
        if (st != null && !st.isJsonNull()) {
            if (!st.isJsonPrimitive() || !st.getAsJsonPrimitive().isNumber() || st.getAsDouble() < 0
                    || st.getAsDouble() > 30L * 24 * 3600 || st.getAsDouble() != Math.floor(st.getAsDouble())) {
                throw ControlException.badRequest("field \"sourceTimeout\" must be whole seconds from 0 (wait for ever) "
                        + "to 30 days");
            }
            sourceTimeout = java.time.Duration.ofSeconds(st.getAsLong());
        }
        DhtApi.Discovery found = null;
        if (sources.isEmpty() && FileId.isCid(ident)
                && protocols.transfer(FileId.parse(ident)).map(t -> t.state().isFinal()).orElse(true)
                && !verifiedCopyIn(FileId.parse(ident), out)) {
            found = dht.discover(FileId.parse(ident));
            if (found.sources().isEmpty()) {
                throw ControlException.notFound(found.providers() == 0
                        ? "no providers of " + ident + " found in the Chiral DHT (give sources with --from HOST:PORT)"
                        : found.providers() + " provider(s) of " + ident + " found, but none over a protocol installed here");
            }
            sources.addAll(found.sources());
        }
        TransferHandle h;
        try {
            h = protocols.download(new DownloadRequest(ident, sources, out, sourceTimeout));
        } catch (IllegalArgumentException e) {
            throw ControlException.badRequest(describe(e));
        }
        JsonObject o = new JsonObject();
        o.addProperty("id", h.id());
        o.addProperty("cid", h.fileId() == null ? null : h.fileId().hex());
        o.addProperty("state", h.state().name());
        if (found != null) {
            o.addProperty("providers", found.providers());
            o.addProperty("sources", found.sources().size());
        }
        return o;
    }

    /** True when the store has the complete, unchanged file in {@code out} (default: the downloads folder). */
    private boolean verifiedCopyIn(FileId id, Path out) {
        Path dir = out != null ? out : Path.of(node.dataDir()).resolve("downloads");
        try {
            Optional<Path> have = store.contentPath(id);
            return have.isPresent() && have.get().getParent() != null && Files.isSameFile(have.get().getParent(), dir);
        } catch (IOException | UncheckedIOException e) {
            return false;
        }
    }

    private JsonElement transfers() {
        JsonArray out = new JsonArray();
        for (TransferHandle h : protocols.transfers()) {
            out.add(ControlJson.progress(h));
        }
        return out;
    }

    private JsonElement transfer(String id) {
        return ControlJson.progress(handle(id));
    }

    /** Peers of a transfer or shared file, across protocols: {@code peers ID}. */
    private JsonElement peers(String id) {
        String key = id.strip().toLowerCase(java.util.Locale.ROOT);
        if (!key.matches("[0-9a-f]{40}|[0-9a-f]{64}")) {
            throw ControlException.badRequest("not a CID (64 hex) or BitTorrent info-hash (40 hex): '" + abbreviate(id) + "'");
        }
        JsonArray out = new JsonArray();
        // an info-hash may name a torrent that is only shared (not a transfer): those simply list no peers when unknown
        boolean known = key.length() == 40 || protocols.transfer(key).isPresent()
                || store.metadata(FileId.parse(key)).isPresent();
        for (ContentProtocol p : protocols.protocols()) {
            List<io.chiral.api.PeerStatus> list;
            try {
                list = p.peerStatus(key);
            } catch (RuntimeException e) {
                LOG.warning(p.name() + " cannot list peers of " + key + ": " + e);
                continue;
            }
            if (!list.isEmpty()) {
                known = true;
            }
            for (io.chiral.api.PeerStatus ps : list) {
                JsonObject o = new JsonObject();
                o.addProperty("protocol", ps.peer().protocol());
                o.addProperty("address", ps.peer().address());
                o.addProperty("client", ps.peer().client());
                o.addProperty("nodeId", ps.peer().nodeId());
                o.add("flags", ControlJson.strings(new ArrayList<>(new java.util.TreeSet<>(ps.flags()))));
                o.addProperty("downloadRate", ps.downloadRate());
                o.addProperty("uploadRate", ps.uploadRate());
                o.addProperty("downloaded", ps.downloaded());
                o.addProperty("uploaded", ps.uploaded());
                o.addProperty("progress", Math.round(ps.progress() * 1000) / 1000.0);
                out.add(o);
            }
        }
        if (!known) {
            throw ControlException.notFound("no transfer or shared file " + key);
        }
        return out;
    }

    private JsonElement control(String cid, String action) {
        if (!List.of("pause", "resume", "cancel").contains(action)) {
            throw ControlException.notFound("unknown transfer action '" + abbreviate(action)
                    + "' (use pause, resume or cancel)");
        }
        TransferHandle h = handle(cid);
        if (h.state().isFinal()) {
            throw ControlException.conflict("cannot " + action + " the transfer of " + h.id() + ": it is "
                    + h.state().name().toLowerCase(java.util.Locale.ROOT));
        }
        switch (action) {
            case "pause" -> h.pause();
            case "resume" -> h.resume();
            default -> h.cancel();
        }
        return ControlJson.progress(h);
    }

    private TransferHandle handle(String id) {
        String key = id.strip().toLowerCase(java.util.Locale.ROOT);
        if (!key.matches("[0-9a-f]{40}|[0-9a-f]{64}")) {
            ControlJson.cid(id); // throws the CID error message
        }
        return protocols.transfer(key).orElseThrow(() -> ControlException.notFound("no transfer of " + key));
    }

    // ---- provisioning ----

    private Provisioner provisioner() {
        Provisioner p = provisioner.get();
        if (p == null) {
            throw new ControlException(503, "provisioning is not available in this runtime");
        }
        return p;
    }

    private JsonElement install(JsonObject body) {
        String repoText = ControlJson.requiredString(body, "repository", MAX_PATH);
        String feature = featureId(body);
        URI repository;
        try {
            repository = new URI(repoText.strip());
        } catch (URISyntaxException e) {
            throw ControlException.badRequest("not a repository URL: '" + abbreviate(repoText) + "'");
        }
        if (!repository.isAbsolute()) {
            throw ControlException.badRequest("repository must be a URL or a file: URI, got '" + abbreviate(repoText) + "'");
        }
        Provisioner p = provisioner();
        List<String> installed = provision(() -> p.install(repository, feature), "install " + feature);
        JsonObject o = new JsonObject();
        o.add("installed", ControlJson.strings(installed));
        return o;
    }

    private JsonElement uninstall(JsonObject body) {
        String feature = featureId(body);
        Provisioner p = provisioner();
        List<String> removed = provision(() -> p.uninstall(feature), "uninstall " + feature);
        JsonObject o = new JsonObject();
        o.add("uninstalled", ControlJson.strings(removed));
        return o;
    }

    private JsonElement features() {
        return ControlJson.strings(provisioner().installedFeatures());
    }

    private static String featureId(JsonObject body) {
        String feature = ControlJson.requiredString(body, "feature", 200).strip();
        if (!FEATURE_ID.matcher(feature).matches()) {
            throw ControlException.badRequest("not a feature id: '" + abbreviate(feature) + "'");
        }
        return feature;
    }

    /** A provisioning call that may throw anything. */
    private interface Provisioning {
        List<String> run() throws Exception;
    }

    private static List<String> provision(Provisioning call, String what) {
        try {
            return call.run();
        } catch (IllegalArgumentException e) {
            throw ControlException.badRequest(describe(e));
        } catch (IllegalStateException e) {
            throw ControlException.conflict(describe(e));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ControlException(503, "cannot " + what + ": the node is stopping");
        } catch (Exception e) {
            LOG.log(Level.WARNING, "cannot " + what, e);
            throw new ControlException(500, "cannot " + what + ": " + describe(e));
        }
    }

    // ---- helpers ----

    private static Path absolutePath(String text, String field) {
        Path p;
        try {
            p = Path.of(text);
        } catch (InvalidPathException e) {
            throw ControlException.badRequest("field \"" + field + "\" is not a path: " + e.getReason());
        }
        if (!p.isAbsolute()) {
            throw ControlException.badRequest("field \"" + field + "\" must be an absolute path, got '" + abbreviate(text) + "'");
        }
        return p.normalize();
    }

    private static String abbreviate(String s) {
        return s.length() <= 100 ? s : s.substring(0, 97) + "...";
    }

    /** The innermost message of {@code e}, or its class name when it has none. */
    static String describe(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t
                && (t.getMessage() == null || t instanceof java.util.concurrent.CompletionException
                        || t instanceof java.util.concurrent.ExecutionException || t instanceof UncheckedIOException)) {
            t = t.getCause();
        }
        String m = t.getMessage();
        return m == null || m.isBlank() ? t.getClass().getSimpleName() : m;
    }
}
