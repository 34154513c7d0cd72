package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

/**
 * Connection floods against a real daemon, bounded in count and time, from source addresses 127.0.0.2-9: idle TCP
 * connections to HTTP and BitTorrent in a process whose open-file limit is 1024 (more connections than it has
 * descriptors), a slowloris client trickling an HTTP header, and half-written requests filling the control channel.
 * The node keeps answering its owner's {@code chiral id} and serving a real download throughout.
 */
class ConnectionFloodTest {
    private static final int FD_LIMIT = 1024;
    private static final int SOURCES = 8;

    @TempDir
    Path tmp;

    /** One flood connection and the source address it came from. */
    private record Held(Socket socket, String source) {
    }

    @Test
    void idleConnectionFloodLeavesTheNodeManageableAndServing() throws Exception {
        Path share = Files.createDirectories(tmp.resolve("share"));
        Path f1 = Node.randomFile(share, "before.bin", 32L << 20, 1);
        Path f2 = Node.randomFile(share, "during.bin", 32L << 20, 2);
        Node a = Node.spawn(tmp.resolve("a"), List.of("prlimit", "--nofile=" + FD_LIMIT + ":" + FD_LIMIT));
        Node b = Node.spawn(tmp.resolve("b"));
        List<Held> http = new ArrayList<>();
        List<Held> bt = new ArrayList<>();
        try (a; b) {
            a.awaitUp();
            b.awaitUp();
            a.awaitProtocol("bittorrent");
            String cid1 = a.run("add", f1.toString()).ok().lastLine();
            String cid2 = a.run("add", f2.toString()).ok().lastLine();
            String from = a.httpAddress();
            InetSocketAddress httpAddr = address(from);
            InetSocketAddress btAddr = address(a.btAddress());
            long fdsBefore = fds(a.pid());
            long rssBefore = rssKiB(a.pid());

            long t0 = System.nanoTime();
            JsonObject quiet = b.run("--json", "get", cid1, "--from", from, "-o", tmp.resolve("out1").toString()).ok().json();
            double quietSeconds = (System.nanoTime() - t0) / 1e9;
            assertEquals("COMPLETED", quiet.get("state").getAsString());

            int httpOpened = flood(httpAddr, 300 * SOURCES, http);
            int btOpened = flood(btAddr, 150 * SOURCES, bt);
            long fdsDuring = fds(a.pid());
            long rssDuring = rssKiB(a.pid());

            long t1 = System.nanoTime();
            Node.Result id = Node.exec(List.of(Node.CHIRAL.toString(), "--data", a.data.toString(), "id"), Duration.ofSeconds(30));
            double idSeconds = (System.nanoTime() - t1) / 1e9;

            long t2 = System.nanoTime();
            Node.Result got = Node.exec(List.of(Node.CHIRAL.toString(), "--data", b.data.toString(), "--json", "get", cid2,
                    "--from", from, "-o", tmp.resolve("out2").toString()), Duration.ofSeconds(90));
            double floodSeconds = (System.nanoTime() - t2) / 1e9;
            long fdsAfterGet = fds(a.pid());

            Map<String, Integer> httpHeld = held(http);
            Map<String, Integer> btHeld = held(bt);
            int httpHeldAll = httpHeld.values().stream().mapToInt(Integer::intValue).sum();
            int btHeldAll = btHeld.values().stream().mapToInt(Integer::intValue).sum();
            System.out.printf("FLOOD FIGURES (open-file limit %d): HTTP flood %d connections opened, %d held by the node"
                    + " (most from one address %d); BitTorrent flood %d opened, %d held (most from one address %d);"
                    + " node fds %d before, %d during, %d after a download during the flood; RSS %d KiB before, %d KiB"
                    + " during; chiral id during the flood %.2f s (exit %d); 32 MiB HTTP download %.2f s quiet, %.2f s"
                    + " during the flood (exit %d)%n", FD_LIMIT, httpOpened, httpHeldAll,
                    httpHeld.values().stream().mapToInt(Integer::intValue).max().orElse(0), btOpened, btHeldAll,
                    btHeld.values().stream().mapToInt(Integer::intValue).max().orElse(0), fdsBefore, fdsDuring, fdsAfterGet,
                    rssBefore, rssDuring, idSeconds, id.exit(), quietSeconds, floodSeconds, got.exit());

            assertEquals(0, id.exit(), "chiral id during the flood failed: " + id.err() + id.out() + "\n" + a.logLines("WARN"));
            assertTrue(idSeconds < 10, "chiral id took " + idSeconds + " s during the flood");
            assertEquals(0, got.exit(), "download during the flood failed: " + got.err() + got.out());
            JsonObject during = JsonParser.parseString(got.out()).getAsJsonObject();
            assertEquals("COMPLETED", during.get("state").getAsString());
            assertEquals(-1L, Files.mismatch(f2, Path.of(during.get("output").getAsString())), "downloaded file differs");
            assertTrue(Math.max(fdsDuring, fdsAfterGet) < FD_LIMIT * 3 / 4,
                    "the node used " + Math.max(fdsDuring, fdsAfterGet) + " of its " + FD_LIMIT + " file descriptors");
            int[] httpCaps = caps(a, "HTTP transport accepts at most (\\d+) connections, (\\d+) per address");
            int[] btCaps = caps(a, "at most (\\d+) inbound connections, (\\d+) per address");
            assertTrue(httpHeldAll <= httpCaps[0] && httpHeldAll < httpOpened, "HTTP flood connections held: " + httpHeldAll
                    + " of " + httpOpened + ", cap " + httpCaps[0]);
            assertTrue(btHeldAll <= btCaps[0] && btHeldAll < btOpened, "BitTorrent flood connections held: " + btHeldAll
                    + " of " + btOpened + ", cap " + btCaps[0]);
            for (var e : httpHeld.entrySet()) {
                assertTrue(e.getValue() <= httpCaps[1], e.getValue() + " HTTP connections held from " + e.getKey());
            }
            for (var e : btHeld.entrySet()) {
                assertTrue(e.getValue() <= btCaps[1], e.getValue() + " BitTorrent connections held from " + e.getKey());
            }
        } finally {
            closeAll(http);
            closeAll(bt);
        }
    }

