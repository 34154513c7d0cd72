package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

/**
 * A BitTorrent download with no usable source says what it waits for and fails, in bounded time, with the reason
 * (what was tried, who was banned) rather than hanging; the peers given with {@code --from} stay with the transfer
 * across a daemon restart.
 */
class TorrentSourcesTest {
    @TempDir
    Path tmp;

    /** A magnet nobody has: the status names trackers, DHT and peers, the size is unknown (not 100 %), then it fails. */
    @Test
    void aMagnetWithNoPeersFailsWithWhatWasTried() throws Exception {
        String btih = "0123456789abcdef0123456789abcdef01234567";
        // port 1 refuses at once: a tracker that was tried and failed
        String magnet = "magnet:?xt=urn:btih:" + btih + "&dn=nobody.bin&tr=http%3A%2F%2F127.0.0.1%3A1%2Fannounce";
        try (Node n = Node.start(tmp.resolve("n"))) {
            n.awaitProtocol("bittorrent");
            // while it waits: RESOLVING with an unknown size (not 100 %), and a status saying what was tried
            Process waiting = new ProcessBuilder(Node.CHIRAL.toString(), "--data", n.data.toString(), "get", magnet,
                    "--source-timeout", "10m", "-o", tmp.resolve("out").toString()).redirectErrorStream(true)
                    .redirectOutput(tmp.resolve("client.log").toFile()).start();
            JsonObject t = Await.until(Duration.ofSeconds(60), "a status naming the failed tracker", () -> transfer(n, btih),
                    x -> x != null && x.has("status") && !x.get("status").isJsonNull()
                            && x.get("status").getAsString().contains("1 failed"));
            String status = t.has("status") && !t.get("status").isJsonNull() ? t.get("status").getAsString() : "";
            assertTrue(status.startsWith("waiting for peers: 1 tracker tried (1 failed), 0 DHT nodes asked, 0 peers known, "
                    + "0 connected, 0 banned"), "status says what was tried: " + t);
            assertEquals("RESOLVING", t.get("state").getAsString());
            assertEquals(-1, t.get("totalBytes").getAsLong(), "size unknown until the metadata came: " + t);
            String line = n.run("transfers").ok().out();
            assertTrue(line.contains(btih + "  RESOLVING     0%  0.0/? MiB"), "no 100 % while resolving: " + line);
            waiting.destroyForcibly();
            waiting.waitFor(10, TimeUnit.SECONDS);

            // the same get with a short source timeout fails, in bounded time, naming what was tried
            long t0 = System.nanoTime();
            Node.Result r = n.run("get", magnet, "--source-timeout", "3s", "-o", tmp.resolve("out").toString());
            double took = (System.nanoTime() - t0) / 1e9;
            assertTrue(r.exit() != 0, "must fail: " + r.out() + r.err());
            assertTrue(took < 60, "failed after " + took + " s");
            String err = r.err().strip();
            assertTrue(err.contains("no usable source for 3 s") && err.contains("1 tracker tried (1 failed)")
                    && err.contains("DHT nodes asked") && err.contains("0 peers known") && err.contains("0 banned"),
                    "one-line reason naming what was tried: " + err);
            assertEquals(1, err.lines().filter(l -> l.contains("no usable source")).count(), err);

            // --json: the reason in the transfer's error field
            Node.Result j = n.run("--json", "get", magnet, "--source-timeout", "2s");
            assertTrue(j.exit() != 0, j.out());
            JsonObject o = j.json();
            assertEquals("FAILED", o.get("state").getAsString());
            assertTrue(o.get("error").getAsString().contains("no usable source for 2 s: 1 tracker tried (1 failed)"), o.toString());
            assertTrue(n.isAlive());
        }
    }

