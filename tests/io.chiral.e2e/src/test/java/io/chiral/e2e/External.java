package io.chiral.e2e;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

/**
 * A third-party client (libtorrent, aria2, qBittorrent …) run through one of the JSON-lines drivers in
 * {@code tests/interop}: the test reads what it prints ({@code ready}, {@code progress}, {@code done}) and can send
 * it commands; closing stdin stops it and its client.
 */
final class External implements AutoCloseable {
    static final Path INTEROP = Node.ROOT.resolve("tests/interop");
    static final String PYTHON = "/usr/bin/python3";

    private final Process process;
    private final OutputStream stdin;
    private final LinkedBlockingQueue<JsonObject> lines = new LinkedBlockingQueue<>();
    private final List<String> transcript = new ArrayList<>();
    private final String name;

    private External(String name, Process process) {
        this.name = name;
        this.process = process;
        this.stdin = process.getOutputStream();
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null;) {
                    synchronized (transcript) {
                        transcript.add(line);
                    }
                    try {
                        lines.add(JsonParser.parseString(line).getAsJsonObject());
                    } catch (RuntimeException e) {
                        // not a JSON line: kept in the transcript only
                    }
                }
            } catch (IOException e) {
                // process gone
            }
        }, "external-" + name);
        reader.setDaemon(true);
        reader.start();
    }

    /** Starts {@code tests/interop/DRIVER args…}; its stderr goes to {@code log}. */
    static External start(Path log, String driver, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        if (driver.endsWith(".py")) {
            cmd.add(PYTHON);
        }
        cmd.add(INTEROP.resolve(driver).toString());
        cmd.addAll(Arrays.asList(args));
        Files.createDirectories(log.toAbsolutePath().getParent());
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        return new External(driver, p);
    }

    /** Waits for a line carrying {@code key}; fails with the transcript on an error line, exit or timeout. */
    JsonObject await(String key, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            JsonObject o = lines.poll(200, TimeUnit.MILLISECONDS);
            if (o == null) {
                if (!process.isAlive() && lines.isEmpty()) {
                    throw new AssertionError(name + " exited (" + process.exitValue() + ") before '" + key + "': " + transcript());
                }
                continue;
            }
            if (o.has(key) && !(o.get(key).isJsonPrimitive() && o.get(key).getAsJsonPrimitive().isBoolean()
                    && !o.get(key).getAsBoolean())) {
                return o;
            }
            if (o.has("error")) {
                throw new AssertionError(name + " failed: " + o + " " + transcript());
            }
        }
        throw new AssertionError(name + " did not report '" + key + "' within " + timeout + ": " + transcript());
    }

    void send(String jsonLine) throws IOException {
        stdin.write((jsonLine + "\n").getBytes(StandardCharsets.UTF_8));
        stdin.flush();
    }

    String transcript() {
        synchronized (transcript) {
            List<String> t = transcript.subList(Math.max(0, transcript.size() - 20), transcript.size());
            return String.join("\n", t);
        }
    }

    @Override
    public void close() throws Exception {
        try {
            stdin.close();
        } catch (IOException e) {
            // already gone
        }
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroy();
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }

    /** Runs a one-shot interop script (e.g. {@code lt_torrent.py create …}) and returns its JSON answer. */
    static JsonObject json(String script, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(PYTHON, INTEROP.resolve(script).toString()));
        cmd.addAll(Arrays.asList(args));
        Node.Result r = Node.exec(cmd, Duration.ofMinutes(2));
        if (r.exit() != 0) {
            throw new AssertionError(script + " failed: " + r.err() + r.out());
        }
        return JsonParser.parseString(r.out().strip()).getAsJsonObject();
    }
}
