package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

/**
 * One download from four seeding daemons at once, every node a real process on 127.0.0.1, each seeder with its
 * own copy of the file and an upload limit so that the transfer lasts while the test interferes with it: a
 * seeder serving rotten data is banned, one killed with {@code kill -9} is dropped, one frozen with
 * {@code SIGSTOP} (connected, silent) is dropped as stalled, and the file still arrives intact from the others.
 * In the first test the downloader finds the seeders through the Chiral DHT ({@code get CID} without
 * {@code --from}); in the second they are given with {@code --from}.
 */
class MultiSourceTest {
    static final int CHUNK = 256 * 1024;
    static final long SIZE = 48L << 20;

    @TempDir
    Path tmp;

    @Test
    void pullsFromAllSeedersBansTheCorruptOneAndDropsTheKilledOne() throws Exception {
        // 2 MiB/s per seeder: about 8 s for the file from the three honest ones
        try (Swarm swarm = new Swarm(4, "2M", 11, true)) {
            Node corrupt = swarm.seeders.get(0);
            Node killed = swarm.seeders.get(1);
            long[] everyChunk = new long[(int) (SIZE / CHUNK)];
            for (int i = 0; i < everyChunk.length; i++) {
                everyChunk[i] = (long) i * CHUNK + 1000;
            }
            CorruptPeerTest.rot(swarm.copies.get(0), everyChunk);

            Process get = swarm.get();
            JsonObject before = swarm.awaitBytesFrom(killed);
            killed.kill9();
            swarm.log("killed " + swarm.label(killed) + " with kill -9");
            assertTrue(before.get("verifiedBytes").getAsLong() < SIZE, "killed mid-transfer: " + before);

            JsonObject s = swarm.finish(get);
            assertEquals("COMPLETED", s.get("state").getAsString(), s.toString());
            assertEquals(Node.sha256(swarm.original), Node.sha256(Path.of(s.get("output").getAsString())));
            Map<String, Long> per = bytesPerSource(s);
            assertTrue(per.values().stream().filter(b -> b > 0).count() >= 3, "bytes from at least 3 sources: " + per);
            assertEquals(SIZE, per.values().stream().mapToLong(Long::longValue).sum(), "every byte counted once: " + per);
            for (Node honest : swarm.seeders.subList(2, 4)) {
                assertTrue(per.get(swarm.label(honest)) > 0, "honest seeder delivered: " + per);
            }

            String corruptLabel = swarm.label(corrupt);
            assertTrue(s.getAsJsonArray("bannedSources").toString().contains(corruptLabel), "corrupt seeder banned: " + s);
            assertEquals(0L, per.get(corruptLabel), "nothing from the corrupt seeder was kept");
            assertTrue(s.get("corruptChunks").getAsInt() >= 2, "its bad chunks were detected: " + s);

            String killedLabel = swarm.label(killed);
            JsonObject dropped = s.getAsJsonObject("droppedSources");
            assertTrue(dropped.has(killedLabel), "killed seeder dropped: " + dropped);
            assertFalse(s.getAsJsonArray("bannedSources").toString().contains(killedLabel), "going away is not cheating");
            assertTrue(per.get(killedLabel) > 0, "the killed seeder delivered before it died: " + per);
        }
    }

    @Test
    void aFrozenSeederIsDroppedAsStalledAndTheOthersFinish() throws Exception {
        // 704 KiB/s per seeder: once one is frozen the other two need about 30 s for the rest, well beyond the
        // ~21 s it takes to notice the stall twice (10 s of silence each time) and drop it
        try (Swarm swarm = new Swarm(3, "704K", 12, false)) {
            Node frozen = swarm.seeders.get(2);
            Process get = swarm.get();
            JsonObject before = swarm.awaitBytesFrom(frozen);
            frozen.signal("STOP");
            swarm.log("froze " + swarm.label(frozen) + " with SIGSTOP");
            try {
                assertTrue(before.get("verifiedBytes").getAsLong() < SIZE, "frozen mid-transfer: " + before);
                JsonObject s = swarm.finish(get);
                System.out.print(swarm.leecher.logLines("stalled"));
                assertEquals("COMPLETED", s.get("state").getAsString(), s.toString());
                assertEquals(Node.sha256(swarm.original), Node.sha256(Path.of(s.get("output").getAsString())));

                String frozenLabel = swarm.label(frozen);
                JsonObject dropped = s.getAsJsonObject("droppedSources");
                assertTrue(dropped.has(frozenLabel) && dropped.get(frozenLabel).getAsString().startsWith("stalled"),
                        "frozen seeder dropped as stalled: " + dropped);
                assertEquals(1, dropped.size(), "only the frozen seeder was dropped: " + dropped);
                assertEquals(0, s.getAsJsonArray("bannedSources").size(), s.toString());
                Map<String, Long> per = bytesPerSource(s);
                for (Node n : swarm.seeders) {
                    if (n != frozen) {
                        assertTrue(per.get(swarm.label(n)) > 0, "the others delivered: " + per);
                    }
                }
                assertEquals(SIZE, per.values().stream().mapToLong(Long::longValue).sum(), per.toString());
            } finally {
                frozen.signal("CONT");
            }
            assertTrue(frozen.isAlive(), "the thawed seeder runs on");
        }
    }

