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
 * The BitTorrent transport against aria2c 1.36 and qbittorrent-nox 4.5.2 (Debian packages, driven by
 * {@code tests/interop/aria2_peer.py} and {@code qbt_peer.py}) on 127.0.0.1: downloading from each as a seeder,
 * and seeding to aria2c.
 */
class ClientInteropTest {
    @TempDir
    Path tmp;

    @Test
    void downloadsFromAnAria2Seeder() throws Exception {
        downloadFrom("aria2_peer.py", 62);
    }

    @Test
    void downloadsFromAQbittorrentSeeder() throws Exception {
        downloadFrom("qbt_peer.py", 63);
    }

    private void downloadFrom(String driver, long seed) throws Exception {
        Path seedDir = Files.createDirectories(tmp.resolve("seed"));
        Path file = Node.randomFile(seedDir, "lecture.mkv", 4L * 1024 * 1024 + 321, seed);
        Path torrent = tmp.resolve("lecture.torrent");
        // aria2 1.36 miscomputes the info-hash of v1+v2 hybrids: a v1 torrent suits every client
        String btih = External.json("lt_torrent.py", "create", file.toString(), torrent.toString(), "--v1-only")
                .get("info_hash_v1").getAsString();
        try (External client = External.start(tmp.resolve(driver + ".log"), driver, "seed", torrent.toString(),
                seedDir.toString(), "--work", tmp.resolve("work").toString());
                Node a = Node.start(tmp.resolve("a"))) {
            int port = client.await("ready", Duration.ofSeconds(60)).get("port").getAsInt();
            a.awaitProtocol("bittorrent");
            JsonObject r = a.run("--json", "get", torrent.toString(), "--from", "127.0.0.1:" + port, "-o",
                    tmp.resolve("out").toString()).ok().json();
            assertEquals("COMPLETED", r.get("state").getAsString(), r.toString());
            assertEquals(btih, r.get("id").getAsString());
            assertEquals(-1L, Files.mismatch(file, Path.of(r.get("output").getAsString())));
            assertTrue(r.getAsJsonObject("bytesPerSource").get("bittorrent://127.0.0.1:" + port).getAsLong() > 0, r.toString());
        }
    }

    @Test
    void seedsToAnAria2Leecher() throws Exception {
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "backup.tar", 4L * 1024 * 1024 + 99, 64);
        try (Node a = Node.start(tmp.resolve("a"))) {
            a.awaitProtocol("bittorrent");
            a.run("add", "--protocol", "bittorrent", file.toString()).ok();
            Path torrent = file.resolveSibling("backup.tar.torrent");
            try (External aria2 = External.start(tmp.resolve("aria2.log"), "aria2_peer.py", "leech", torrent.toString(),
                    tmp.resolve("got").toString(), "--peer", a.btAddress(), "--work", tmp.resolve("work").toString())) {
                aria2.await("done", Duration.ofSeconds(90));
            }
            assertEquals(-1L, Files.mismatch(file, tmp.resolve("got/backup.tar")));
        }
    }
}
