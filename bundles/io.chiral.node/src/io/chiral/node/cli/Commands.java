package io.chiral.node.cli;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

/** The client commands: each one asks the node over the control channel and prints the answer. */
final class Commands {
    static final String USAGE = String.join("\n",
            "usage: chiral [--data DIR] [--json] <command> [args]",
            "  daemon [--data DIR] [options]               start a node in the foreground (see chiral daemon --help)",
            "  id                                          show this node's id and listen addresses",
            "  add FILE                                    add a file and seed it; prints its CID on the last line",
            "  add --protocol bittorrent FILE [--tracker URL]...",
            "                                              also share it as a torrent: writes FILE.torrent and",
            "                                              prints the magnet link on the last line",
            "  get ID [--from HOST:PORT[,...]] [-o OUTDIR] download a CID, http://HOST:PORT/file/CID, a magnet link or",
            "                                              a FILE.torrent; prints the path last",
            "                                              (without --from, the providers are found in the Chiral DHT)",
            "      [--source-timeout D]                    fail when no source was usable for D (30s, 3m; default: the",
            "                                              node's, 3m; 0 = wait for ever); get again resumes",
            "  search WORD                                 find files whose name has WORD (Chiral DHT keyword index)",
            "  dht peers                                   the DHT routing tables (Chiral network and mainline)",
            "  dht stats                                   DHT counters: routing table, storage, queries, timeouts",
            "  dht find CID                                the file record and the providers of a CID",
            "  dht get KEY                                 the signed records under a key (CID, providers::CID,",
            "                                              keyword_idx::WORD, info_hash_idx::BTIH)",
            "  ls                                          list the files this node seeds",
            "  rm CID                                      stop seeding a file (the file itself stays)",
            "  protocols                                   list the installed protocols and their addresses",
            "  transfers                                   list the downloads of this run",
            "  peers ID                                    peers of a transfer or shared file (CID or info-hash):",
            "                                              client, flags (chiral, seed, ...), rates",
            "  pause CID                                   pause a download",
            "  resume CID                                  resume a paused download",
            "  cancel CID                                  cancel a download and delete its partial file",
            "  install --repo URL|DIR FEATURE              install a feature (protocol) from a p2 update site",
            "  uninstall FEATURE                           uninstall a feature",
            "  features                                    list the installed features",
            "  stop                                        stop the node",
            "  help                                        show this help",
            "DIR defaults to $CHIRAL_DATA or ~/.chiral; --json prints the node's JSON answers.");
    private static final Pattern SCHEME = Pattern.compile("[A-Za-z][A-Za-z0-9+.\\-]+:.*");
    private static final long STOP_WAIT_MILLIS = 30_000;

    private final Path dataDir;
    private final boolean json;
    private final PrintStream out;
    private final PrintStream err;

    Commands(Path dataDir, boolean json, PrintStream out, PrintStream err) {
        this.dataDir = dataDir;
        this.json = json;
        this.out = out;
        this.err = err;
    }

    /** Runs {@code command}; returns the exit status. */
    int run(String command, List<String> args) throws CliException {
        switch (command) {
            case "help" -> out.println(USAGE);
            case "id" -> id(none(command, args));
            case "add" -> add(args);
            case "peers" -> peers(one(command, args, "ID"));
            case "get" -> {
                return new Transfers(client(), json, out, err).get(args);
            }
            case "ls" -> ls(none(command, args));
            case "search" -> search(one(command, args, "WORD"));
            case "dht" -> dht(args);
            case "rm" -> rm(cid(one(command, args, "CID")));
            case "protocols" -> protocols(none(command, args));
            case "transfers" -> transfers(none(command, args));
            case "pause", "resume", "cancel" -> control(command, transferId(one(command, args, "ID")));
            case "install" -> install(args);
            case "uninstall" -> uninstall(one(command, args, "FEATURE"));
            case "features" -> features(none(command, args));
            case "stop" -> stop(none(command, args));
            case "daemon" -> throw CliException.usage("daemon: start a node with the chiral script: chiral daemon --data " + dataDir);
            default -> throw CliException.usage("unknown command '" + command + "' (see chiral help)");
        }
        return 0;
    }

    private ControlClient client() throws CliException {
        return ControlClient.connect(dataDir);
    }

    private void printJson(JsonElement e) {
        out.println(Json.PRETTY.toJson(e));
    }

