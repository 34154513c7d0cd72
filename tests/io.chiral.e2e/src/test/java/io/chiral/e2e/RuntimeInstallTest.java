package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonObject;

/**
 * The HTTP transport is a feature of its own: uninstall it from a running node, start the node without it,
 * install it from the built p2 update site, use it, and uninstall it again, without restarting in between.
 */
class RuntimeInstallTest {
    static final String FEATURE = "io.chiral.protocol.http.feature";
    static final Path REPO = Node.ROOT.resolve("releng/io.chiral.repository/target/repository");

    @TempDir
    Path tmp;

    @Test
    void httpTransportComesAndGoesWhileTheNodeRuns() throws Exception {
        assertTrue(Files.isDirectory(REPO), "update site not built at " + REPO);
        Path file = Node.randomFile(tmp, "payload.bin", 3_000_000, 5);
        try (Node seeder = Node.start(tmp.resolve("seeder")); Node node = Node.start(tmp.resolve("node"))) {
            seeder.awaitProtocol("http");
            node.awaitProtocol("http");
            String cid = seeder.run("add", file.toString()).ok().lastLine();
            String from = seeder.httpAddress();
            String oldAddress = node.httpAddress();

            node.run("uninstall", FEATURE).ok();
            assertNoHttp(node);
            assertTrue(!node.run("id").ok().out().contains("http "), "no http address after uninstall");
            assertPortClosed(oldAddress);

            // a node whose runtime has no HTTP transport starts without it
            node.stop();
            node.launch();
            node.awaitProtocol("bittorrent");
            assertNoHttp(node);
            Node.Result refused = node.run("get", cid, "--from", from, "-o", tmp.resolve("o1").toString());
            assertTrue(refused.exit() != 0 && refused.err().contains("http"), refused.err());

            // install from the update site into the running node, and use it
            node.run("install", "--repo", REPO.toString(), FEATURE).ok();
            node.awaitProtocol("http");
            assertTrue(node.run("features").ok().out().contains(FEATURE));
            JsonObject s = node.run("--json", "get", cid, "--from", from, "-o", tmp.resolve("o2").toString()).ok().json();
            assertEquals("COMPLETED", s.get("state").getAsString());
            assertEquals(-1L, Files.mismatch(file, Path.of(s.get("output").getAsString())));
            String newAddress = node.httpAddress();

            // and remove it again, still without a restart
            node.run("uninstall", FEATURE).ok();
            assertNoHttp(node);
            assertPortClosed(newAddress);
            assertTrue(node.isAlive());
        }
    }

    private static void assertNoHttp(Node node) throws Exception {
        assertTrue(node.protocols().lines().noneMatch(l -> l.startsWith("http ")), "no http protocol: " + node.protocols());
    }

    /**
     * The BitTorrent transport comes and goes the same way; its torrents are kept in the data directory, so a
     * shared torrent is served again, on the same port, once the feature is back.
     */
    @Test
    void bitTorrentTransportComesAndGoesAndItsTorrentsSurvive() throws Exception {
        String bt = "io.chiral.protocol.bittorrent.feature";
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "talk.mp4", 2_500_000, 6);
        try (Node seeder = Node.start(tmp.resolve("seeder")); Node leecher = Node.start(tmp.resolve("leecher"))) {
            seeder.awaitProtocol("bittorrent");
            leecher.awaitProtocol("bittorrent");
            seeder.run("add", "--protocol", "bittorrent", file.toString()).ok();
            Path torrent = file.resolveSibling("talk.mp4.torrent");
            String address = seeder.btAddress();

            seeder.run("uninstall", bt).ok();
            assertTrue(seeder.protocols().lines().noneMatch(l -> l.startsWith("bittorrent ")), seeder.protocols());
            assertTrue(seeder.protocols().lines().anyMatch(l -> l.startsWith("http ")), "HTTP stays: " + seeder.protocols());
            assertPortClosed(address);
            Node.Result refused = seeder.run("get", torrent.toString(), "-o", tmp.resolve("o0").toString());
            assertTrue(refused.exit() != 0, refused.out());

            seeder.run("install", "--repo", REPO.toString(), bt).ok();
            seeder.awaitProtocol("bittorrent");
            assertEquals(address, seeder.btAddress(), "the remembered port");
            JsonObject s = leecher.run("--json", "get", torrent.toString(), "--from", address, "-o",
                    tmp.resolve("o1").toString()).ok().json();
            assertEquals(-1L, Files.mismatch(file, Path.of(s.get("output").getAsString())));
            seeder.run("uninstall", bt).ok();
            assertPortClosed(address);
            assertTrue(seeder.isAlive());
        }
    }

    static void assertPortClosed(String hostPort) throws Exception {
        int port = Integer.parseInt(hostPort.substring(hostPort.lastIndexOf(':') + 1));
        // while it still listens, the bundle may be stopping
        Await.within(Duration.ofSeconds(10), Duration.ofMillis(200), () -> {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
                return false;
            } catch (ConnectException e) {
                return true;
            }
        });
        assertThrows(ConnectException.class, () -> {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
            }
        }, "port " + port + " still open: the stopped bundle did not release its socket");
    }
}