    @Test
    void slowlorisIsClosedWithinTheHeaderDeadline() throws Exception {
        try (Node a = Node.start(tmp.resolve("a")); Socket s = new Socket()) {
            s.bind(new InetSocketAddress("127.0.0.2", 0));
            s.connect(address(a.httpAddress()), 5000);
            s.setSoTimeout(1000);
            byte[] header = ("GET /file/" + "0".repeat(64) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: "
                    + "x".repeat(200) + "\r\n").getBytes(StandardCharsets.US_ASCII);
            OutputStream out = s.getOutputStream();
            InputStream in = s.getInputStream();
            long start = System.nanoTime();
            long deadline = start + TimeUnit.SECONDS.toNanos(40);
            boolean closed = false;
            int sent = 0;
            while (!closed && System.nanoTime() < deadline && sent < header.length) {
                try {
                    out.write(header[sent++]); // one header byte per second: the read below waits out the second
                    out.flush();
                    in.read(); // an answer (an error) or the end of the stream: the server gave up on us
                    closed = true;
                } catch (SocketTimeoutException e) {
                    // still open, nothing to read: next byte
                } catch (IOException e) {
                    closed = true;
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("SLOWLORIS FIGURES: closed %s after %.1f s and %d header bytes%n", closed, seconds, sent);
            assertTrue(closed, "a client sending one header byte per second was still connected after " + seconds + " s");
            assertTrue(seconds < 25, "slowloris closed only after " + seconds + " s");
            assertEquals(0, a.run("id").exit(), "node answers after the slowloris");
        }
    }

    @Test
    void halfWrittenControlRequestsDoNotLockTheOwnerOut() throws Exception {
        List<Held> flood = new ArrayList<>();
        try (Node a = Node.start(tmp.resolve("a"))) {
            int port = JsonParser.parseString(Files.readString(a.data.resolve("config/control.json"))).getAsJsonObject()
                    .get("port").getAsInt();
            InetSocketAddress control = new InetSocketAddress("127.0.0.1", port);
            byte[] half = "POST /api/id HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ".getBytes(StandardCharsets.US_ASCII);
            for (int i = 0; i < 200; i++) {
                String source = i < 100 ? "127.0.0.1" : "127.0.0." + (2 + i % SOURCES);
                Socket s = new Socket();
                flood.add(new Held(s, source));
                s.bind(new InetSocketAddress(source, 0));
                s.connect(control, 2000);
                s.getOutputStream().write(half);
            }
            long t = System.nanoTime();
            Node.Result id = Node.exec(List.of(Node.CHIRAL.toString(), "--data", a.data.toString(), "id"), Duration.ofSeconds(30));
            double idSeconds = (System.nanoTime() - t) / 1e9;
            int heldNow = held(flood).values().stream().mapToInt(Integer::intValue).sum();
            // the half-written requests are dropped at their deadline
            int[] stillOpen = {heldNow};
            Await.within(Duration.ofSeconds(20), Duration.ofMillis(250),
                    () -> (stillOpen[0] = held(flood).values().stream().mapToInt(Integer::intValue).sum()) == 0);
            System.out.printf("CONTROL FLOOD FIGURES: 200 half-written requests, %d held while chiral id ran; id %.2f s"
                    + " (exit %d); %d still open %.1f s later%n", heldNow, idSeconds, id.exit(), stillOpen[0],
                    (System.nanoTime() - t) / 1e9);
            assertEquals(0, id.exit(), "chiral id with 200 half-written control requests: " + id.err() + id.out());
            assertTrue(idSeconds < 10, "chiral id took " + idSeconds + " s");
            assertEquals(0, stillOpen[0], "half-written control requests still open after their deadline");
        } finally {
            closeAll(flood);
        }
    }

    private static InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }

    /**
     * Opens up to {@code count} idle connections to {@code to} from 127.0.0.2-9 in turn, within 60 s, stopping after
     * 20 failed connects in a row (a node out of descriptors accepts no more); returns how many connected.
     */
    private static int flood(InetSocketAddress to, int count, List<Held> into) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        int failures = 0;
        int opened = 0;
        for (int i = 0; i < count && failures < 20 && System.nanoTime() < deadline; i++) {
            String source = "127.0.0." + (2 + i % SOURCES);
            Socket s = new Socket();
            try {
                s.bind(new InetSocketAddress(source, 0));
                s.connect(to, 1000);
                into.add(new Held(s, source));
                opened++;
                failures = 0;
            } catch (IOException e) {
                failures++;
                try {
                    s.close();
                } catch (IOException ignored) {
                    // closing a failed socket
                }
            }
        }
        return opened;
    }

