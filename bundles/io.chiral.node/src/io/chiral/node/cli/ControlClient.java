package io.chiral.node.cli;

import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.Proxy;
import java.net.SocketTimeoutException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

/**
 * Talks to a running node over its loopback control channel: finds it through {@code <data>/config/control.json},
 * authenticates with {@code <data>/config/control.token}, sends JSON and returns JSON. Every failure becomes a
 * {@link CliException} with a message fit for the user.
 */
final class ControlClient {
    private static final String LOOPBACK = "127.0.0.1";
    private static final int MAX_FILE = 4096;
    private static final int MAX_RESPONSE = 32 * 1024 * 1024;
    /** Timeout of quick requests; adding a file and installing a feature wait as long as they take. */
    static final Duration QUICK = Duration.ofSeconds(30);

    private final Path dataDir;
    private final int port;
    private final String token;

    private ControlClient(Path dataDir, int port, String token) {
        this.dataDir = dataDir;
        this.port = port;
        this.token = token;
    }

    /** Reads the discovery and token files of the node that owns {@code dataDir}. */
    static ControlClient connect(Path dataDir) throws CliException {
        Path config = dataDir.resolve("config");
        String discovery = readSmall(config.resolve("control.json"), dataDir);
        if (discovery == null) {
            throw notRunning(dataDir);
        }
        int port;
        try {
            JsonElement e = JsonParser.parseString(discovery);
            port = e.getAsJsonObject().get("port").getAsInt();
        } catch (RuntimeException e) {
            throw new CliException(config.resolve("control.json") + " is damaged; restart the node");
        }
        if (port < 1 || port > 65535) {
            throw new CliException(config.resolve("control.json") + " names no valid port; restart the node");
        }
        String token = readSmall(config.resolve("control.token"), dataDir);
        if (token == null || token.isBlank()) {
            throw new CliException("no control token in " + config.resolve("control.token") + "; restart the node");
        }
        return new ControlClient(dataDir, port, token.strip());
    }

    static CliException notRunning(Path dataDir) {
        return new CliException("no node is running for " + dataDir + " (start one with: chiral daemon --data " + dataDir + ")");
    }

    private static String readSmall(Path file, Path dataDir) throws CliException {
        try {
            if (Files.size(file) > MAX_FILE) {
                throw new CliException(file + " is too large to be a control file");
            }
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new CliException("cannot read " + file + ": " + e.getMessage());
        }
    }

    JsonElement get(String path) throws CliException {
        return send("GET", path, null, QUICK);
    }

    /** POSTs {@code body}; {@code timeout} null waits as long as the node works on it. */
    JsonElement post(String path, JsonObject body, Duration timeout) throws CliException {
        String json = body == null ? "{}" : Json.COMPACT.toJson(body);
        return send("POST", path, json.getBytes(StandardCharsets.UTF_8), timeout);
    }

    /**
     * One request over {@link HttpURLConnection}: for a client that makes a handful of calls per process it starts in
     * milliseconds, where {@code java.net.http.HttpClient} costs most of a second to set up (docs/benchmarks.md).
     */
    private JsonElement send(String method, String path, byte[] body, Duration timeout) throws CliException {
        int status;
        byte[] answer;
        HttpURLConnection c = null;
        try {
            URL url = URI.create("http://" + LOOPBACK + ":" + port + "/api/v0/" + path).toURL();
            c = (HttpURLConnection) url.openConnection(Proxy.NO_PROXY);
            c.setRequestMethod(method);
            c.setConnectTimeout(5000);
            c.setReadTimeout(timeout == null ? 0 : (int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
            c.setRequestProperty("Authorization", "Bearer " + token);
            c.setRequestProperty("Accept", "application/json");
            c.setUseCaches(false);
            if (body != null) {
                c.setDoOutput(true);
                c.setRequestProperty("Content-Type", "application/json; charset=utf-8");
                c.setFixedLengthStreamingMode(body.length);
                try (OutputStream out = c.getOutputStream()) {
                    out.write(body);
                }
            }
            status = c.getResponseCode();
            InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
            if (in == null) {
                answer = new byte[0];
            } else {
                try (InputStream i = in) {
                    answer = i.readNBytes(MAX_RESPONSE + 1);
                }
            }
        } catch (ConnectException e) {
            throw notRunning(dataDir);
        } catch (SocketTimeoutException e) {
            throw new CliException("the node at " + LOOPBACK + ":" + port + " did not answer in time");
        } catch (IOException e) {
            if (e.getCause() instanceof ConnectException) {
                throw notRunning(dataDir);
            }
            throw new CliException("lost the connection to the node at " + LOOPBACK + ":" + port
                    + (e.getMessage() == null ? "" : " (" + e.getMessage() + ")"));
        } finally {
            if (c != null) {
                c.disconnect();
            }
        }
        if (answer.length > MAX_RESPONSE) {
            throw new CliException("the node's answer is larger than " + (MAX_RESPONSE >> 20) + " MiB");
        }
        JsonElement json = parse(answer);
        if (status >= 400) {
            if (json != null && json.isJsonObject() && json.getAsJsonObject().has("error")
                    && json.getAsJsonObject().get("error").isJsonPrimitive()) {
                throw new CliException(json.getAsJsonObject().get("error").getAsString());
            }
            throw new CliException("the node answered HTTP " + status);
        }
        if (json == null) {
            throw new CliException("the node answered something that is not JSON");
        }
        return json;
    }

    private static JsonElement parse(byte[] body) {
        try {
            return body.length == 0 ? null : JsonParser.parseString(new String(body, StandardCharsets.UTF_8));
        } catch (JsonParseException e) {
            return null;
        }
    }

    /** True while the node still publishes its discovery file and accepts connections on its port. */
    boolean stillRunning() {
        if (!Files.exists(dataDir.resolve("config").resolve("control.json"))) {
            return false;
        }
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(LOOPBACK, port), 500);
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