    private void id(ControlClient c) throws CliException {
        JsonObject o = c.get("id").getAsJsonObject();
        if (json) {
            printJson(o);
            return;
        }
        out.println("id " + o.get("id").getAsString());
        for (JsonElement a : o.getAsJsonArray("addresses")) {
            JsonObject addr = a.getAsJsonObject();
            out.println(addr.get("protocol").getAsString() + " " + addr.get("address").getAsString());
        }
        if (o.has("dht")) {
            for (JsonElement d : o.getAsJsonArray("dht")) {
                JsonObject dht = d.getAsJsonObject();
                String network = dht.get("network").getAsString();
                if (dht.has("addresses")) {
                    for (JsonElement a : dht.getAsJsonArray("addresses")) {
                        out.println("dht " + network + " " + a.getAsString());
                    }
                } else {
                    out.println("dht " + network + " " + dht.get("address").getAsString());
                }
            }
        }
    }

    private void search(String word) throws CliException {
        JsonObject body = new JsonObject();
        body.addProperty("word", word);
        JsonArray found = client().post("search", body, java.time.Duration.ofMinutes(1)).getAsJsonArray();
        if (json) {
            printJson(found);
            return;
        }
        if (found.isEmpty()) {
            err.println("no files found for '" + word + "'");
        }
        for (JsonElement e : found) {
            JsonObject f = e.getAsJsonObject();
            out.println(f.get("cid").getAsString() + "  " + Units.mib(f.get("size").getAsLong()) + "  "
                    + f.get("name").getAsString());
        }
    }

    private void dht(List<String> args) throws CliException {
        if (args.isEmpty()) {
            throw CliException.usage("dht: expected peers, stats, find CID or get KEY");
        }
        String sub = args.get(0);
        List<String> rest = args.subList(1, args.size());
        switch (sub) {
            case "peers" -> {
                none("dht peers", rest);
                JsonObject o = client().get("dht/peers").getAsJsonObject();
                if (json) {
                    printJson(o);
                    return;
                }
                for (String network : o.keySet()) {
                    JsonArray a = o.getAsJsonArray(network);
                    out.println(network + ": " + a.size() + (a.size() == 1 ? " node" : " nodes"));
                    for (JsonElement e : a) {
                        JsonObject c = e.getAsJsonObject();
                        out.println("  " + c.get("id").getAsString() + "  " + c.get("address").getAsString()
                                + (c.get("failures").getAsInt() > 0 ? "  (" + c.get("failures").getAsInt() + " failed)" : ""));
                    }
                }
            }
            case "stats" -> {
                none("dht stats", rest);
                JsonArray a = client().get("dht/stats").getAsJsonArray();
                if (json) {
                    printJson(a);
                    return;
                }
                for (JsonElement e : a) {
                    JsonObject s = e.getAsJsonObject();
                    out.println(s.get("network").getAsString() + "  id " + s.get("nodeId").getAsString() + "  udp "
                            + s.get("address").getAsString());
                    out.println("  routing table " + s.get("routingTable").getAsInt() + " nodes in "
                            + s.get("buckets").getAsInt() + " buckets; stored " + s.get("storedRecords").getAsInt()
                            + " records, " + s.get("storedPeers").getAsInt() + " peers, " + s.get("storedItems").getAsInt()
                            + " items");
                    out.println("  queries in " + s.get("queriesIn").getAsLong() + ", out " + s.get("queriesOut").getAsLong()
                            + ", answers " + s.get("responsesIn").getAsLong() + ", timeouts " + s.get("timeouts").getAsLong()
                            + ", dropped packets " + s.get("dropped").getAsLong());
                }
            }
            case "find" -> {
                String cid = cid(one("dht find", rest, "CID"));
                JsonObject body = new JsonObject();
                body.addProperty("cid", cid);
                JsonObject o = client().post("dht/find", body, java.time.Duration.ofMinutes(1)).getAsJsonObject();
                if (json) {
                    printJson(o);
                    return;
                }
                if (o.has("file")) {
                    JsonObject f = o.getAsJsonObject("file");
                    out.println(f.get("name").getAsString() + "  " + Units.mib(f.get("size").getAsLong()) + "  "
                            + f.get("chunks").getAsInt() + " chunks  merkle " + f.get("merkleRoot").getAsString());
                } else {
                    out.println("no file record for " + cid);
                }
                JsonArray ps = o.getAsJsonArray("providers");
                out.println(ps.size() + (ps.size() == 1 ? " provider" : " providers"));
                for (JsonElement e : ps) {
                    JsonObject p = e.getAsJsonObject();
                    StringBuilder b = new StringBuilder("  " + p.get("nodeId").getAsString());
                    for (String proto : p.getAsJsonObject("protocols").keySet()) {
                        for (JsonElement a : p.getAsJsonObject("protocols").getAsJsonArray(proto)) {
                            b.append("  ").append(proto).append("://").append(a.getAsString());
                        }
                    }
                    b.append("  ").append(p.get("chunks").getAsInt()).append('/').append(p.get("totalChunks").getAsInt())
                            .append(" chunks");
                    if (p.get("self").getAsBoolean()) {
                        b.append("  (this node)");
                    }
                    out.println(b);
                }
            }
            case "get" -> {
                String key = one("dht get", rest, "KEY");
                JsonObject body = new JsonObject();
                body.addProperty("key", key);
                JsonArray a = client().post("dht/get", body, java.time.Duration.ofMinutes(1)).getAsJsonArray();
                if (json || !a.isEmpty()) {
                    printJson(a);
                }
                if (!json && a.isEmpty()) {
                    err.println("no records under '" + key + "'");
                }
            }
            default -> throw CliException.usage("dht: unknown subcommand '" + sub + "' (peers, stats, find CID, get KEY)");
        }
    }

