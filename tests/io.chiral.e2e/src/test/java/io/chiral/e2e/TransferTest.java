package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonObject;

/** Two daemon processes on 127.0.0.1: one seeds, the other downloads over HTTP and verifies. */
class TransferTest {
    @TempDir
    static Path tmp;
    static Node seeder;
    static Node leecher;

    @BeforeAll
    static void start() throws Exception {
        seeder = Node.start(tmp.resolve("seeder"));
        leecher = Node.start(tmp.resolve("leecher"));
        seeder.awaitProtocol("http");
        leecher.awaitProtocol("http");
    }

    @AfterAll
    static void stop() throws Exception {
        try (Node a = seeder; Node b = leecher) {
            // both stopped cleanly (exit code 0) by close()
        }
    }

    @Test
    void sixtyFourMebibytesArriveByteIdentical() throws Exception {
        long size = 64L << 20;
        Path file = Node.randomFile(tmp, "random-64m.bin", size, 64);
        String expected = Node.sha256(file);

        Node.Result added = seeder.run("add", file.toString()).ok();
        assertEquals(expected, added.lastLine(), "add prints the CID (SHA-256, lowercase hex) on its last line");

        Path out = tmp.resolve("out64");
        String from = seeder.httpAddress();
        JsonObject summary = leecher.run("--json", "get", expected, "--from", from, "-o", out.toString()).ok().json();
        assertEquals("COMPLETED", summary.get("state").getAsString());
        Path got = Path.of(summary.get("output").getAsString());
        assertEquals(out.resolve("random-64m.bin"), got);
        assertEquals(-1L, Files.mismatch(file, got), "downloaded file differs from the original");
        assertEquals(size, summary.get("verifiedBytes").getAsLong());
        assertEquals(size, summary.getAsJsonObject("bytesPerSource").get("http://" + from).getAsLong());
        assertTrue(summary.get("elapsedSeconds").getAsDouble() > 0);
        try (var s = Files.list(out)) {
            assertEquals(1, s.count(), "no part file or other leftovers next to the result");
        }

        // the leecher now has the file and lists it
        assertTrue(leecher.run("ls").ok().out().contains(expected));
        // the plain (non-JSON) form prints the saved path on its last line; asking again for the same place
        // fetches nothing and answers with the file already there
        Node.Result again = leecher.run("get", expected, "--from", from, "-o", out.toString()).ok();
        assertEquals(got, Path.of(again.lastLine()));
        // another directory gets its own verified copy; an existing file of that name is never overwritten
        Path out2 = Files.createDirectories(tmp.resolve("out64b"));
        Files.writeString(out2.resolve("random-64m.bin"), "someone else's file");
        Path second = Path.of(leecher.run("get", expected, "--from", from, "-o", out2.toString()).ok().lastLine());
        assertEquals(out2.resolve("random-64m (1).bin"), second);
        assertEquals(expected, Node.sha256(second));
        assertEquals("someone else's file", Files.readString(out2.resolve("random-64m.bin")));
    }

    @Test
    void errorsAreOneClearLineAndANonZeroExit() throws Exception {
        String from = seeder.httpAddress();
        assertOneLineError(leecher.run("get", "not-a-cid", "--from", from), "cid");
        assertOneLineError(leecher.run("get", "ab".repeat(32), "--from", from), "ababababab".substring(0, 6));
        assertOneLineError(leecher.run("get", "cd".repeat(32), "--from", "127.0.0.1:1"), "127.0.0.1:1");
        assertOneLineError(leecher.run("add", tmp.resolve("does-not-exist.bin").toString()), "does-not-exist.bin");
        assertOneLineError(leecher.run("rm", "ef".repeat(32)), "efef");
        assertOneLineError(leecher.run("frobnicate"), "frobnicate");
        Node.Result notRunning = Node.exec(java.util.List.of(Node.CHIRAL.toString(), "--data",
                tmp.resolve("nobody-home").toString(), "ls"), java.time.Duration.ofMinutes(1));
        assertOneLineError(notRunning, "no node is running");
        assertTrue(seeder.isAlive() && leecher.isAlive(), "bad input never brings a node down");
    }

    @Test
    void removedFilesAreNoLongerServed() throws Exception {
        Path file = Node.randomFile(tmp, "small.bin", 100_000, 7);
        String cid = seeder.run("add", file.toString()).ok().lastLine();
        assertTrue(seeder.run("ls").ok().out().contains(cid));
        seeder.run("rm", cid).ok();
        assertFalse(seeder.run("ls").ok().out().contains(cid));
        assertOneLineError(leecher.run("get", cid, "--from", seeder.httpAddress(), "-o", tmp.resolve("o2").toString()), cid.substring(0, 6));
    }

    static void assertOneLineError(Node.Result r, String mentions) {
        assertNotEquals(0, r.exit(), "expected failure, got: " + r.out());
        String err = r.err().strip();
        assertEquals(1, err.lines().count(), "error must be one line, was:\n" + err);
        assertTrue(err.startsWith("chiral: "), err);
        assertTrue(err.toLowerCase().contains(mentions.toLowerCase()), "error should mention '" + mentions + "': " + err);
    }
}
