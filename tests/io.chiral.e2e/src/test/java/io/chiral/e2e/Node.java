package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

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
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                fail("daemon exited with " + process.exitValue() + ":\n" + tail());
            }
            if (Files.exists(data.resolve("config/control.json")) && run("id").exit() == 0) {
                return;
            }
            Thread.sleep(200);
        }
        fail("daemon did not come up in 60 s:\n" + tail());
    }

    /** Waits until {@code chiral protocols} lists {@code name} (components activate asynchronously). */
    void awaitProtocol(String name) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            if (protocols().lines().anyMatch(l -> l.startsWith(name + " "))) {
                return;
            }
            Thread.sleep(200);
        }
        fail("protocol " + name + " did not appear; protocols: " + protocols() + "\n" + tail());
    }

    String protocols() throws Exception {
        Result r = run("protocols");
        return r.exit() == 0 && !r.out().contains("no protocols") ? r.out().strip() : "";
    }

    /** This node's HTTP address (127.0.0.1:PORT) from {@code chiral id}. */
    String httpAddress() throws Exception {
        for (String line : run("id").ok().out().split("\n")) {
            String[] parts = line.strip().split("\\s+");
            if (parts.length == 2 && parts[0].equals("http") && parts[1].startsWith("127.0.0.1:")) {
                return parts[1];
            }
        }
        throw new AssertionError("node has no http address:\n" + run("id").out());
    }

    /** This node's BitTorrent address (127.0.0.1:PORT) from {@code chiral id}. */
    String btAddress() throws Exception {
        for (String line : run("id").ok().out().split("\n")) {
            String[] parts = line.strip().split("\\s+");
            if (parts.length == 2 && parts[0].equals("bittorrent") && parts[1].startsWith("127.0.0.1:")) {
                return parts[1];
            }
        }
        throw new AssertionError("node has no bittorrent address:\n" + run("id").out());
    }

    /** This node's UDP address (127.0.0.1:PORT) in the given DHT ({@code chiral} or {@code mainline}). */
    String dhtAddress(String network) throws Exception {
        for (var e : run("--json", "id").ok().json().getAsJsonArray("dht")) {
            JsonObject o = e.getAsJsonObject();
            if (o.get("network").getAsString().equals(network)) {
                return o.get("address").getAsString();
            }
        }
        throw new AssertionError("node has no " + network + " DHT:\n" + run("id").out());
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

    /** This node's transfer of {@code cid} from {@code chiral transfers --json}, or null while it has none. */
    JsonObject transfer(String cid) throws Exception {
        Result r = run("--json", "transfers");
        if (r.exit() != 0) {
            return null;
        }
        com.google.gson.JsonElement e = JsonParser.parseString(r.out());
        com.google.gson.JsonArray arr = e.isJsonArray() ? e.getAsJsonArray() : e.getAsJsonObject().getAsJsonArray("transfers");
        for (com.google.gson.JsonElement t : arr) {
            JsonObject o = t.getAsJsonObject();
            if (cid.equals(o.get("cid").getAsString())) {
                return o;
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
