package io.chiral.node.cli;

import java.io.Console;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;

/** {@code chiral get}: starts a download on the node, follows it to the end and reports where the file went. */
final class Transfers {
    private static final long POLL_MILLIS = 200;
    private static final int MAX_SOURCES = 64;
    /** Anything with a scheme (http://…, magnet:…) goes to the node's protocols; everything else must be a CID. */
    private static final Pattern URI_LIKE = Pattern.compile("[A-Za-z][A-Za-z0-9+.\\-]*:.+");

    private final ControlClient client;
    private final boolean json;
    private final PrintStream out;
    private final PrintStream err;

    Transfers(ControlClient client, boolean json, PrintStream out, PrintStream err) {
        this.client = client;
        this.json = json;
        this.out = out;
        this.err = err;
    }

    /**
     * {@code get ID [--from HOST:PORT[,HOST:PORT...]]... [-o OUTDIR] [--source-timeout DURATION]}; returns the exit
     * status.
     */
    int get(List<String> args) throws CliException {
        String id = null;
        List<String> from = new ArrayList<>();
        String outDir = null;
        Long sourceTimeout = null;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.equals("--source-timeout") || a.startsWith("--source-timeout=")) {
                String v = a.contains("=") ? a.substring(a.indexOf('=') + 1) : null;
                if (v == null) {
                    if (i + 1 >= args.size()) {
                        throw CliException.usage("get: " + a + " needs a duration (e.g. 30s, 3m; 0 = wait for ever)");
                    }
                    v = args.get(++i);
                }
                sourceTimeout = seconds(v);
            } else if (a.equals("--from") || a.equals("-o") || a.equals("--output")) {
                if (i + 1 >= args.size()) {
                    throw CliException.usage("get: " + a + " needs a value");
                }
                String v = args.get(++i);
                if (a.equals("--from")) {
                    addSources(from, v);
                } else {
                    outDir = v;
                }
            } else if (a.startsWith("--from=")) {
                addSources(from, a.substring("--from=".length()));
            } else if (a.startsWith("--output=")) {
                outDir = a.substring("--output=".length());
            } else if (a.startsWith("-") && a.length() > 1) {
                throw CliException.usage("get: unknown option '" + a + "' (see chiral help)");
            } else if (id == null) {
                id = a;
            } else {
                throw CliException.usage("get: unexpected argument '" + a + "' (one ID at a time)");
            }
        }
        if (id == null) {
            throw CliException.usage("get: expected ID (a CID, http://HOST:PORT/file/CID, a magnet link or a FILE.torrent)");
        }
        if (id.toLowerCase(Locale.ROOT).endsWith(".torrent") && !URI_LIKE.matcher(id).matches()
                || (!URI_LIKE.matcher(id).matches() && java.nio.file.Files.isRegularFile(Path.of(id)))) {
            Path t = Path.of(absolute(id));
            if (!java.nio.file.Files.isRegularFile(t)) {
                throw new CliException("no such file: " + t);
            }
            id = t.toString();
        } else if (!URI_LIKE.matcher(id).matches()) {
            id = Commands.cid(id);
        }
        JsonObject body = new JsonObject();
        body.addProperty("id", id);
        JsonArray sources = new JsonArray();
        from.forEach(sources::add);
        body.add("from", sources);
        body.add("out", outDir == null ? JsonNull.INSTANCE : new com.google.gson.JsonPrimitive(absolute(outDir)));
        if (sourceTimeout != null) {
            body.addProperty("sourceTimeout", sourceTimeout);
        }
        if (from.isEmpty() && !json && id.length() == 64 && !id.contains("/")) {
            err.println("looking up providers of " + id + " in the Chiral DHT ...");
        }
        JsonObject started = client.post("get", body, Duration.ofMinutes(2)).getAsJsonObject();
        String cid = started.get("id").getAsString();
        if (started.has("providers") && !json) {
            int p = started.get("providers").getAsInt();
            int s = started.get("sources").getAsInt();
            err.println("found " + p + (p == 1 ? " provider" : " providers") + " (" + s + (s == 1 ? " source" : " sources")
                    + " over protocols installed here)");
        }
        JsonObject progress = follow(cid);
        return report(cid, progress);
    }

    private static void addSources(List<String> into, String value) throws CliException {
        for (String s : value.split(",")) {
            String t = s.strip();
            if (!t.isEmpty()) {
                into.add(t);
            }
        }
        if (into.size() > MAX_SOURCES) {
            throw CliException.usage("get: at most " + MAX_SOURCES + " sources");
        }
    }

    /** {@code 30s}, {@code 3m}, {@code 1h} or plain seconds. */
    static long seconds(String v) throws CliException {
        java.util.regex.Matcher m = Pattern.compile("(\\d{1,7})([smh]?)").matcher(v.strip().toLowerCase(Locale.ROOT));
        if (!m.matches()) {
            throw CliException.usage("get: --source-timeout: not a duration (e.g. 30s, 3m, 1h): '" + v + "'");
        }
        long n = Long.parseLong(m.group(1));
        long s = switch (m.group(2)) {
            case "m" -> n * 60;
            case "h" -> n * 3600;
            default -> n;
        };
        if (s > 30L * 24 * 3600) {
            throw CliException.usage("get: --source-timeout: at most 30 days");
        }
        return s;
    }

    private static String absolute(String dir) throws CliException {
        try {
            return Path.of(dir).toAbsolutePath().normalize().toString();
        } catch (InvalidPathException e) {
            throw CliException.usage("get: not a directory name: '" + dir + "'");
        }
    }

    /** Polls until the transfer ends, drawing a progress line on a terminal. */
    private JsonObject follow(String cid) throws CliException {
        ProgressLine line = !json && terminal() ? new ProgressLine() : null;
        String lastStatus = null;
        long lastStatusNanos = 0;
        String seenStatus = null;
        long seenNanos = 0;
        try {
            while (true) {
                JsonObject p = client.get("transfers/" + cid).getAsJsonObject();
                if (isFinal(p.get("state").getAsString())) {
                    return p;
                }
                if (line != null) {
                    err.print(line.render(p, System.nanoTime()));
                    err.flush();
                } else if (!json) {
                    // no terminal to redraw: say what the transfer waits for once it lasted 2 s, and when that
                    // changes (at most every 10 s)
                    String status = text(p, "status");
                    String kind = status == null ? null : status.replaceAll(" \\(giving up in \\d+ s\\)", "");
                    long now = System.nanoTime();
                    if (kind == null || !kind.equals(seenStatus)) {
                        seenStatus = kind;
                        seenNanos = now;
                    }
                    if (kind != null && !kind.equals(lastStatus) && now - seenNanos >= 2_000_000_000L
                            && (lastStatus == null || now - lastStatusNanos > 10_000_000_000L)) {
                        err.println(status);
                        err.flush();
                        lastStatus = kind;
                        lastStatusNanos = now;
                    }
                }
                Thread.sleep(POLL_MILLIS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException("interrupted; the download goes on in the node (see chiral transfers)");
        } finally {
            if (line != null) {
                err.print(line.clear());
                err.flush();
            }
        }
    }

    private int report(String cid, JsonObject p) throws CliException {
        String state = p.get("state").getAsString();
        long fetched = p.get("fetchedBytes").getAsLong();
        double seconds = p.get("elapsedSeconds").getAsDouble();
        if (json) {
            JsonObject o = p.deepCopy();
            o.addProperty("mibPerSecond", Math.round(Units.mibPerSecond(fetched, seconds) * 100.0) / 100.0);
            out.println(Json.PRETTY.toJson(o));
        }
        switch (state) {
            case "COMPLETED" -> {
                if (!json) {
                    long size = p.get("totalBytes").getAsLong();
                    long resumed = p.get("resumedBytes").getAsLong();
                    int n = activeSources(p);
                    out.println("downloaded " + p.get("name").getAsString() + ": " + size + " bytes in "
                            + Units.decimal(seconds, 2) + " s (" + Units.decimal(Units.mibPerSecond(fetched, seconds), 1)
                            + " MiB/s) from " + n + (n == 1 ? " source" : " sources")
                            + (resumed > 0 ? ", " + resumed + " bytes resumed from disk" : ""));
                    out.println(text(p, "output"));
                }
                return 0;
            }
            case "CANCELLED" -> throw new CliException("the download of " + cid + " was cancelled");
            default -> {
                String error = text(p, "error");
                throw new CliException(error == null ? "the download of " + cid + " failed" : error);
            }
        }
    }

    static boolean isFinal(String state) {
        return state.equals("COMPLETED") || state.equals("FAILED") || state.equals("CANCELLED");
    }

    /** Sources that delivered or may deliver: not banned, and not dropped before they delivered anything. */
    static int activeSources(JsonObject p) {
        Set<String> banned = new HashSet<>();
        for (JsonElement e : p.getAsJsonArray("bannedSources")) {
            banned.add(e.getAsString());
        }
        JsonObject dropped = p.has("droppedSources") ? p.getAsJsonObject("droppedSources") : new JsonObject();
        int n = 0;
        for (var e : p.getAsJsonObject("bytesPerSource").entrySet()) {
            if (!banned.contains(e.getKey()) && (!dropped.has(e.getKey()) || e.getValue().getAsLong() > 0)) {
                n++;
            }
        }
        return n;
    }

    /** One line of {@code chiral transfers}: {@code <cid>  <STATE>  <pct>%  <verified>/<total> MiB  <name>}. */
    static String line(JsonObject p) {
        long total = p.get("totalBytes").getAsLong();
        long verified = p.get("verifiedBytes").getAsLong();
        return String.format(Locale.ROOT, "%s  %-11s %3d%%  %s/%s MiB  %s", p.get("id").getAsString(),
                p.get("state").getAsString(), Units.percent(verified, total), Units.mib(verified),
                total >= 0 ? Units.mib(total) : "?", p.get("name").getAsString());
    }

    static String text(JsonObject o, String field) {
        JsonElement e = o.get(field);
        return e == null || e.isJsonNull() ? null : e.getAsString();
    }

    /**
     * Whether the user watches a terminal. From Java 22 on {@link System#console()} also exists when output is
     * redirected, so ask {@code Console.isTerminal()} where it exists.
     */
    static boolean terminal() {
        Console c = System.console();
        if (c == null) {
            return false;
        }
        try {
            Method isTerminal = Console.class.getMethod("isTerminal");
            return (Boolean) isTerminal.invoke(c);
        } catch (NoSuchMethodException e) {
            return true;
        } catch (ReflectiveOperationException | RuntimeException e) {
            return false;
        }
    }
}
