package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.Proxy;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

/** A real node: {@code ./chiral daemon} in its own process, driven with the {@code ./chiral} client. */
final class Node implements AutoCloseable {
    static final Path ROOT = Path.of(System.getProperty("chiral.root", "../..")).toAbsolutePath().normalize();
    static final Path CHIRAL = ROOT.resolve("chiral");

    /** Result of one client command. */
    record Result(int exit, String out, String err) {
        String lastLine() {
            String[] lines = out.strip().split("\n");
            return lines[lines.length - 1].strip();
        }

        com.google.gson.JsonArray jsonArray() {
            return JsonParser.parseString(out).getAsJsonArray();
        }

        JsonObject json() {
            return JsonParser.parseString(out).getAsJsonObject();
        }

        Result ok() {
            if (exit != 0) {
                fail("command failed (exit " + exit + "): " + err + out);
            }
            return this;
        }
    }

    final Path data;
    final List<String> flags;
    private Process process;
    private final Path log;
    /** Runs the daemon and every client command through this, e.g. {@code setpriv} to run as another user. */
    private List<String> prefix = List.of();

    private Node(Path data, List<String> flags) {
        this.data = data;
        this.flags = flags;
        this.log = data.resolveSibling(data.getFileName() + ".log");
    }

    /** Client commands for the node of {@code data}, whoever started it. */
    static Node client(Path data) {
        return new Node(data, List.of());
    }

    /** Like {@link #start} but the daemon and its client commands run as another user (the caller must be root). */
    static Node startAs(String user, Path data, String... extraFlags) throws Exception {
        Node n = spawn(data, List.of("setpriv", "--reuid=" + user, "--regid=" + user, "--clear-groups",
                "env", "HOME=" + data.getParent()), extraFlags);
        n.awaitUp();
        return n;
    }

    /** Starts a daemon on 127.0.0.1 with ephemeral ports and waits until it answers. */
    static Node start(Path data, String... extraFlags) throws Exception {
        Node n = spawn(data, extraFlags);
        n.awaitUp();
        return n;
    }

    /**
     * Starts a daemon like {@link #start} but returns at once: several nodes boot side by side; call
     * {@link #awaitUp()} on each before using it.
     */
    static Node spawn(Path data, String... extraFlags) throws Exception {
        return spawn(data, List.of(), extraFlags);
    }

    /** Like {@link #spawn(Path, String...)}, with {@code prefix} (e.g. {@code prlimit --nofile=N:N}) before the command. */
    static Node spawn(Path data, List<String> prefix, String... extraFlags) throws Exception {
        List<String> f = new ArrayList<>(List.of("--bind", "127.0.0.1", "--http-port", "0", "--bt-port", "0",
                "--control-port", "0", "--mainline-bootstrap", "none"));
        f.addAll(Arrays.asList(extraFlags));
        Node n = new Node(data, f);
        n.prefix = prefix;
        n.spawnProcess();
        return n;
    }

    void launch() throws Exception {
        spawnProcess();
        awaitUp();
    }

    private void spawnProcess() throws Exception {
        Files.createDirectories(data);
        List<String> cmd = new ArrayList<>(prefix);
        cmd.addAll(List.of(CHIRAL.toString(), "daemon", "--data", data.toString()));
        cmd.addAll(flags);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().put("CHIRAL_NO_BUILD", "1");
        process = pb.start();
    }

    /** Waits until the daemon answers on its control channel. */
    void awaitUp() throws Exception {
        Await.until(Duration.ofSeconds(60), "the daemon of " + data + " to answer", () -> {
            if (!process.isAlive()) {
                fail("daemon exited with " + process.exitValue() + ":\n" + tail());
            }
            return api("id") != null;
        });
    }

    /** Waits until the node lists protocol {@code name} (components activate asynchronously). */
    void awaitProtocol(String name) throws Exception {
        try {
            Await.until(Duration.ofSeconds(30), "protocol " + name, () -> api("protocols").getAsJsonArray(),
                    list -> list.asList().stream().anyMatch(p -> p.getAsJsonObject().get("name").getAsString().equals(name)));
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\n" + tail(), e);
        }
    }

    /**
     * GETs {@code /api/v0/PATH} of the daemon's control channel in this JVM, as {@code ./chiral} does (port from
     * {@code DIR/config/control.json}, bearer token from {@code DIR/config/control.token}): for polling, which must
     * not start a JVM per poll. Tests of what a user sees run the real command with {@link #run}.
     */
    JsonElement api(String path) throws IOException {
        return api(path, null);
    }