    static Map<String, Long> bytesPerSource(JsonObject summary) {
        Map<String, Long> per = new java.util.LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : summary.getAsJsonObject("bytesPerSource").entrySet()) {
            per.put(e.getKey(), e.getValue().getAsLong());
        }
        return per;
    }

    /** Rate-limited seeders, each with its own copy of one random file, and a downloader, booted side by side. */
    private final class Swarm implements AutoCloseable {
        final Path original;
        final List<Path> copies = new ArrayList<>();
        final List<Node> seeders = new ArrayList<>();
        final Node leecher;
        final String cid;
        private final Map<Node, String> addresses = new java.util.concurrent.ConcurrentHashMap<>(); // asked once: a frozen node does not answer
        private final long t0 = System.nanoTime();
        private final Path out = tmp.resolve("out");
        private final Path summary = tmp.resolve("get.json");
        private final Path errors = tmp.resolve("get.err");

        final boolean viaDht;

        /** With {@code viaDht}, every node joins the Chiral DHT through the first seeder and get has no --from. */
        Swarm(int count, String rate, long seed, boolean viaDht) throws Exception {
            this.viaDht = viaDht;
            original = Node.randomFile(tmp, "data.bin", SIZE, seed);
            String dhtPort;
            try (java.net.DatagramSocket probe = new java.net.DatagramSocket(0, java.net.InetAddress.getLoopbackAddress())) {
                dhtPort = Integer.toString(probe.getLocalPort());
            }
            String[] join = viaDht ? new String[] {"--bootstrap", "127.0.0.1:" + dhtPort} : new String[0];
            Node l = null;
            java.util.concurrent.ExecutorService setup = java.util.concurrent.Executors.newFixedThreadPool(count + 1);
            try {
                for (int i = 0; i < count; i++) {
                    copies.add(Files.copy(original, Files.createDirectories(tmp.resolve("copy" + i)).resolve("data.bin")));
                    List<String> flags = new ArrayList<>(List.of("--max-upload-rate", rate));
                    flags.addAll(List.of(i == 0 && viaDht ? new String[] {"--dht-port", dhtPort} : join));
                    seeders.add(Node.spawn(tmp.resolve("seeder" + i), flags.toArray(String[]::new)));
                }
                l = Node.spawn(tmp.resolve("leecher"), join);
                // the nodes boot side by side; each is readied on its own thread (every client call starts a JVM)
                List<java.util.concurrent.Future<String>> cids = new ArrayList<>();
                for (int i = 0; i < count; i++) {
                    Node n = seeders.get(i);
                    Path copy = copies.get(i);
                    cids.add(setup.submit(() -> {
                        n.awaitUp();
                        String c = n.run("add", copy.toString()).ok().lastLine();
                        addresses.put(n, awaitHttpAddress(n));
                        return c;
                    }));
                }
                Node leech = l;
                java.util.concurrent.Future<?> leecherUp = setup.submit(() -> {
                    leech.awaitUp();
                    leech.awaitProtocol("http");
                    return null;
                });
                String first = null;
                for (var f : cids) {
                    String c = f.get();
                    assertTrue(first == null || first.equals(c), "same file, same CID");
                    first = c;
                }
                leecherUp.get();
                cid = first;
                leecher = l;
                log(count + " seeders and a downloader up, file added");
                if (viaDht) {
                    awaitProviders(count);
                }
            } catch (Exception | Error t) {
                for (Node n : all(l)) {
                    if (n != null) {
                        n.close();
                    }
                }
                if (t instanceof java.util.concurrent.ExecutionException e && e.getCause() instanceof Error cause) {
                    throw cause; // an assertion of a setup step
                }
                throw t;
            } finally {
                setup.shutdownNow();
            }
        }

        /** Waits until the downloader sees every seeder's provider record in the DHT (publishing is asynchronous). */
        private void awaitProviders(int count) throws Exception {
            JsonObject query = new JsonObject();
            query.addProperty("cid", cid);
            try {
                int seen = Await.until(Duration.ofSeconds(60), count + " providers in the DHT",
                        () -> leecher.api("dht/find", query).getAsJsonObject().getAsJsonArray("providers").size(), n -> n == count);
                log("the DHT lists " + seen + " providers");
            } catch (AssertionError e) {
                fail(e.getMessage() + "\n" + leecher.tail());
            }
        }

        /** The node's HTTP address once its transport is up (one client call when it is, as usual by now). */
        private static String awaitHttpAddress(Node n) throws Exception {
            return Await.until(Duration.ofSeconds(60), "the HTTP address of " + n.data, () -> {
                try {
                    return n.httpAddress();
                } catch (AssertionError e) {
                    return null; // no HTTP transport yet
                }
            }, a -> a != null);
        }

        private List<Node> all(Node l) {
            List<Node> nodes = new ArrayList<>(seeders);
            nodes.add(l);
            return nodes;
        }

        String label(Node n) {
            return "http://" + addresses.get(n);
        }

        void log(String what) {
            System.out.printf("%6.1f s  %s%n", (System.nanoTime() - t0) / 1e9, what);
        }

        /** Starts {@code chiral get CID --from <every seeder> --json} in the background. */
        Process get() throws Exception {
            List<String> from = new ArrayList<>();
            for (Node n : seeders) {
                from.add(addresses.get(n));
            }
            List<String> cmd = new ArrayList<>(List.of(Node.CHIRAL.toString(), "--data", leecher.data.toString(), "--json",
                    "get", cid, "-o", out.toString()));
            if (viaDht) {
                log("get " + cid + " (providers from the DHT)");
            } else {
                log("get --from " + String.join(",", from));
                cmd.addAll(List.of("--from", String.join(",", from)));
            }
            ProcessBuilder pb = new ProcessBuilder(cmd)
                    .redirectOutput(summary.toFile()).redirectError(errors.toFile());
            pb.environment().put("CHIRAL_NO_BUILD", "1");
            return pb.start();
        }

        /** Waits until {@code seeder} has delivered verified bytes to the running download; returns its progress. */
        JsonObject awaitBytesFrom(Node seeder) throws Exception {
            String label = label(seeder);
            JsonObject t;
            try {
                t = Await.until(Duration.ofSeconds(60), "verified bytes from " + label, () -> leecher.transfer(cid), x -> {
                    if (x == null) {
                        return false;
                    }
                    if (!x.get("state").getAsString().equals("DOWNLOADING") && !x.get("state").getAsString().equals("RESOLVING")) {
                        fail("the download ended before " + label + " delivered anything: " + x);
                    }
                    JsonElement b = x.getAsJsonObject("bytesPerSource").get(label);
                    return b != null && b.getAsLong() > 0;
                });
            } catch (AssertionError e) {
                throw new AssertionError(e.getMessage() + "\n" + leecher.tail(), e);
            }
            log(label + " has delivered " + t.getAsJsonObject("bytesPerSource").get(label).getAsLong() + " bytes, "
                    + t.get("verifiedBytes").getAsLong() + " verified in all");
            return t;
        }

        /** Waits for the background {@code get} to end and returns its JSON summary. */
        JsonObject finish(Process get) throws Exception {
            if (!get.waitFor(3, TimeUnit.MINUTES)) {
                get.destroyForcibly();
                fail("get did not end\n" + leecher.tail());
            }
            assertEquals(0, get.exitValue(), "get failed: " + Files.readString(errors) + Files.readString(summary)
                    + "\n" + leecher.tail());
            log("get ended: " + Files.readString(summary).replaceAll("\\s+", " "));
            return JsonParser.parseString(Files.readString(summary)).getAsJsonObject();
        }

        @Override
        public void close() throws Exception {
            for (Node n : all(leecher)) {
                n.close();
            }
        }
    }
}