    private void add(List<String> args) throws CliException {
        String file = null;
        String protocol = null;
        List<String> trackers = new ArrayList<>();
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals("--protocol") || a.equals("--tracker")) {
                if (i + 1 >= args.size()) {
                    throw CliException.usage("add: " + a + " needs a value");
                }
                String v = args.get(++i);
                if (a.equals("--protocol")) {
                    protocol = v;
                } else {
                    trackers.add(v);
                }
            } else if (a.startsWith("--protocol=")) {
                protocol = a.substring("--protocol=".length());
            } else if (a.startsWith("--tracker=")) {
                trackers.add(a.substring("--tracker=".length()));
            } else if (a.startsWith("-") && a.length() > 1) {
                throw CliException.usage("add: unknown option '" + a + "' (see chiral help)");
            } else if (file == null) {
                file = a;
            } else {
                throw CliException.usage("add: unexpected argument '" + a + "' (one FILE at a time)");
            }
        }
        if (file == null) {
            throw CliException.usage("add: expected FILE");
        }
        if (!trackers.isEmpty() && protocol == null) {
            throw CliException.usage("add: --tracker needs --protocol bittorrent");
        }
        for (String t : trackers) {
            if (!t.matches("(?i)(http|udp)://[^\\s/]+.*")) {
                throw CliException.usage("add: not a tracker URL (http://HOST:PORT/announce or udp://HOST:PORT): '" + t + "'");
            }
        }
        Path p;
        try {
            p = Path.of(file).toAbsolutePath().normalize();
        } catch (InvalidPathException e) {
            throw CliException.usage("add: not a file name: '" + file + "'");
        }
        java.nio.file.attribute.BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new CliException("no such file: " + p);
        } catch (java.nio.file.AccessDeniedException e) {
            throw new CliException("cannot read " + p + ": permission denied");
        } catch (java.io.IOException e) {
            throw new CliException("cannot read " + p + ": " + e.getMessage());
        }
        if (!attrs.isRegularFile()) {
            throw new CliException("not a regular file: " + p + " (only files can be added)");
        }
        JsonObject body = new JsonObject();
        body.addProperty("path", p.toString());
        if (protocol != null) {
            body.addProperty("protocol", protocol);
            JsonArray t = new JsonArray();
            trackers.forEach(t::add);
            body.add("trackers", t);
        }
        JsonObject m = client().post("add", body, null).getAsJsonObject();
        if (json) {
            printJson(m);
            return;
        }
        if (m.has("path") && !m.get("path").getAsString().equals(p.toString())) {
            out.println("sharing " + m.get("path").getAsString() + " (" + p + " is a link to it)");
        }
        long chunks = m.get("chunks").getAsLong();
        out.println("added " + m.get("name").getAsString() + " " + m.get("size").getAsLong() + " bytes, " + chunks
                + (chunks == 1 ? " chunk" : " chunks"));
        if (protocol != null && m.has(protocol.toLowerCase(Locale.ROOT))) {
            JsonObject shared = m.getAsJsonObject(protocol.toLowerCase(Locale.ROOT));
            out.println(m.get("cid").getAsString());
            for (var e : shared.entrySet()) {
                if (!e.getKey().equals("magnet")) {
                    out.println(e.getKey() + " " + e.getValue().getAsString());
                }
            }
            if (shared.has("magnet")) {
                out.println(shared.get("magnet").getAsString());
            }
            return;
        }
        out.println(m.get("cid").getAsString());
    }

    private void peers(String id) throws CliException {
        String key = id.strip().toLowerCase(Locale.ROOT);
        if (!key.matches("[0-9a-f]{40}|[0-9a-f]{64}")) {
            throw CliException.usage("peers: expected a CID (64 hex) or a BitTorrent info-hash (40 hex), got '" + id + "'");
        }
        JsonArray list = client().get("peers/" + key).getAsJsonArray();
        if (json) {
            printJson(list);
            return;
        }
        if (list.isEmpty()) {
            out.println("no peers");
            return;
        }
        out.println(String.format(Locale.ROOT, "%-10s %-22s %-20s %-34s %10s %10s %6s", "PROTOCOL", "ADDRESS", "CLIENT",
                "FLAGS", "DOWN/s", "UP/s", "HAS"));
        for (JsonElement e : list) {
            JsonObject o = e.getAsJsonObject();
            List<String> flags = new ArrayList<>();
            o.getAsJsonArray("flags").forEach(f -> flags.add(f.getAsString()));
            String client = o.get("client") == null || o.get("client").isJsonNull() ? "?" : o.get("client").getAsString();
            out.println(String.format(Locale.ROOT, "%-10s %-22s %-20s %-34s %10s %10s %5d%%", o.get("protocol").getAsString(),
                    o.get("address").getAsString(), client.length() > 20 ? client.substring(0, 20) : client,
                    flags.isEmpty() ? "-" : String.join(",", flags), Units.rate(o.get("downloadRate").getAsLong()),
                    Units.rate(o.get("uploadRate").getAsLong()), Math.round(o.get("progress").getAsDouble() * 100)));
        }
    }

    private void ls(ControlClient c) throws CliException {
        JsonArray files = c.get("ls").getAsJsonArray();
        if (json) {
            printJson(files);
            return;
        }
        for (JsonElement e : files) {
            JsonObject f = e.getAsJsonObject();
            out.println(f.get("cid").getAsString() + "  " + f.get("size").getAsLong() + "  " + f.get("name").getAsString());
        }
    }

    private void rm(String cid) throws CliException {
        JsonObject body = new JsonObject();
        body.addProperty("cid", cid);
        JsonElement r = client().post("rm", body, ControlClient.QUICK);
        if (json) {
            printJson(r);
        } else {
            out.println("removed " + cid);
        }
    }

    private void protocols(ControlClient c) throws CliException {
        JsonArray list = c.get("protocols").getAsJsonArray();
        if (json) {
            printJson(list);
            return;
        }
        if (list.isEmpty()) {
            out.println("no protocols installed");
            return;
        }
        for (JsonElement e : list) {
            JsonObject p = e.getAsJsonObject();
            List<String> addresses = new ArrayList<>();
            p.getAsJsonArray("addresses").forEach(a -> addresses.add(a.getAsString()));
            out.println(p.get("name").getAsString() + (addresses.isEmpty() ? "" : " " + String.join(",", addresses)));
        }
    }

    private void transfers(ControlClient c) throws CliException {
        JsonArray list = c.get("transfers").getAsJsonArray();
        if (json) {
            printJson(list);
            return;
        }
        if (list.isEmpty()) {
            out.println("no transfers");
            return;
        }
        for (JsonElement e : list) {
            out.println(Transfers.line(e.getAsJsonObject()));
        }
    }

    private void control(String action, String cid) throws CliException {
        JsonObject p = client().post("transfers/" + cid + "/" + action, new JsonObject(), ControlClient.QUICK).getAsJsonObject();
        if (json) {
            printJson(p);
        } else {
            out.println(Transfers.line(p));
        }
    }

    private void install(List<String> args) throws CliException {
        String repo = null;
        String feature = null;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals("--repo")) {
                if (i + 1 >= args.size()) {
                    throw CliException.usage("install: --repo needs a URL or directory");
                }
                repo = args.get(++i);
            } else if (a.startsWith("--repo=")) {
                repo = a.substring("--repo=".length());
            } else if (a.startsWith("-")) {
                throw CliException.usage("install: unknown option '" + a + "' (see chiral help)");
            } else if (feature == null) {
                feature = a;
            } else {
                throw CliException.usage("install: unexpected argument '" + a + "'");
            }
        }
        if (repo == null || repo.isBlank() || feature == null) {
            throw CliException.usage("install: expected --repo URL|DIR FEATURE");
        }
        JsonObject body = new JsonObject();
        body.addProperty("repository", repositoryUri(repo));
        body.addProperty("feature", feature);
        JsonObject r = client().post("install", body, null).getAsJsonObject();
        printBundles(r, "installed", "nothing new installed (already there?)");
    }

    /** A URL as given; a directory (or archive) as its file: URI. */
    private static String repositoryUri(String repo) throws CliException {
        if (SCHEME.matcher(repo).matches()) {
            return repo;
        }
        Path p;
        try {
            p = Path.of(repo).toAbsolutePath().normalize();
        } catch (InvalidPathException e) {
            throw CliException.usage("install: not a URL or directory: '" + repo + "'");
        }
        if (!Files.exists(p)) {
            throw new CliException("no such update site: " + p);
        }
        return p.toUri().toString();
    }

    private void uninstall(String feature) throws CliException {
        JsonObject body = new JsonObject();
        body.addProperty("feature", feature);
        JsonObject r = client().post("uninstall", body, null).getAsJsonObject();
        printBundles(r, "uninstalled", "nothing uninstalled");
    }

    private void printBundles(JsonObject r, String field, String none) {
        if (json) {
            printJson(r);
            return;
        }
        JsonArray bundles = r.getAsJsonArray(field);
        if (bundles.isEmpty()) {
            out.println(none);
        }
        for (JsonElement b : bundles) {
            out.println(field + " " + b.getAsString());
        }
    }

    private void features(ControlClient c) throws CliException {
        JsonArray list = c.get("features").getAsJsonArray();
        if (json) {
            printJson(list);
            return;
        }
        if (list.isEmpty()) {
            out.println("no features installed");
        }
        for (JsonElement e : list) {
            out.println(e.getAsString());
        }
    }

    private void stop(ControlClient c) throws CliException {
        JsonElement r = c.post("stop", new JsonObject(), ControlClient.QUICK);
        long deadline = System.nanoTime() + STOP_WAIT_MILLIS * 1_000_000L;
        try {
            while (c.stillRunning()) {
                if (System.nanoTime() > deadline) {
                    throw new CliException("the node did not stop within " + STOP_WAIT_MILLIS / 1000 + " s");
                }
                Thread.sleep(200);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException("interrupted while waiting for the node to stop");
        }
        if (json) {
            printJson(r);
        } else {
            out.println("stopped");
        }
    }

    // ---- arguments ----

    private ControlClient none(String command, List<String> args) throws CliException {
        if (!args.isEmpty()) {
            throw CliException.usage(command + ": unexpected argument '" + args.get(0) + "' (see chiral help)");
        }
        return client();
    }

    private static String one(String command, List<String> args, String what) throws CliException {
        if (args.size() != 1 || args.get(0).isEmpty()) {
            throw CliException.usage(command + ": expected " + what + " (see chiral help)");
        }
        return args.get(0);
    }

    /** Checks a CID (64 hex characters, SHA-256) and returns it in lower case. */
    /** A transfer id: a CID, or the 40-hex info-hash of a torrent. */
    static String transferId(String text) throws CliException {
        if (text.length() == 40 && text.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
            return text.toLowerCase(java.util.Locale.ROOT);
        }
        return cid(text);
    }

    static String cid(String text) throws CliException {
        if (text.length() != 64) {
            throw CliException.usage("not a CID: expected 64 hex characters (SHA-256), got " + text.length()
                    + " characters: '" + abbreviate(text) + "'");
        }
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
                throw CliException.usage("not a CID: '" + abbreviate(text) + "' has a non-hex character at position " + i);
            }
        }
        return text.toLowerCase(java.util.Locale.ROOT);
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }
}
