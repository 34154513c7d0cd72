package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import com.google.gson.JsonObject;

/**
 * Peers that complete the handshake for a real torrent and are then of no use (idle, not interested) do not lock
 * the torrent: a full torrent replaces them with a real leecher, and handshake-only peers are dropped after 30 s.
 * The flood is bounded (60 connections on 127.0.0.1) and closed by the test.
 */
class IdlePeersTest {
    static final int FLOOD = 60; // more than the per-torrent limit (50)

    @TempDir
    Path tmp;

    /**
     * {@code say}: what the flood repeats every 5 s, BEP 3 message 3 ("not interested") or 2 ("interested", which
     * costs nothing to say and must not keep a slot for a peer that never takes or gives data).
     */
    @ParameterizedTest(name = "flood peers say message {0} every 5 s")
    @ValueSource(bytes = {3, 2})
    void idlePeersDoNotLockATorrent(byte say) throws Exception {
        Path shared = Files.createDirectories(tmp.resolve("share"));
        Path file = Node.randomFile(shared, "wanted.bin", 6L * 1024 * 1024 + 99, 5);
        List<Socket> flood = new ArrayList<>();
        ScheduledExecutorService chatter = Executors.newSingleThreadScheduledExecutor();
        try (Node seeder = Node.start(tmp.resolve("seeder"));
                Node leecher = Node.start(tmp.resolve("leecher"))) {
            seeder.awaitProtocol("bittorrent");
            leecher.awaitProtocol("bittorrent");
            String magnet = seeder.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine();
            String btih = magnet.substring("magnet:?xt=urn:btih:".length(), "magnet:?xt=urn:btih:".length() + 40);
            byte[] ih = HexFormat.of().parseHex(btih);
            String[] hp = seeder.btAddress().split(":");
            InetSocketAddress addr = new InetSocketAddress(hp[0], Integer.parseInt(hp[1]));

            // FLOOD peers handshake for the real info-hash, then only say "not interested" (or "interested") every
            // 5 s: never silent (no idle timeout applies), never of use
            Random random = new Random(3);
            for (int i = 0; i < FLOOD; i++) {
                Socket s = new Socket();
                s.connect(addr, 5000);
                s.setSoTimeout(10_000);
                s.getOutputStream().write(HostilePeerTest.handshake(ih, peerId(random)));
                flood.add(s);
            }
            chatter.scheduleAtFixedRate(() -> {
                for (Socket s : flood) {
                    try {
                        s.getOutputStream().write(new byte[] {0, 0, 0, 1, say});
                        drain(s);
                    } catch (IOException e) {
                        // refused or replaced by the seeder
                    }
                }
            }, 0, 5, TimeUnit.SECONDS);
            int held = Await.until(Duration.ofSeconds(30), "the flood to fill the torrent's peer slots",
                    () -> seeder.api("peers/" + btih).getAsJsonArray().size(), n -> n >= 50);
            assertEquals(50, held, "the flood fills the torrent's 50 peer slots");

            // a real leecher still gets the file, within a bounded time
            Path out = tmp.resolve("out");
            Process get = new ProcessBuilder(Node.CHIRAL.toString(), "--data", leecher.data.toString(), "--json", "get",
                    file.resolveSibling("wanted.bin.torrent").toString(), "--from", seeder.btAddress(), "-o",
                    out.toString()).redirectOutput(tmp.resolve("get.json").toFile())
                    .redirectError(tmp.resolve("get.err").toFile()).start();
            long t0 = System.nanoTime();
            boolean done = get.waitFor(60, TimeUnit.SECONDS);
            double took = (System.nanoTime() - t0) / 1e9;
            if (!done) {
                get.destroyForcibly();
                JsonObject t = TorrentSourcesTest.transfer(leecher, btih);
                throw new AssertionError("no download within 60 s while idle peers held the torrent; leecher transfer: " + t);
            }
            assertEquals(0, get.exitValue(), Files.readString(tmp.resolve("get.err")));
            System.out.printf("download of %d bytes with %d idle peers connected to the seeder: %.1f s%n",
                    Files.size(file), FLOOD, took);
            assertEquals(-1L, Files.mismatch(file, out.resolve("wanted.bin")));

            // peers that say nothing at all after their handshake are dropped after 30 s (not the 3 min silence limit)
            chatter.shutdownNow();
            for (Socket s : flood) {
                s.close();
            }
            if (say != 3) {
                return; // checked once
            }
            List<Socket> silent = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                Socket s = new Socket();
                s.connect(addr, 5000);
                s.getOutputStream().write(HostilePeerTest.handshake(ih, peerId(random)));
                silent.add(s);
            }
            long s0 = System.nanoTime();
            for (Socket s : silent) {
                s.setSoTimeout(60_000);
                assertClosed(s);
                double after = (System.nanoTime() - s0) / 1e9;
                assertTrue(after >= 20 && after < 60, "a handshake-only peer dropped after " + after + " s");
                s.close();
            }
            assertTrue(seeder.isAlive() && leecher.isAlive());
        } finally {
            chatter.shutdownNow();
            for (Socket s : flood) {
                s.close();
            }
        }
    }

    private static byte[] peerId(Random random) {
        byte[] id = "-XX0001-000000000000".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        for (int i = 8; i < 20; i++) {
            id[i] = (byte) ('a' + random.nextInt(26));
        }
        return id;
    }

    /** Reads what the seeder sent so far, without blocking. */
    private static void drain(Socket s) throws IOException {
        InputStream in = s.getInputStream();
        byte[] buf = new byte[4096];
        while (in.available() > 0) {
            if (in.read(buf) < 0) {
                return;
            }
        }
    }

    /** The seeder closes the connection (EOF or reset) before the socket timeout, whatever it sent first. */
    private static void assertClosed(Socket s) throws IOException {
        byte[] buf = new byte[4096];
        try {
            DataInputStream in = new DataInputStream(s.getInputStream());
            while (in.read(buf) >= 0) {
                // the handshake, the bitfield, keep-alives
            }
        } catch (SocketTimeoutException e) {
            throw new AssertionError("the seeder kept a handshake-only peer for 60 s");
        } catch (java.net.SocketException e) {
            // reset: closed too
        }
    }
}
