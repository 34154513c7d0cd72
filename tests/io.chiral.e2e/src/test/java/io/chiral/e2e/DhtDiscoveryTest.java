package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

/**
 * Three daemons joined through the Chiral DHT only: two seed the same file, the third finds them by CID
 * ({@code get} without {@code --from}), by keyword ({@code search}) and through {@code dht find / get / peers / stats}.
 */
class DhtDiscoveryTest {
    @TempDir
    static Path tmp;
    static Node a;
    static Node b;
    static Node c;

    @BeforeAll
    static void start() throws Exception {
        a = Node.start(tmp.resolve("a"));
        String boot = a.dhtAddress("chiral");
        b = Node.start(tmp.resolve("b"), "--bootstrap", boot);
        c = Node.start(tmp.resolve("c"), "--bootstrap", boot);
        for (Node n : new Node[] {a, b, c}) {
            n.awaitProtocol("http");
        }
    }

    @AfterAll
    static void stop() throws Exception {
        try (Node x = a; Node y = b; Node z = c) {
            // stopped cleanly by close()
        }
    }

    @Test
    void aCidIsFoundAndFetchedFromEveryProvider() throws Exception {
        long size = 24L << 20;
        Path original = Node.randomFile(tmp, "holiday-video.bin", size, 7);
        String cid = Node.sha256(original);
        Path copy = Files.createDirectories(tmp.resolve("b-files")).resolve("holiday-video.bin");
        Files.copy(original, copy);
        assertEquals(cid, a.run("add", original.toString()).ok().lastLine());
        assertEquals(cid, b.run("add", copy.toString()).ok().lastLine());

        // both provider records reach the DHT (publishing is asynchronous)
        JsonObject query = new JsonObject();
        query.addProperty("cid", cid);
        JsonObject found = Await.until(Duration.ofSeconds(60), "both providers and the file record in the DHT",
                () -> c.api("dht/find", query).getAsJsonObject(),
                f -> f.getAsJsonArray("providers").size() == 2 && f.has("file"));
        JsonObject file = found.getAsJsonObject("file");
        assertEquals("holiday-video.bin", file.get("name").getAsString());
        assertEquals(size, file.get("size").getAsLong());
        assertEquals(96, file.get("chunks").getAsInt());

        Node.Result plain = c.run("get", cid, "-o", tmp.resolve("out-plain").toString()).ok();
        assertTrue(plain.err().contains("found 2 providers"), plain.err());
        assertEquals(cid, Node.sha256(Path.of(plain.lastLine())));

        JsonObject summary = c.run("--json", "get", cid, "-o", tmp.resolve("out-json").toString()).ok().json();
        assertEquals("COMPLETED", summary.get("state").getAsString());
        Path got = Path.of(summary.get("output").getAsString());
        assertEquals(-1L, Files.mismatch(original, got));
        JsonObject perSource = summary.getAsJsonObject("bytesPerSource");
        assertEquals(2, perSource.size(), "bytes came from both providers: " + perSource);
        long total = 0;
        for (String k : perSource.keySet()) {
            assertTrue(perSource.get(k).getAsLong() > 0, "nothing from " + k + ": " + perSource);
            total += perSource.get(k).getAsLong();
        }
        assertEquals(size, total);

        // keyword index
        Node.Result search = c.run("search", "holiday").ok();
        assertTrue(search.out().contains(cid) && search.out().contains("holiday-video.bin"), search.out());
        // raw records of a namespaced key, signed by the publishers (node ids)
        JsonArray recs = c.run("--json", "dht", "get", "providers::" + cid).ok().jsonArray();
        assertTrue(recs.size() >= 2, recs.toString());
        String aId = a.run("--json", "id").ok().json().get("id").getAsString();
        assertTrue(recs.toString().contains(aId), "a's record is signed by a's node key");
    }

    @Test
    void unknownCidsAndBadInputAreClearErrors() throws Exception {
        String nobody = "ab".repeat(32);
        Node.Result r = c.run("get", nobody);
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("no providers of " + nobody + " found"), r.err());
        assertEquals(2, c.run("dht", "find", "xyz").exit());
        assertEquals(2, c.run("dht", "bogus").exit());
        Node.Result shortWord = c.run("search", "ab");
        assertEquals(1, shortWord.exit());
        assertTrue(shortWord.err().contains("at least 3"), shortWord.err());
    }

    @Test
    void routingTablesAndCountersAreVisible() throws Exception {
        Node.Result peers = c.run("dht", "peers").ok();
        assertTrue(peers.out().contains(a.dhtAddress("chiral")), peers.out());
        JsonArray stats = c.run("--json", "dht", "stats").ok().jsonArray();
        assertEquals(2, stats.size(), "chiral and mainline instances: " + stats);
        for (var e : stats) {
            JsonObject s = e.getAsJsonObject();
            if (s.get("network").getAsString().equals("chiral")) {
                assertTrue(s.get("routingTable").getAsInt() >= 2, s.toString());
                assertTrue(s.get("queriesOut").getAsLong() > 0, s.toString());
            }
        }
    }
}