    /**
     * The only seeder serves bad data: it is banned, and the download fails with a reason naming it; the transfer
     * stays resumable (the pieces verified before are kept: none here).
     */
    @Test
    void aTorrentWhoseOnlySeederIsBannedFailsNamingIt() throws Exception {
        Path shared = Files.createDirectories(tmp.resolve("share"));
        Path file = Node.randomFile(shared, "rotten.bin", 3L * 1024 * 1024 + 4321, 17);
        try (Node seeder = Node.start(tmp.resolve("seeder"));
                Node leecher = Node.start(tmp.resolve("leecher"))) {
            seeder.awaitProtocol("bittorrent");
            leecher.awaitProtocol("bittorrent");
            seeder.run("add", "--protocol", "bittorrent", file.toString()).ok();
            Path torrent = file.resolveSibling("rotten.bin.torrent");
            // the file rots on the seeder's disk (same size and modification time): every piece it serves is bad
            // (within the file: a byte written past its end would change its size, and the seeder stops serving a file
            // that changed on disk instead of serving bad pieces)
            long[] offsets = new long[(int) (Files.size(file) / (64L * 1024))];
            for (int i = 0; i < offsets.length; i++) {
                offsets[i] = i * 64L * 1024 + 7;
            }
            CorruptPeerTest.rot(file, offsets);
            String from = seeder.btAddress();
            long t0 = System.nanoTime();
            Node.Result r = leecher.run("get", torrent.toString(), "--from", from, "--source-timeout", "5s", "-o",
                    tmp.resolve("out").toString());
            double took = (System.nanoTime() - t0) / 1e9;
            assertTrue(r.exit() != 0, "must fail: " + r.out() + r.err());
            assertTrue(took < 90, "failed after " + took + " s");
            String err = r.err().strip();
            assertTrue(err.contains("no usable source for 5 s") && err.contains("1 banned (bittorrent://" + from + ": banned: ")
                    && err.contains("failed its SHA-1 check"), "the reason names the banned seeder: " + err);
            assertTrue(seeder.isAlive() && leecher.isAlive());
        }
    }

    /**
     * The leecher daemon is killed mid-transfer and started again: the transfer goes on from the peer given with
     * {@code --from} before (kept in its resume state) without naming it again, and completes byte-identical.
     */
    @Test
    void fromPeersSurviveARestart() throws Exception {
        Path shared = Files.createDirectories(tmp.resolve("share"));
        long size = 12L * 1024 * 1024;
        Path file = Node.randomFile(shared, "movie.bin", size, 23);
        Path out = tmp.resolve("out");
        try (Node seeder = Node.start(tmp.resolve("seeder"), "--max-upload-rate", "1M");
                Node leecher = Node.start(tmp.resolve("leecher"))) {
            seeder.awaitProtocol("bittorrent");
            leecher.awaitProtocol("bittorrent");
            String magnet = seeder.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine();
            String btih = magnet.substring("magnet:?xt=urn:btih:".length(), "magnet:?xt=urn:btih:".length() + 40);
            Path torrent = file.resolveSibling("movie.bin.torrent");
            Process client = new ProcessBuilder(Node.CHIRAL.toString(), "--data", leecher.data.toString(), "get",
                    torrent.toString(), "--from", seeder.btAddress(), "-o", out.toString()).redirectErrorStream(true)
                    .redirectOutput(tmp.resolve("client.log").toFile()).start();
            long seen = Await.until(Duration.ofSeconds(60), "an eighth of the download verified", () -> {
                JsonObject t = transfer(leecher, btih);
                return t == null ? 0 : t.get("verifiedBytes").getAsLong();
            }, v -> v >= size / 8);
            assertTrue(seen < size, "download under way, verified " + seen);
            leecher.kill9();
            client.destroyForcibly();

            leecher.launch(); // same data dir and flags; nobody names the seeder again
            leecher.awaitProtocol("bittorrent");
            JsonObject t = Await.until(Duration.ofSeconds(90), "the restarted transfer to end", () -> transfer(leecher, btih),
                    x -> x != null && FINAL.contains(x.get("state").getAsString()));
            assertEquals("COMPLETED", t.get("state").getAsString(), "the restarted transfer went on from the --from peer: "
                    + t + "\n" + leecher.tail());
            assertEquals(-1L, Files.mismatch(file, Path.of(t.get("output").getAsString())));
            assertTrue(t.getAsJsonObject("bytesPerSource").has("bittorrent://" + seeder.btAddress()), t.toString());
        }
    }

    private static final Set<String> FINAL = Set.of("COMPLETED", "FAILED", "CANCELLED");

    /** The transfer with this id (a BitTorrent info-hash) from {@code chiral --json transfers}, or null. */
    static JsonObject transfer(Node n, String id) throws Exception {
        return n.transfer(id);
    }
}
