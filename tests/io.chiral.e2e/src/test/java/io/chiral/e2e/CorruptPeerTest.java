package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonObject;

/**
 * A seeder whose file rots on disk after it was added (bytes flipped, modification time put back so the node
 * does not notice) serves wrong chunks. The downloader detects each one, fetches it again from the honest
 * seeder, bans the rotten one, and never writes a corrupt file.
 */
class CorruptPeerTest {
    static final int CHUNK = 256 * 1024;

    @TempDir
    Path tmp;

    @Test
    void badChunksAreDetectedRefetchedAndTheirSourceBanned() throws Exception {
        Path original = Node.randomFile(tmp, "data.bin", 32L * CHUNK + 1000, 99);
        Path goodCopy = Files.createDirectories(tmp.resolve("g")).resolve("data.bin");
        Path badCopy = Files.createDirectories(tmp.resolve("b")).resolve("data.bin");
        Files.copy(original, goodCopy);
        Files.copy(original, badCopy);
        try (Node good = Node.start(tmp.resolve("good"));
                Node bad = Node.start(tmp.resolve("bad"));
                Node leecher = Node.start(tmp.resolve("leecher"))) {
            good.awaitProtocol("http");
            bad.awaitProtocol("http");
            leecher.awaitProtocol("http");
            String cid = good.run("add", goodCopy.toString()).ok().lastLine();
            assertEquals(cid, bad.run("add", badCopy.toString()).ok().lastLine());
            // every chunk of the rotten copy is bad: however the engine spreads its requests over the two seeders, the
            // rotten one serves at least two bad chunks (its second is its ban) before the transfer can end
            long[] everyChunk = new long[33];
            for (int i = 0; i < everyChunk.length; i++) {
                everyChunk[i] = i * CHUNK + (i * 7919L) % 1000;
            }
            rot(badCopy, everyChunk);

            // the rotten seeder first, so that it is asked for chunks
            JsonObject s = leecher.run("--json", "get", cid, "--from", bad.httpAddress() + "," + good.httpAddress(),
                    "-o", tmp.resolve("out").toString()).ok().json();
            assertEquals("COMPLETED", s.get("state").getAsString());
            assertEquals(-1L, Files.mismatch(original, Path.of(s.get("output").getAsString())));
            assertTrue(s.get("corruptChunks").getAsInt() >= 1, "corrupt chunks were counted: " + s);
            String badLabel = "http://" + bad.httpAddress();
            assertTrue(s.getAsJsonArray("bannedSources").toString().contains(badLabel), "rotten seeder banned: " + s);
            assertTrue(s.getAsJsonObject("bytesPerSource").get("http://" + good.httpAddress()).getAsLong() > 0);

            // with only the rotten seeder the download fails cleanly and writes no file
            Path out2 = tmp.resolve("out2");
            Node.Result r = leecher.run("get", cid, "--from", bad.httpAddress(), "-o", out2.toString());
            assertTrue(r.exit() != 0, "must fail: " + r.out());
            assertTrue(r.err().contains("verification"), r.err());
            assertFalse(Files.exists(out2.resolve("data.bin")), "no file may be written from unverified data");
            assertTrue(bad.isAlive() && good.isAlive() && leecher.isAlive());
        }
    }

    /** Flips one byte at each offset and restores the modification time. */
    static void rot(Path file, long[] offsets) throws Exception {
        FileTime mtime = Files.getLastModifiedTime(file);
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            for (long off : offsets) {
                raf.seek(off);
                int b = raf.read();
                raf.seek(off);
                raf.write(b ^ 0xff);
            }
        }
        Files.setLastModifiedTime(file, mtime);
    }
}