    /** Like {@link #api(String)}; POSTs {@code body} unless it is null. */
    JsonElement api(String path, JsonObject body) throws IOException {
        Path config = data.resolve("config");
        int port = JsonParser.parseString(Files.readString(config.resolve("control.json"))).getAsJsonObject()
                .get("port").getAsInt();
        String token = Files.readString(config.resolve("control.token")).strip();
        HttpURLConnection c = (HttpURLConnection) URI.create("http://127.0.0.1:" + port + "/api/v0/" + path).toURL()
                .openConnection(Proxy.NO_PROXY);
        try {
            c.setConnectTimeout(5000);
            c.setReadTimeout(60_000);
            c.setRequestProperty("Authorization", "Bearer " + token);
            c.setRequestProperty("Accept", "application/json");
            if (body != null) {
                c.setRequestMethod("POST");
                c.setDoOutput(true);
                c.setRequestProperty("Content-Type", "application/json; charset=utf-8");
                try (var out = c.getOutputStream()) {
                    out.write(body.toString().getBytes(StandardCharsets.UTF_8));
                }
            }
            int status = c.getResponseCode();
            try (InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream()) {
                String answer = in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8);
                if (status != 200) {
                    throw new IOException(path + " answered HTTP " + status + ": " + answer);
                }
                return JsonParser.parseString(answer);
            }
        } finally {
            c.disconnect();
        }
    }

    String protocols() throws Exception {
        Result r = run("protocols");
        return r.exit() == 0 && !r.out().contains("no protocols") ? r.out().strip() : "";
    }

    /** This node's HTTP address (127.0.0.1:PORT) from its {@code id}. */
    String httpAddress() throws Exception {
        return address("http");
    }

    /** This node's BitTorrent address (127.0.0.1:PORT) from its {@code id}. */
    String btAddress() throws Exception {
        return address("bittorrent");
    }

    private String address(String protocol) throws Exception {
        JsonObject id = api("id").getAsJsonObject();
        for (JsonElement e : id.getAsJsonArray("addresses")) {
            JsonObject a = e.getAsJsonObject();
            if (a.get("protocol").getAsString().equals(protocol) && a.get("address").getAsString().startsWith("127.0.0.1:")) {
                return a.get("address").getAsString();
            }
        }
        throw new AssertionError("node has no " + protocol + " address: " + id);
    }

    /** This node's UDP address (127.0.0.1:PORT) in the given DHT ({@code chiral} or {@code mainline}). */
    String dhtAddress(String network) throws Exception {
        JsonObject id = api("id").getAsJsonObject();
        if (id.has("dht")) {
            for (JsonElement e : id.getAsJsonArray("dht")) {
                JsonObject o = e.getAsJsonObject();
                if (o.get("network").getAsString().equals(network)) {
                    return o.get("address").getAsString();
                }
            }
        }
        throw new AssertionError("node has no " + network + " DHT: " + id);
    }

    Result run(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.addAll(List.of(CHIRAL.toString(), "--data", data.toString()));
        cmd.addAll(Arrays.asList(args));
        return exec(cmd, Duration.ofMinutes(2));
    }

    static Result exec(List<String> cmd, Duration timeout) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("CHIRAL_NO_BUILD", "1");
        Path out = Files.createTempFile("chiral-out", ".txt");
        Path err = Files.createTempFile("chiral-err", ".txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            fail("timed out: " + cmd);
        }
        Result r = new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        Files.deleteIfExists(out);
        Files.deleteIfExists(err);
        return r;
    }

    long pid() {
        return process.pid();
    }

    /** Sends a signal to the daemon's JVM: {@code STOP} freezes it (sockets stay open), {@code CONT} thaws it. */
    void signal(String name) throws Exception {
        Result r = exec(List.of("kill", "-" + name, Long.toString(pid())), Duration.ofSeconds(10));
        if (r.exit() != 0) {
            fail("kill -" + name + " " + pid() + " failed: " + r.err());
        }
    }

    /**
     * This node's transfer with CID or id (e.g. a BitTorrent info-hash) {@code cid} from its transfer list, or null
     * while it has none (or does not answer).
     */
    JsonObject transfer(String cid) throws Exception {
        JsonElement e;
        try {
            e = api("transfers");
        } catch (IOException | com.google.gson.JsonParseException ex) {
            return null;
        }
        JsonArray arr = e.isJsonArray() ? e.getAsJsonArray() : e.getAsJsonObject().getAsJsonArray("transfers");
        for (JsonElement t : arr) {
            JsonObject o = t.getAsJsonObject();
            for (String key : List.of("cid", "id")) {
                if (o.has(key) && o.get(key).isJsonPrimitive() && cid.equals(o.get(key).getAsString())) {
                    return o;
                }
            }
        }
        return null;
    }

    /** Daemon is a bash exec of java, so the pid is the JVM's. */
    void kill9() throws Exception {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    void stop() throws Exception {
        if (process != null && process.isAlive()) {
            run("stop");
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
                fail("daemon did not stop within 30 s:\n" + tail());
            }
            assertEquals(0, process.exitValue(), "daemon exit code after stop:\n" + tail());
        }
    }

    boolean isAlive() {
        return process != null && process.isAlive();
    }

    /** Log lines containing {@code needle}, each after the line before it (the logger's time stamp). */
    String logLines(String needle) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < lines.size(); i++) {
                if (lines.get(i).contains(needle)) {
                    b.append(i > 0 ? lines.get(i - 1) + "  " : "").append(lines.get(i)).append('\n');
                }
            }
            return b.toString();
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    String tail() {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    @Override
    public void close() throws Exception {
        if (process != null && process.isAlive()) {
            try {
                stop();
            } catch (Throwable t) {
                process.destroyForcibly();
            }
        }
    }

    static Path randomFile(Path dir, String name, long size, long seed) throws IOException {
        Path p = dir.resolve(name);
        java.util.Random r = new java.util.Random(seed);
        byte[] buf = new byte[1 << 20];
        try (var out = Files.newOutputStream(p)) {
            long left = size;
            while (left > 0) {
                r.nextBytes(buf);
                int n = (int) Math.min(buf.length, left);
                out.write(buf, 0, n);
                left -= n;
            }
        }
        return p;
    }

    static String sha256(Path p) throws Exception {
        var md = java.security.MessageDigest.getInstance("SHA-256");
        try (var in = Files.newInputStream(p)) {
            byte[] b = new byte[1 << 20];
            for (int n; (n = in.read(b)) > 0;) {
                md.update(b, 0, n);
            }
        }
        return java.util.HexFormat.of().formatHex(md.digest());
    }
}
