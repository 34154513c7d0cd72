package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.BitSet;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonObject;

/** kill -9 of the downloading daemon mid-transfer; after a restart the download resumes from its verified chunks. */
class ResumeAfterKillTest {
    static final long SIZE = 64L << 20;
    static final long RATE = 5L << 20; // the seeder's upload limit: ~13 s, margin for slow polls on a loaded machine

    @TempDir
    Path tmp;

    @Test
    void resumesWithoutFetchingVerifiedChunksAgain() throws Exception {
        Path file = Node.randomFile(tmp, "big.bin", SIZE, 42);
        Path out = tmp.resolve("out");
        try (Node seeder = Node.start(tmp.resolve("seeder"), "--max-upload-rate", "5M");
                Node leecher = Node.start(tmp.resolve("leecher"))) {
            seeder.awaitProtocol("http");
            leecher.awaitProtocol("http");
            String cid = seeder.run("add", file.toString()).ok().lastLine();
            String from = seeder.httpAddress();

            Process client = new ProcessBuilder(Node.CHIRAL.toString(), "--data", leecher.data.toString(), "get", cid,
                    "--from", from, "-o", out.toString()).redirectErrorStream(true)
                    .redirectOutput(tmp.resolve("client.log").toFile()).start();
            long seen = Await.until(Duration.ofSeconds(60), "a fifth of the download verified",
                    () -> verifiedBytes(leecher, cid), v -> v >= SIZE / 5);
            assertTrue(seen < SIZE, "download should be under way, verified " + seen);
            long beforeKill = verifiedBytes(leecher, cid);
            // the kill comes once a checkpoint on disk vouches for what was verified by now
            Await.until(Duration.ofSeconds(10), "a checkpoint of the " + beforeKill + " bytes verified",
                    () -> checkpointedBytes(leecher, cid), c -> c >= beforeKill);
            leecher.kill9();
            client.destroyForcibly();
            assertTrue(beforeKill < SIZE, "download finished before the kill: the seeder's rate limit did not hold");

            leecher.launch(); // same data dir, same flags: the interrupted download is picked up again
            leecher.awaitProtocol("http");
            JsonObject s = leecher.run("--json", "get", cid, "--from", from, "-o", out.toString()).ok().json();
            assertEquals("COMPLETED", s.get("state").getAsString());
            assertEquals(-1L, Files.mismatch(file, Path.of(s.get("output").getAsString())));
            long resumed = s.get("resumedBytes").getAsLong();
            long fetched = s.get("fetchedBytes").getAsLong();
            System.out.printf("verified before kill %d, resumed %d, fetched after restart %d of %d%n", beforeKill,
                    resumed, fetched, SIZE);
            // everything checkpointed before the kill (one checkpoint interval at most is lost) is reused ...
            assertTrue(resumed >= beforeKill - RATE * 2, "resumed " + resumed + " of " + beforeKill + " verified before the kill");
            // ... and not fetched again (a few chunks of slack for requests in flight)
            assertTrue(fetched <= SIZE - resumed + (2L << 20), "fetched " + fetched + " after resuming " + resumed);
            try (var l = Files.list(out)) {
                assertEquals(List.of(out.resolve("big.bin")), l.toList(), "only the finished file remains");
            }
        }
    }

    static long verifiedBytes(Node n, String cid) throws Exception {
        JsonObject t = n.transfer(cid);
        return t == null ? 0 : t.get("verifiedBytes").getAsLong();
    }

    /**
     * The bytes that the checkpoint on disk ({@code store/CID.bitmap}: "CHBM1", the chunk count, the bits of the
     * verified chunks) vouches for; SIZE is a whole number of chunks.
     */
    static long checkpointedBytes(Node n, String cid) throws Exception {
        Path bitmap = n.data.resolve("store").resolve(cid + ".bitmap");
        if (!Files.exists(bitmap)) {
            return 0;
        }
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(bitmap));
        b.position(5);
        int chunks = b.getInt();
        return BitSet.valueOf(b).cardinality() * (SIZE / chunks);
    }
}
