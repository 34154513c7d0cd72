package io.chiral.protocol.bittorrent.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;

/**
 * Peer-wire interop: {@link PeerDownload} fetches a complete ~8 MiB single-file torrent from a real libtorrent
 * 2.0.8 seeder on 127.0.0.1 (tests/interop/lt_seed.py) and verifies every piece, once with a torrent made by
 * {@link Metainfo#create} and once with one made by libtorrent.
 */
public class LibtorrentPeerTest {
    private static final int SIZE = 8 * 1024 * 1024 + 12345;
    private static Path work;
    private static EventLoopGroup group;

    @BeforeAll
    static void setUp() throws Exception {
        work = Files.createDirectories(Path.of("target", "peer").toAbsolutePath());
        group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
    }

    @AfterAll
    static void tearDown() throws Exception {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(5, TimeUnit.SECONDS);
    }

    @Test
    void downloadsFromLibtorrentWithOurTorrent() throws Exception {
        Path seed = Files.createDirectories(work.resolve("ours-seed"));
        Path file = randomFile(seed.resolve("ours.bin"), 1);
        byte[] torrent = Metainfo.create(file, 256 * 1024, List.of(), List.of(), "chiral test");
        Path torrentFile = work.resolve("ours.torrent");
        Files.write(torrentFile, torrent);
        download(Metainfo.parse(torrent), torrentFile, seed, file, "ours-dl");
    }

    @Test
    void downloadsFromLibtorrentWithItsTorrent() throws Exception {
        Path seed = Files.createDirectories(work.resolve("lt-seed"));
        Path file = randomFile(seed.resolve("lt.bin"), 2);
        Path torrentFile = work.resolve("lt.torrent");
        Process p = new ProcessBuilder("/usr/bin/python3", MetainfoTest.locate("tests/interop/lt_torrent.py").toString(),
                "create", file.toString(), torrentFile.toString(), "--v1-only", "--piece-length", "262144")
                .redirectError(ProcessBuilder.Redirect.appendTo(work.resolve("lt_torrent.log").toFile()))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, "lt_torrent.py create failed");
        download(Metainfo.parse(Files.readAllBytes(torrentFile)), torrentFile, seed, file, "lt-dl");
    }

    private static Path randomFile(Path path, long seed) throws Exception {
        byte[] data = new byte[SIZE];
        new Random(seed).nextBytes(data);
        return Files.write(path, data);
    }

    private static void download(Metainfo meta, Path torrentFile, Path seedDir, Path original, String dlName)
            throws Exception {
        Path target = Files.createDirectories(work.resolve(dlName));
        Files.deleteIfExists(target.resolve(meta.name()));
        Process lt = new ProcessBuilder("/usr/bin/python3", MetainfoTest.locate("tests/interop/lt_seed.py").toString(),
                torrentFile.toString(), seedDir.toString())
                .redirectError(ProcessBuilder.Redirect.appendTo(work.resolve("lt_seed.log").toFile())).start();
        try {
            BufferedReader r = new BufferedReader(new InputStreamReader(lt.getInputStream(), StandardCharsets.UTF_8));
            String line = r.readLine();
            if (line == null) {
                fail("lt_seed.py exited: " + Files.readString(work.resolve("lt_seed.log")));
            }
            JsonObject ready = JsonParser.parseString(line).getAsJsonObject();
            assertTrue(ready.get("ready").getAsBoolean(), line);
            assertEquals(meta.infoHashHex(), ready.get("info_hash").getAsString());
            int port = ready.get("port").getAsInt();

            PeerDownload dl = new PeerDownload(meta, target, Duration.ofSeconds(20));
            long t0 = System.nanoTime();
            Path got = dl.start(group, new InetSocketAddress("127.0.0.1", port)).get(25, TimeUnit.SECONDS);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            System.out.println("LibtorrentPeerTest " + dlName + ": " + meta.pieceCount() + " pieces of "
                    + meta.pieceLength() + " in " + ms + " ms, " + dl.failedPieces() + " failed");
            assertEquals(meta.pieceCount(), dl.verifiedPieces());
            assertEquals(0, dl.failedPieces());
            assertArrayEquals(Files.readAllBytes(original), Files.readAllBytes(got));
        } finally {
            lt.getOutputStream().close();
            if (!lt.waitFor(5, TimeUnit.SECONDS)) {
                lt.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        }
    }
}
