package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

/**
 * Where BitTorrent downloads are written: nothing unverified under the final name (a part file or directory renamed
 * when complete), a full disk named in one line and resumed from the part after space is freed, zero-length files of
 * multi-file torrents created, and a seeder that stops serving a file changed on disk. The disk-full tests mount a
 * small tmpfs and need root (they are skipped, with the reason, otherwise).
 */
class BitTorrentStorageTest {
    @TempDir
    Path tmp;

    @Test
    void aFullDiskFailsNamingTheFilesystemAndARetryResumesFromThePart() throws Exception {
        Path mnt = Files.createDirectories(tmp.resolve("small")).toRealPath();
        mountTmpfs(mnt, "size=8m");
        try {
            long size = 24L << 20;
            Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "f24.bin", size, 61);
            try (Node a = Node.start(tmp.resolve("a"));
                    Node b = Node.start(tmp.resolve("b"))) {
                a.awaitProtocol("bittorrent");
                b.awaitProtocol("bittorrent");
                String magnet = a.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine();
                String btih = magnet.substring(20, 60);
                Path torrent = file.resolveSibling("f24.bin.torrent");

                Node.Result failed = b.run("--json", "get", torrent.toString(), "--from", a.btAddress(), "-o", mnt.toString());
                assertNotEquals(0, failed.exit(), failed.out());
                String err = failed.err().strip();
                assertEquals(1, err.lines().count(), "one line: " + err);
                assertTrue(err.contains("the filesystem mounted at " + mnt + " "), "names the full filesystem: " + err);
                JsonObject r = failed.json();
                assertEquals("FAILED", r.get("state").getAsString(), r.toString());
                assertTrue(r.get("output").isJsonNull(), "no output while the data is not complete: " + r);
                assertFalse(Files.exists(mnt.resolve("f24.bin")), "nothing under the final name");
                Path part = mnt.resolve(".f24.bin." + btih + ".chiral-part");
                assertTrue(Files.isRegularFile(part), "the verified pieces stay in the part: " + list(mnt));
                long verifiedBefore = r.get("verifiedBytes").getAsLong();
                assertTrue(verifiedBefore > 0 && verifiedBefore < size, r.toString());

                // the core (HTTP) engine names the full filesystem too
                String cid = Node.sha256(file);
                Node.Result http = b.run("get", cid, "--from", a.httpAddress(), "-o", mnt.toString());
                assertNotEquals(0, http.exit(), http.out());
                assertTrue(http.err().strip().lines().count() == 1 && http.err().contains("the filesystem mounted at " + mnt + " "),
                        "names the full filesystem: " + http.err());

                // free space (the tmpfs grows, its content stays); the retry resumes from the part
                run("mount", "-o", "remount,size=64m", mnt.toString());
                JsonObject s = b.run("--json", "get", torrent.toString(), "--from", a.btAddress(), "-o", mnt.toString())
                        .ok().json();
                assertEquals("COMPLETED", s.get("state").getAsString(), s.toString());
                assertEquals(mnt.resolve("f24.bin").toString(), s.get("output").getAsString());
                assertEquals(-1L, Files.mismatch(file, mnt.resolve("f24.bin")));
                long resumed = s.get("resumedBytes").getAsLong();
                long fetched = s.get("fetchedBytes").getAsLong();
                System.out.printf("verified before the disk was full %d, resumed %d, fetched after %d of %d%n",
                        verifiedBefore, resumed, fetched, size);
                assertEquals(verifiedBefore, resumed, "every verified piece resumed from the part: " + s);
                assertTrue(fetched <= size - resumed, "resumed pieces were not fetched again: " + s);
                assertTrue(list(mnt).contains("f24.bin") && !Files.exists(part), "the part was renamed: " + list(mnt));
            }
        } finally {
            umount(mnt);
        }
    }

    /** The core (HTTP) engine: a full data dir ({@code store/}) is named, not the output directory. */
    @Test
    void aFullStoreIsNamedByTheHttpEngine() throws Exception {
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "doc.bin", 3L << 20, 62);
        Path bData = tmp.resolve("b");
        Path store = Files.createDirectories(bData.resolve("store")).toRealPath();
        mountTmpfs(store, "size=256k");
        try {
            try (Node a = Node.start(tmp.resolve("a"));
                    Node b = Node.start(bData)) {
                a.awaitProtocol("http");
                b.awaitProtocol("http");
                String cid = a.run("add", file.toString()).ok().lastLine();
                fill(store);
                Path out = tmp.resolve("out");
                Node.Result r = b.run("get", cid, "--from", a.httpAddress(), "-o", out.toString());
                assertNotEquals(0, r.exit(), r.out());
                String err = r.err().strip();
                assertEquals(1, err.lines().count(), "one line: " + err);
                assertTrue(err.contains("the filesystem mounted at " + store + " "), "names the full store: " + err);
                assertFalse(Files.exists(out.resolve("doc.bin")), "nothing under the final name");
            }
        } finally {
            umount(store);
        }
    }

    @Test
    void aRunningOrStalledDownloadHasNothingUnderItsName() throws Exception {
        long size = 8L << 20;
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "slow.bin", size, 63);
        Path out = tmp.resolve("out");
        try (Node a = Node.start(tmp.resolve("a"), "--max-upload-rate", "1M");
                Node b = Node.start(tmp.resolve("b"))) {
            a.awaitProtocol("bittorrent");
            b.awaitProtocol("bittorrent");
            String magnet = a.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine();
            String btih = magnet.substring(20, 60);
            Process client = new ProcessBuilder(Node.CHIRAL.toString(), "--data", b.data.toString(), "get",
                    file.resolveSibling("slow.bin.torrent").toString(), "--from", a.btAddress(), "-o", out.toString())
                    .redirectErrorStream(true).redirectOutput(tmp.resolve("client.log").toFile()).start();
            try {
                JsonObject running = awaitTransfer(b, btih, t -> t.get("verifiedBytes").getAsLong() > 0
                        && "DOWNLOADING".equals(t.get("state").getAsString()), "some pieces verified");
                assertNothingUnderTheName(out, running, btih);

                // the seeder freezes: the download stalls (the seeder is dropped after 20 s without a block)
                a.signal("STOP");
                try {
                    JsonObject stalled = awaitTransfer(b, btih, t -> t.getAsJsonObject("droppedSources").size() > 0,
                            "the frozen seeder dropped as stalled");
                    assertTrue(stalled.get("verifiedBytes").getAsLong() < size, stalled.toString());
                    assertNothingUnderTheName(out, stalled, btih);
                } finally {
                    a.signal("CONT");
                }
                // cancelled: the transfer goes, and so does its part
                b.run("cancel", btih).ok();
                // a cancelled download leaves nothing: [transfer, files in out] becomes [null, []]
                Await.until(Duration.ofSeconds(30), "the cancelled transfer and its part to go",
                        () -> java.util.Arrays.asList(transfer(b, btih), list(out)),
                        l -> l.get(0) == null && ((List<?>) l.get(1)).isEmpty());
            } finally {
                client.destroyForcibly();
                client.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    /**
     * kill -9 mid-download: the restarted node resumes from the part, renames it when complete, and after another
     * restart seeds the finished file from its final name.
     */
    @Test
    void resumesFromThePartAfterAKillAndSeedsFromTheFinalNameAfterARestart() throws Exception {
        long size = 16L << 20;
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "slow.bin", size, 68);
        Path out = tmp.resolve("out");
        try (Node a = Node.start(tmp.resolve("a"), "--max-upload-rate", "2M");
                Node b = Node.start(tmp.resolve("b"));
                Node c = Node.start(tmp.resolve("c"))) {
            a.awaitProtocol("bittorrent");
            b.awaitProtocol("bittorrent");
            String magnet = a.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine();
            String btih = magnet.substring(20, 60);
            String torrent = file.resolveSibling("slow.bin.torrent").toString();
            Process client = new ProcessBuilder(Node.CHIRAL.toString(), "--data", b.data.toString(), "get", torrent,
                    "--from", a.btAddress(), "-o", out.toString()).redirectErrorStream(true)
                    .redirectOutput(tmp.resolve("client.log").toFile()).start();
            JsonObject running = awaitTransfer(b, btih, t -> t.get("verifiedBytes").getAsLong() >= size / 4, "a quarter verified");
            assertNothingUnderTheName(out, running, btih);
            // the resume record (written every 2 s while pieces arrive) has been saved since then
            Path resume = b.data.resolve("bittorrent/" + btih + ".resume");
            long seen = System.currentTimeMillis();
            Await.until(Duration.ofSeconds(30), "the resume record saved after " + seen,
                    () -> Files.exists(resume) ? Files.getLastModifiedTime(resume).toMillis() : 0L, m -> m > seen + 100);
            b.kill9();
            client.destroyForcibly();
            assertFalse(Files.exists(out.resolve("slow.bin")), list(out).toString());

            b.launch();
            b.awaitProtocol("bittorrent");
            JsonObject s = b.run("--json", "get", torrent, "--from", a.btAddress(), "-o", out.toString()).ok().json();
            assertEquals("COMPLETED", s.get("state").getAsString(), s.toString());
            assertEquals(out.resolve("slow.bin").toString(), s.get("output").getAsString());
            assertEquals(-1L, Files.mismatch(file, out.resolve("slow.bin")));
            assertTrue(s.get("resumedBytes").getAsLong() > 0, "resumed from the part: " + s);
            assertEquals(List.of("slow.bin"), list(out));

            // restarted again, b seeds from the final name (a is gone)
            b.stop();
            a.stop();
            b.launch();
            b.awaitProtocol("bittorrent");
            c.awaitProtocol("bittorrent");
            JsonObject fromB = c.run("--json", "get", torrent, "--from", b.btAddress(), "-o", tmp.resolve("out-c").toString())
                    .ok().json();
            assertEquals("COMPLETED", fromB.get("state").getAsString(), fromB.toString());
            assertEquals(-1L, Files.mismatch(file, Path.of(fromB.get("output").getAsString())));

            // b's downloaded file changes: b stops seeding it, and says so in its transfer
            overwriteInPart(out.resolve("slow.bin"));
            assertStopsServing(b, c, btih, torrent, tmp.resolve("out-c2"), "slow.bin");
            JsonObject bs = transfer(b, btih);
            assertTrue(bs.get("error").getAsString().contains("changed on disk"), bs.toString());
        }
    }

    private static void assertNothingUnderTheName(Path out, JsonObject transfer, String btih) throws Exception {
        assertFalse(Files.exists(out.resolve("slow.bin")), "no file under the final name: " + list(out));
        assertTrue(Files.isRegularFile(out.resolve(".slow.bin." + btih + ".chiral-part")), list(out).toString());
        assertTrue(transfer.get("output") == null || transfer.get("output").isJsonNull(),
                "transfers names no output before the data is complete: " + transfer);
    }

    /** Issue 10, item 10: libtorrent, qBittorrent and aria2 create a multi-file torrent's zero-length files. */
    @Test
    void createsTheZeroLengthFilesOfAMultiFileTorrent() throws Exception {
        Path seedDir = Files.createDirectories(tmp.resolve("lt-seed"));
        Path album = Files.createDirectories(seedDir.resolve("album"));
        Path a1 = Node.randomFile(album, "01.flac", 700_001, 64);
        Path a2 = Node.randomFile(Files.createDirectories(album.resolve("bonus")), "demo.flac", 300_000, 65);
        Files.createFile(album.resolve("empty.txt"));
        Files.createFile(Files.createDirectories(album.resolve("notes")).resolve("none.md"));
        Path torrent = tmp.resolve("album.torrent");
        JsonObject created = External.json("lt_torrent.py", "create", album.toString(), torrent.toString());
        assertTrue(created.toString().contains("\"path\":\"album/notes/none.md\",\"size\":0"),
                "libtorrent lists the empty files: " + created);
        try (External lt = External.start(tmp.resolve("lt.log"), "lt_peer.py", "seed", torrent.toString(), seedDir.toString());
                Node a = Node.start(tmp.resolve("a"))) {
            int port = lt.await("ready", Duration.ofSeconds(30)).get("port").getAsInt();
            a.awaitProtocol("bittorrent");
            Path out = tmp.resolve("out");
            JsonObject r = a.run("--json", "get", torrent.toString(), "--from", "127.0.0.1:" + port, "-o", out.toString())
                    .ok().json();
            assertEquals("COMPLETED", r.get("state").getAsString(), r.toString());
            assertEquals(out.resolve("album").toString(), r.get("output").getAsString());
            assertEquals(-1L, Files.mismatch(a1, out.resolve("album/01.flac")));
            assertEquals(-1L, Files.mismatch(a2, out.resolve("album/bonus/demo.flac")));
            assertTrue(Files.isRegularFile(out.resolve("album/empty.txt")), "the empty file exists: " + tree(out));
            assertTrue(Files.isRegularFile(out.resolve("album/notes/none.md")), "and its directory: " + tree(out));
            assertEquals(0L, Files.size(out.resolve("album/notes/none.md")));
            assertEquals(List.of("album"), list(out), "the part directory was renamed to the torrent's name");
        }
    }

    /** Issue 10, item 8: the HTTP transport stops serving a changed file; the BitTorrent seeder must too. */
    @Test
    void aSeederStopsServingAFileThatChangedOnDisk() throws Exception {
        long size = 4L << 20;
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "report.bin", size, 66);
        try (Node a = Node.start(tmp.resolve("a"));
                Node b = Node.start(tmp.resolve("b"))) {
            a.awaitProtocol("bittorrent");
            b.awaitProtocol("bittorrent");
            String magnet = a.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine();
            String btih = magnet.substring(20, 60);
            overwriteInPart(file);
            assertStopsServing(a, b, btih, file.resolveSibling("report.bin.torrent").toString(), tmp.resolve("out"), "report.bin");
            assertTrue(a.run("id").ok().exit() == 0, "the seeder keeps running");
        }
    }

    // ---- helpers ----

    /** Overwrites 1 MiB of {@code file} from 1 MiB on: same size, new content, a newer modification time. */
    private static void overwriteInPart(Path file) throws Exception {
        long size = Files.size(file);
        FileTime before = Files.getLastModifiedTime(file);
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            byte[] junk = new byte[1 << 20];
            new java.util.Random(67).nextBytes(junk);
            raf.seek(1 << 20);
            raf.write(junk);
        }
        Files.setLastModifiedTime(file, FileTime.fromMillis(before.toMillis() + 5000));
        assertEquals(size, Files.size(file));
    }

    /**
     * {@code leecher} gets {@code torrent} from {@code seeder}, whose file {@code name} changed on disk: the seeder
     * must notice at its first read and stop (one log line, no peer left), and the leecher must get no modified
     * byte (no failed piece, nobody banned). Today's seeder serves the new bytes and is banned for them.
     */
    private static void assertStopsServing(Node seeder, Node leecher, String btih, String torrent, Path out, String name)
            throws Exception {
        // the leecher may list an earlier, finished transfer of the same torrent until the new one replaces it
        JsonObject earlier = transfer(leecher, btih);
        Process client = new ProcessBuilder(Node.CHIRAL.toString(), "--data", leecher.data.toString(), "get", torrent,
                "--from", seeder.btAddress(), "-o", out.toString()).redirectErrorStream(true)
                .redirectOutput(out.resolveSibling(out.getFileName() + "-client.log").toFile()).start();
        try {
            Await.until(Duration.ofSeconds(60), "the seeder to stop seeding, or the leecher to see a bad piece, ban or complete",
                    () -> transfer(leecher, btih), t -> t != null && !t.equals(earlier)
                            && (!seeder.logLines("stopped seeding").isEmpty() || t.get("corruptChunks").getAsInt() > 0
                                    || t.getAsJsonArray("bannedSources").size() > 0 || "COMPLETED".equals(t.get("state").getAsString())));
            JsonObject t = transfer(leecher, btih);
            assertTrue(t != null, "the leecher has the transfer");
            assertEquals(0, t.get("corruptChunks").getAsInt(), "the leecher got no modified bytes: " + t);
            assertEquals(0, t.getAsJsonArray("bannedSources").size(), "nothing to ban the seeder for: " + t);
            assertNotEquals("COMPLETED", t.get("state").getAsString(), t.toString());
            String line = seeder.logLines("stopped seeding");
            assertTrue(line.contains(name) && line.contains("changed on disk"), "one line says why: " + line);
            // nothing more is served: the seeder's torrent stops and drops its peers
            Await.until(Duration.ofSeconds(30), "the seeder to have no peer left for the changed file",
                    () -> seeder.api("peers/" + btih).getAsJsonArray(), JsonArray::isEmpty);
            JsonObject after = transfer(leecher, btih);
            assertEquals(0, after.get("corruptChunks").getAsInt(), after.toString());
            leecher.run("cancel", btih).ok();
        } finally {
            client.destroyForcibly();
            client.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** The transfer with id {@code btih} of {@code n}, or null. */
    static JsonObject transfer(Node n, String btih) throws Exception {
        return n.transfer(btih);
    }

    private static JsonObject awaitTransfer(Node n, String btih, java.util.function.Predicate<JsonObject> condition,
            String what) throws Exception {
        return Await.until(Duration.ofSeconds(60), what, () -> transfer(n, btih), t -> t != null && condition.test(t));
    }

    private static List<String> list(Path dir) throws Exception {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> !n.equals("lost+found")).sorted().toList();
        }
    }

    private static List<String> tree(Path dir) throws Exception {
        try (var s = Files.walk(dir)) {
            return s.map(p -> dir.relativize(p).toString()).sorted().toList();
        }
    }

    /** Mounts a tmpfs at {@code dir}: only root can, so the test is skipped (with the reason) otherwise. */
    private static void mountTmpfs(Path dir, String options) throws Exception {
        String uid = new String(new ProcessBuilder("id", "-u").start().getInputStream().readAllBytes()).strip();
        assumeTrue(uid.equals("0"), "mounting a small tmpfs to fill needs root; running as uid " + uid);
        Node.Result r = Node.exec(List.of("mount", "-t", "tmpfs", "-o", options, "tmpfs", dir.toString()), Duration.ofSeconds(30));
        assumeTrue(r.exit() == 0, "cannot mount a tmpfs here: " + r.err().strip());
    }

    private static void umount(Path dir) throws Exception {
        Node.exec(List.of("umount", "-l", dir.toString()), Duration.ofSeconds(30));
    }

    private static void run(String... cmd) throws Exception {
        Node.Result r = Node.exec(List.of(cmd), Duration.ofSeconds(30));
        if (r.exit() != 0) {
            throw new AssertionError(String.join(" ", cmd) + " failed: " + r.err() + r.out());
        }
    }

    /** Fills the filesystem holding {@code dir} until a write fails. */
    private static void fill(Path dir) throws Exception {
        byte[] block = new byte[4096];
        try (var out = Files.newOutputStream(dir.resolve("filler"))) {
            while (true) {
                out.write(block);
            }
        } catch (java.io.IOException e) {
            assertTrue(e.getMessage() != null && e.getMessage().contains("No space left"), e.toString());
        }
    }
}
