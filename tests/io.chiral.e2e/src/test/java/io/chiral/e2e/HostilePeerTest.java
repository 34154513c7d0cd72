package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonObject;

/**
 * Peers that break the BitTorrent protocol against a real daemon: garbage instead of a handshake, an info-hash
 * the node does not serve, an oversized length prefix, an unknown message id, and a seeder that answers requests
 * with wrong data. Each is dropped; the protocol breakers and the liar are banned; the node keeps serving.
 */
class HostilePeerTest {
    private static final byte[] PROTOCOL = "BitTorrent protocol".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path tmp;

    @Test
    void protocolBreakersAreDroppedAndBannedAndTheNodeKeepsServing() throws Exception {
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "notes.bin", 2L * 1024 * 1024 + 3, 51);
        try (Node a = Node.start(tmp.resolve("a"))) {
            a.awaitProtocol("bittorrent");
            String magnet = a.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine();
            byte[] btih = HexFormat.of().parseHex(magnet.substring(20, 60));
            String[] hp = a.btAddress().split(":");
            InetSocketAddress addr = new InetSocketAddress(hp[0], Integer.parseInt(hp[1]));

            // 1. not a handshake at all: neither the plaintext one nor an encrypted (MSE) one, whose public key and
            // pad would end within 96 + 512 + 20 bytes
            try (Socket s = connect(addr)) {
                byte[] junk = new byte[1024];
                new Random(1).nextBytes(junk);
                junk[0] = 0;
                s.getOutputStream().write(junk);
                assertClosed(s, "garbage handshake");
            }
            // 2. an info-hash this node does not serve
            try (Socket s = connect(addr)) {
                s.getOutputStream().write(handshake(new byte[20], peerId("unknownhash0")));
                assertClosed(s, "unknown info-hash");
            }
            // 3. a length prefix far beyond any message: dropped, then refused when it comes back
            byte[] liar = peerId("oversized000");
            try (Socket s = connect(addr)) {
                s.getOutputStream().write(handshake(btih, liar));
                readHandshake(s, btih);
                new DataOutputStream(s.getOutputStream()).writeInt(0x7fffffff);
                assertClosed(s, "oversized length");
            }
            assertBanned(addr, btih, liar);
            // 4. an unknown message id
            byte[] odd = peerId("unknownid000");
            try (Socket s = connect(addr)) {
                s.getOutputStream().write(handshake(btih, odd));
                readHandshake(s, btih);
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                out.writeInt(3);
                out.writeByte(99);
                out.writeShort(0);
                assertClosed(s, "unknown message id");
            }
            assertBanned(addr, btih, odd);

            // a well-behaved peer is still served: the node kept running
            try (Socket s = connect(addr)) {
                s.getOutputStream().write(handshake(btih, peerId("wellbehaved0")));
                readHandshake(s, btih);
                DataInputStream in = new DataInputStream(s.getInputStream());
                int len = in.readInt();
                int id = in.readUnsignedByte();
                assertTrue(id == 14 || id == 5, "have-all or bitfield after the handshake, got id " + id + " len " + len);
            }
            assertEquals(0, a.run("id").exit());
        }
    }

    @Test
    void aSeederSendingWrongDataIsBannedAndTheFileStillArrivesIntact() throws Exception {
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "photo.raw", 3L * 1024 * 1024 + 99, 52);
        try (Node honest = Node.start(tmp.resolve("honest"));
                Node leecher = Node.start(tmp.resolve("leecher"));
                ServerSocket liar = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            honest.awaitProtocol("bittorrent");
            leecher.awaitProtocol("bittorrent");
            honest.run("add", "--protocol", "bittorrent", file.toString()).ok();
            Path torrent = file.resolveSibling("photo.raw.torrent");
            AtomicInteger lies = new AtomicInteger();
            Thread t = new Thread(() -> serveGarbage(liar, lies), "liar");
            t.setDaemon(true);
            t.start();
            String liarAddress = "127.0.0.1:" + liar.getLocalPort();
            // the liar first, so that it is asked for pieces
            JsonObject r = leecher.run("--json", "get", torrent.toString(), "--from", liarAddress + "," + honest.btAddress(),
                    "-o", tmp.resolve("out").toString()).ok().json();
            assertEquals("COMPLETED", r.get("state").getAsString(), r.toString());
            assertEquals(-1L, Files.mismatch(file, Path.of(r.get("output").getAsString())));
            assertTrue(lies.get() > 0, "the liar was asked for blocks");
            assertTrue(r.get("corruptChunks").getAsInt() >= 1, "failed pieces counted: " + r);
            assertTrue(r.getAsJsonArray("bannedSources").toString().contains("127.0.0.1:"), "liar banned: " + r);
            assertEquals(0, leecher.run("id").exit());
        }
    }

    /** A seeder that claims every piece and answers each request with random bytes of the right length. */
    private static void serveGarbage(ServerSocket server, AtomicInteger lies) {
        Random random = new Random(7);
        while (!server.isClosed()) {
            try (Socket s = server.accept()) {
                s.setSoTimeout(20_000);
                DataInputStream in = new DataInputStream(s.getInputStream());
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                byte[] hs = new byte[68];
                in.readFully(hs);
                byte[] ih = java.util.Arrays.copyOfRange(hs, 28, 48);
                out.write(handshake(ih, peerId("liar00000000"), true));
                out.writeInt(1);
                out.writeByte(14); // have all
                out.writeInt(1);
                out.writeByte(1); // unchoke
                out.flush();
                while (true) {
                    int len = in.readInt();
                    if (len == 0) {
                        continue;
                    }
                    int id = in.readUnsignedByte();
                    byte[] body = new byte[len - 1];
                    in.readFully(body);
                    if (id == 6) {
                        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(body);
                        int index = b.getInt();
                        int begin = b.getInt();
                        int length = b.getInt();
                        byte[] block = new byte[length];
                        random.nextBytes(block);
                        out.writeInt(9 + length);
                        out.writeByte(7);
                        out.writeInt(index);
                        out.writeInt(begin);
                        out.write(block);
                        out.flush();
                        lies.incrementAndGet();
                    }
                }
            } catch (IOException e) {
                // the downloader hung up (banned us): wait for the next connection
            }
        }
    }

    private static Socket connect(InetSocketAddress a) throws IOException {
        Socket s = new Socket();
        s.connect(a, 5000);
        s.setSoTimeout(10_000);
        return s;
    }

    static byte[] peerId(String twelve) {
        return ("-XX0001-" + twelve).getBytes(StandardCharsets.US_ASCII);
    }

    static byte[] handshake(byte[] infoHash, byte[] peerId) {
        return handshake(infoHash, peerId, false);
    }

    static byte[] handshake(byte[] infoHash, byte[] peerId, boolean fast) {
        byte[] h = new byte[68];
        h[0] = 19;
        System.arraycopy(PROTOCOL, 0, h, 1, 19);
        h[20 + 7] = (byte) (fast ? 0x04 : 0);
        System.arraycopy(infoHash, 0, h, 28, 20);
        System.arraycopy(peerId, 0, h, 48, 20);
        return h;
    }

    private static void readHandshake(Socket s, byte[] infoHash) throws IOException {
        byte[] h = new byte[68];
        new DataInputStream(s.getInputStream()).readFully(h);
        assertArrayEquals(infoHash, java.util.Arrays.copyOfRange(h, 28, 48), "the node answers for the same torrent");
    }

    /** The node closes the connection (EOF or reset) within the socket timeout, whatever it sent first. */
    private static void assertClosed(Socket s, String what) throws IOException {
        byte[] buf = new byte[4096];
        try {
            while (s.getInputStream().read(buf) >= 0) {
                // drain what the node sent before closing
            }
        } catch (SocketTimeoutException e) {
            throw new AssertionError("the node did not drop a peer sending " + what);
        } catch (java.net.SocketException e) {
            // reset: closed too
        }
    }

    /** A banned peer id is refused right after the handshake: no have-all or bitfield follows. */
    private static void assertBanned(InetSocketAddress addr, byte[] btih, byte[] peerId) throws IOException {
        try (Socket s = connect(addr)) {
            s.getOutputStream().write(handshake(btih, peerId));
            DataInputStream in = new DataInputStream(s.getInputStream());
            try {
                byte[] h = new byte[68];
                in.readFully(h);
                int len = in.readInt();
                throw new AssertionError("a banned peer got a message of " + len + " bytes after the handshake");
            } catch (EOFException | java.net.SocketException e) {
                // refused
            }
        }
    }
}
