package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonObject;

/**
 * Dual lookup through the Chiral DHT: a node that shares a file as a torrent publishes
 * {@code info_hash_idx::<btih>} → CID, so a bare magnet link (no tracker, no peer, no mainline DHT) resolves on
 * another node to the Chiral providers of that CID, whose HTTP and BitTorrent addresses serve the pieces.
 */
class DualLookupTest {
    @TempDir
    Path tmp;

    @Test
    void aBareMagnetLinkFindsItsSourcesThroughInfoHashIdx() throws Exception {
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "paper.pdf", 12L * 1024 * 1024 + 17, 71);
        // a's upload is limited so that the transfer lasts about 3 s: long enough for b to find a's HTTP address
        // and use it too, which loopback BitTorrent alone otherwise beats at times (1 run in 8)
        try (Node a = Node.start(tmp.resolve("a"), "--max-upload-rate", "4M")) {
            Node b = Node.start(tmp.resolve("b"), "--bootstrap", a.dhtAddress("chiral"));
            try (b) {
                a.awaitProtocol("bittorrent");
                b.awaitProtocol("bittorrent");
                Node.Result added = a.run("add", "--protocol", "bittorrent", file.toString()).ok();
                String magnet = added.lastLine();
                String btih = magnet.substring(20, 60);
                String cid = Node.sha256(file);

                // the record is signed by a and found from b
                String records = awaitRecords(b, "info_hash_idx::" + btih, text -> text.contains(cid));
                assertTrue(records.contains(cid), "info_hash_idx record from b: " + records);

                JsonObject r = b.run("--json", "get", "magnet:?xt=urn:btih:" + btih, "-o", tmp.resolve("out").toString())
                        .ok().json();
                assertEquals("COMPLETED", r.get("state").getAsString(), r.toString());
                assertEquals(-1L, Files.mismatch(file, Path.of(r.get("output").getAsString())));
                assertEquals(cid, r.get("cid").getAsString());
                JsonObject per = r.getAsJsonObject("bytesPerSource");
                long total = per.entrySet().stream().mapToLong(e -> e.getValue().getAsLong()).sum();
                assertTrue(total >= Files.size(file), r.toString());
                String http = a.httpAddress();
                String bt = a.btAddress();
                assertTrue(per.keySet().stream().allMatch(k -> k.endsWith(http) || k.endsWith(bt)),
                        "every byte came from a, found through the Chiral DHT: " + per);
                // the metadata comes over BitTorrent (ut_metadata); pieces also over HTTP, as Chiral chunks
                assertTrue(per.has("http://" + http) && per.get("http://" + http).getAsLong() > 0,
                        "a's HTTP address served chunks of the torrent: " + per);
            }
        }
    }

    /**
     * The other direction: a CID download uses a provider that serves the file only over BitTorrent. Its provider
     * record names the torrent's info-hash; the downloading node connects with that info-hash, gets the chunk hashes
     * over the {@code chiral} extension, and fetches the chunks as 16 KiB blocks, each chunk verified by SHA-256.
     */
    @Test
    void aCidIsFetchedFromAProviderThatServesItOnlyOverBitTorrent() throws Exception {
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "thesis.tex", 5L * 1024 * 1024 + 333, 73);
        try (Node a = Node.start(tmp.resolve("a"))) {
            Node b = Node.start(tmp.resolve("b"), "--bootstrap", a.dhtAddress("chiral"));
            try (b) {
                a.awaitProtocol("bittorrent");
                b.awaitProtocol("bittorrent");
                String btih = a.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine().substring(20, 60);
                a.run("uninstall", "io.chiral.protocol.http.feature").ok();
                String cid = Node.sha256(file);

                // wait for a's record without HTTP (published again when the protocol went) to reach b
                String records = awaitRecords(b, "providers::" + cid,
                        text -> text.contains(btih) && !text.contains("\"http\""));
                assertTrue(records.contains(btih) && !records.contains("\"http\""),
                        "a's provider record names its torrent and no HTTP address: " + records);

                JsonObject r = b.run("--json", "get", cid, "-o", tmp.resolve("out").toString()).ok().json();
                assertEquals("COMPLETED", r.get("state").getAsString(), r.toString());
                assertEquals(-1L, Files.mismatch(file, Path.of(r.get("output").getAsString())));
                assertEquals(java.util.Set.of("bittorrent://" + a.btAddress()), r.getAsJsonObject("bytesPerSource").keySet(),
                        r.toString());
                assertEquals(Files.size(file), r.getAsJsonObject("bytesPerSource").get("bittorrent://" + a.btAddress())
                        .getAsLong(), r.toString());
            }
        }
    }

    /** The records under {@code KEY} that {@code node} finds in the DHT (as JSON text) once they satisfy {@code done}. */
    private static String awaitRecords(Node node, String key, java.util.function.Predicate<String> done) throws Exception {
        JsonObject query = new JsonObject();
        query.addProperty("key", key);
        return Await.until(Duration.ofSeconds(30), "records under " + key, () -> node.api("dht/get", query).toString(), done);
    }

    /** Peers from BitTorrent's mainline DHT: the seeder announces there, the magnet link's node finds it there. */
    @Test
    void aBareMagnetLinkFindsItsSeederInTheMainlineDht() throws Exception {
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "slides.pdf", 2L * 1024 * 1024 + 5, 72);
        try (Node a = Node.start(tmp.resolve("a"))) {
            // b shares a's mainline DHT only: its Chiral DHT knows nobody, so info_hash_idx cannot help
            Node b = Node.start(tmp.resolve("b"), "--mainline-bootstrap", a.dhtAddress("mainline"));
            try (b) {
                a.awaitProtocol("bittorrent");
                b.awaitProtocol("bittorrent");
                String btih = a.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine().substring(20, 60);
                JsonObject r = b.run("--json", "get", "magnet:?xt=urn:btih:" + btih, "-o", tmp.resolve("out").toString())
                        .ok().json();
                assertEquals("COMPLETED", r.get("state").getAsString(), r.toString());
                assertEquals(-1L, Files.mismatch(file, Path.of(r.get("output").getAsString())));
                assertEquals(java.util.Set.of("bittorrent://" + a.btAddress()), r.getAsJsonObject("bytesPerSource").keySet(),
                        r.toString());
            }
        }
    }
}