    /** Connections the node still holds open, by source address (a closed one reads end of stream or a reset). */
    private static Map<String, Integer> held(List<Held> conns) throws IOException {
        Map<String, Integer> out = new HashMap<>();
        for (Held h : conns) {
            Socket s = h.socket();
            if (s.isClosed() || !s.isConnected()) {
                continue;
            }
            s.setSoTimeout(1);
            try {
                if (s.getInputStream().read() == -1) {
                    s.close();
                    continue;
                }
            } catch (SocketTimeoutException e) {
                out.merge(h.source(), 1, Integer::sum); // open: nothing to read yet
                continue;
            } catch (IOException e) {
                s.close();
                continue;
            }
            out.merge(h.source(), 1, Integer::sum); // answered something and still open
        }
        return out;
    }

    private static void closeAll(List<Held> conns) {
        for (Held h : conns) {
            try {
                h.socket().close();
            } catch (IOException ignored) {
                // best effort
            }
        }
    }

    private static long fds(long pid) throws IOException {
        try (var s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return s.count();
        }
    }

    private static long rssKiB(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return -1;
    }

    /** The caps a listener logged at start ({@code {total, per address}}), or {@code {-1, -1}} when it logged none. */
    private static int[] caps(Node n, String regex) {
        Matcher m = Pattern.compile(regex).matcher(n.logLines("at most"));
        return m.find() ? new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))} : new int[] {-1, -1};
    }
}
