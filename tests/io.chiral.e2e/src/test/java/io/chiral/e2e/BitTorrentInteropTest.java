package io.chiral.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

/**
 * The BitTorrent transport of real daemons against libtorrent 2.0.8 (Debian's python3-libtorrent, driven by
 * {@code tests/interop/lt_peer.py}) and Debian's opentracker, all on 127.0.0.1.
 */
class BitTorrentInteropTest {
    @TempDir
    Path tmp;

    @Test
    void downloadsFromLibtorrentByTorrentFileAndByMagnetLink() throws Exception {
        Path seedDir = Files.createDirectories(tmp.resolve("lt-seed"));
        Path file = Node.randomFile(seedDir, "clip.bin", 6L * 1024 * 1024 + 12345, 41);
        Path torrent = tmp.resolve("clip.torrent");
        // libtorrent's default: a v1+v2 hybrid, of which we read the v1 part
        JsonObject created = External.json("lt_torrent.py", "create", file.toString(), torrent.toString());
        String btih = created.get("info_hash_v1").getAsString();
        try (External lt = External.start(tmp.resolve("lt.log"), "lt_peer.py", "seed", torrent.toString(), seedDir.toString());
                Node a = Node.start(tmp.resolve("a"));
                Node b = Node.start(tmp.resolve("b"))) {
            int port = lt.await("ready", Duration.ofSeconds(30)).get("port").getAsInt();
            a.awaitProtocol("bittorrent");
            JsonObject r = a.run("--json", "get", torrent.toString(), "--from", "127.0.0.1:" + port, "-o",
                    tmp.resolve("out-a").toString()).ok().json();
            assertEquals("COMPLETED", r.get("state").getAsString(), r.toString());
            assertEquals(btih, r.get("id").getAsString());
            assertEquals(-1L, Files.mismatch(file, Path.of(r.get("output").getAsString())));
            assertTrue(r.getAsJsonObject("bytesPerSource").get("bittorrent://127.0.0.1:" + port).getAsLong() >= Files.size(file),
                    "every byte from the libtorrent seeder: " + r);
            // the finished file is in the store under its CID, like any other
            assertEquals(Node.sha256(file), r.get("cid").getAsString());
            assertTrue(a.run("ls").ok().out().contains(Node.sha256(file)));

            // magnet link: the metadata comes from libtorrent over ut_metadata (BEP 9)
            String magnet = External.json("lt_torrent.py", "make_magnet", torrent.toString()).get("uri").getAsString()
                    + "&x.pe=127.0.0.1:" + port;
            b.awaitProtocol("bittorrent");
            Node.Result text = b.run("get", magnet, "-o", tmp.resolve("out-b").toString()).ok();
            Path got = Path.of(text.lastLine());
            assertEquals(-1L, Files.mismatch(file, got));
            assertTrue(text.out().contains("from 1 source"), text.out());
            assertTrue(b.run("transfers").ok().out().contains(btih + "  COMPLETED"), b.run("transfers").out());
        }
    }

    /**
     * Our engine fetches every piece from a libtorrent seeder of a v1-only torrent that we made ({@code chiral add}
     * writes it) and of one that libtorrent made with 256 KiB pieces (this was a unit test of a separate downloader).
     */
    @Test
    void downloadsFromLibtorrentWithOurTorrentAndWithItsV1OnlyTorrent() throws Exception {
        Path seedDir = Files.createDirectories(tmp.resolve("lt-seed"));
        Path ours = Node.randomFile(seedDir, "ours.bin", 8L * 1024 * 1024 + 12345, 1);
        Path its = Node.randomFile(seedDir, "its.bin", 8L * 1024 * 1024 + 12345, 2);
        Path itsTorrent = tmp.resolve("its.torrent");
        External.json("lt_torrent.py", "create", its.toString(), itsTorrent.toString(), "--v1-only", "--piece-length", "262144");
        try (Node maker = Node.start(tmp.resolve("maker"));
                Node a = Node.start(tmp.resolve("a"))) {
            maker.awaitProtocol("bittorrent");
            maker.run("add", "--protocol", "bittorrent", ours.toString()).ok();
            Path oursTorrent = ours.resolveSibling("ours.bin.torrent");
            assertTrue(Files.isRegularFile(oursTorrent), "the .torrent is written next to the data");
            maker.stop(); // libtorrent is the only seeder
            a.awaitProtocol("bittorrent");
            for (Path[] c : new Path[][] {{oursTorrent, ours}, {itsTorrent, its}}) {
                String name = c[1].getFileName().toString();
                try (External lt = External.start(tmp.resolve("lt-" + name + ".log"), "lt_peer.py", "seed",
                        c[0].toString(), seedDir.toString())) {
                    int port = lt.await("ready", Duration.ofSeconds(30)).get("port").getAsInt();
                    JsonObject r = a.run("--json", "get", c[0].toString(), "--from", "127.0.0.1:" + port, "-o",
                            tmp.resolve("out-" + name).toString()).ok().json();
                    assertEquals("COMPLETED", r.get("state").getAsString(), r.toString());
                    assertEquals(-1L, Files.mismatch(c[1], Path.of(r.get("output").getAsString())), name);
                    assertTrue(r.getAsJsonObject("bytesPerSource").get("bittorrent://127.0.0.1:" + port).getAsLong()
                            >= Files.size(c[1]), "every byte from the libtorrent seeder: " + r);
                }
            }
        }
    }

    @Test
    void downloadsAMultiFileHybridTorrentWithPadFilesFromLibtorrent() throws Exception {
        Path seedDir = Files.createDirectories(tmp.resolve("lt-seed"));
        Path album = Files.createDirectories(seedDir.resolve("album"));
        Path a1 = Node.randomFile(album, "01 intro.flac", 1_000_003, 81);
        Path a2 = Node.randomFile(Files.createDirectories(album.resolve("bonus")), "demo.flac", 2_345_678, 82);
        Path a3 = Node.randomFile(album, "cover.jpg", 77_777, 83);
        Path torrent = tmp.resolve("album.torrent");
        // a v1+v2 hybrid: libtorrent aligns every file to a piece boundary with BEP 47 pad files
        JsonObject created = External.json("lt_torrent.py", "create", album.toString(), torrent.toString());
        assertTrue(created.toString().contains("\"pad\":true"), "libtorrent made pad files: " + created);
        try (External lt = External.start(tmp.resolve("lt.log"), "lt_peer.py", "seed", torrent.toString(), seedDir.toString());
                Node a = Node.start(tmp.resolve("a"))) {
            int port = lt.await("ready", Duration.ofSeconds(30)).get("port").getAsInt();
            a.awaitProtocol("bittorrent");
            Path out = tmp.resolve("out");
            JsonObject r = a.run("--json", "get", torrent.toString(), "--from", "127.0.0.1:" + port, "-o", out.toString())
                    .ok().json();
            assertEquals("COMPLETED", r.get("state").getAsString(), r.toString());
            assertEquals(out.resolve("album").toString(), r.get("output").getAsString());
            assertEquals(-1L, Files.mismatch(a1, out.resolve("album/01 intro.flac")));
            assertEquals(-1L, Files.mismatch(a2, out.resolve("album/bonus/demo.flac")));
            assertEquals(-1L, Files.mismatch(a3, out.resolve("album/cover.jpg")));
            try (var files = Files.walk(out)) {
                assertEquals(3, files.filter(Files::isRegularFile).count(), "pad files are never written");
            }
        }
    }

    @Test
    void seedsToLibtorrentFromATorrentFileAndFromAMagnetLink() throws Exception {
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "report.pdf", 5L * 1024 * 1024 + 777, 42);
        try (Node a = Node.start(tmp.resolve("a"))) {
            a.awaitProtocol("bittorrent");
            Node.Result added = a.run("add", "--protocol", "bittorrent", file.toString()).ok();
            String magnet = added.lastLine();
            assertTrue(magnet.startsWith("magnet:?xt=urn:btih:"), added.out());
            Path torrent = file.resolveSibling("report.pdf.torrent");
            assertTrue(Files.isRegularFile(torrent), "the .torrent is written next to the data");
            JsonObject inspected = External.json("lt_torrent.py", "inspect", torrent.toString());
            String btih = inspected.get("info_hash_v1").getAsString();
            assertTrue(magnet.contains(btih), magnet);
            assertTrue(added.out().contains(Node.sha256(file)), "the CID is printed too: " + added.out());

            try (External lt = External.start(tmp.resolve("lt1.log"), "lt_peer.py", "leech", torrent.toString(),
                    tmp.resolve("lt1").toString(), "--peer", a.btAddress())) {
                lt.await("done", Duration.ofSeconds(60));
            } catch (AssertionError e) {
                throw new AssertionError(e.getMessage() + "\nnode log:\n" + a.tail() + "\nlt log:\n"
                        + Files.readString(tmp.resolve("lt1.log")), e);
            }
            assertEquals(-1L, Files.mismatch(file, tmp.resolve("lt1/report.pdf")));

            // libtorrent asks us for the metadata (ut_metadata) before the pieces
            try (External lt = External.start(tmp.resolve("lt2.log"), "lt_peer.py", "leech",
                    "magnet:?xt=urn:btih:" + btih + "&dn=report.pdf", tmp.resolve("lt2").toString(), "--peer", a.btAddress())) {
                lt.await("done", Duration.ofSeconds(60));
            }
            assertEquals(-1L, Files.mismatch(file, tmp.resolve("lt2/report.pdf")));

            // protocol encryption (MSE): a libtorrent that accepts only an encrypted handshake (we select the
            // plaintext stream it also offers), and one that accepts only RC4 for the whole stream
            for (String enc : new String[] {"forced", "rc4"}) {
                try (External lt = External.start(tmp.resolve("lt-" + enc + ".log"), "lt_peer.py", "leech",
                        torrent.toString(), tmp.resolve("lt-" + enc).toString(), "--peer", a.btAddress(),
                        "--encryption", enc)) {
                    lt.await("done", Duration.ofSeconds(60));
                } catch (AssertionError e) {
                    throw new AssertionError(e.getMessage() + "\nnode log:\n" + a.tail() + "\nlt log:\n"
                            + Files.readString(tmp.resolve("lt-" + enc + ".log")), e);
                }
                assertEquals(-1L, Files.mismatch(file, tmp.resolve("lt-" + enc + "/report.pdf")), enc);
            }
            assertTrue(a.run("id").ok().exit() == 0);
        }
    }

    @Test
    void twoChiralNodesRecogniseEachOtherInASwarmWithLibtorrent() throws Exception {
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "dataset.bin", 16L * 1024 * 1024, 43);
        try (Node a = Node.start(tmp.resolve("a"), "--max-upload-rate", "2M");
                Node b = Node.start(tmp.resolve("b"))) {
            a.awaitProtocol("bittorrent");
            b.awaitProtocol("bittorrent");
            String magnet = a.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine();
            String btih = magnet.substring("magnet:?xt=urn:btih:".length(), "magnet:?xt=urn:btih:".length() + 40);
            try (External lt = External.start(tmp.resolve("lt.log"), "lt_peer.py", "leech", magnet,
                    tmp.resolve("lt").toString(), "--peer", a.btAddress())) {
                CompletableFuture<Node.Result> chiralGet = CompletableFuture.supplyAsync(() -> {
                    try {
                        return b.run("--json", "get", magnet, "-o", tmp.resolve("out-b").toString());
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                // while the rate-limited seeder serves both, each Chiral node sees the other through the extension
                JsonObject bSeesA = awaitPeer(b, btih, "chiral");
                assertTrue(bSeesA.get("address").getAsString().equals(a.btAddress()), bSeesA.toString());
                assertTrue(bSeesA.get("client").getAsString().startsWith("Chiral"), bSeesA.toString());
                assertEquals(64, bSeesA.get("nodeId").getAsString().length());
                JsonObject aSeesB = awaitPeer(a, btih, "chiral");
                JsonObject aSeesLt = awaitPeer(a, btih, "libtorrent");
                assertFalse(flags(aSeesLt).contains("chiral"), "libtorrent is not a Chiral peer: " + aSeesLt);
                assertTrue(flags(aSeesB).contains("chiral"));
                Node.Result text = a.run("peers", btih).ok();
                assertTrue(text.out().contains("chiral"), text.out());

                lt.await("done", Duration.ofSeconds(90));
                JsonObject r = chiralGet.get(90, TimeUnit.SECONDS).ok().json();
                assertEquals("COMPLETED", r.get("state").getAsString(), r.toString());
                assertEquals(-1L, Files.mismatch(file, Path.of(r.get("output").getAsString())));
                assertEquals(-1L, Files.mismatch(file, tmp.resolve("lt/dataset.bin")));
            }
        }
    }

    @Test
    void swarmThroughOpentrackerOverHttpAndUdp() throws Exception {
        Path file = Node.randomFile(Files.createDirectories(tmp.resolve("share")), "album.zip", 3L * 1024 * 1024 + 5, 44);
        Process tracker = null;
        try (Node a = Node.start(tmp.resolve("a"));
                Node b = Node.start(tmp.resolve("b"));
                Node c = Node.start(tmp.resolve("c"))) {
            a.awaitProtocol("bittorrent");
            String first = a.run("add", "--protocol", "bittorrent", file.toString()).ok().lastLine();
            String btih = first.substring("magnet:?xt=urn:btih:".length(), "magnet:?xt=urn:btih:".length() + 40);
            int port;
            try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
                port = s.getLocalPort();
            }
            Path dir = Files.createDirectories(tmp.resolve("opentracker"));
            Files.writeString(dir.resolve("whitelist"), btih + "\n");
            // opentracker chroots into -d (as root) before reading the whitelist: name it relative to that
            tracker = new ProcessBuilder("opentracker", "-i", "127.0.0.1", "-p", Integer.toString(port), "-P",
                    Integer.toString(port), "-w", "whitelist", "-d", dir.toString()).directory(dir.toFile())
                    .redirectErrorStream(true).redirectOutput(dir.resolve("log").toFile()).start();
            awaitWhitelisted(port, btih);
            String http = "http://127.0.0.1:" + port + "/announce";
            String udp = "udp://127.0.0.1:" + port;
            String bare = "magnet:?xt=urn:btih:" + btih + "&dn=album.zip";
            b.awaitProtocol("bittorrent");
            c.awaitProtocol("bittorrent");
            // b asks the tracker before the seeder has announced there: the tracker knows nobody yet, and b must
            // ask again (opentracker's interval is 30 min) rather than wait; no x.pe, so the tracker is the only way
            CompletableFuture<Node.Result> bGet = CompletableFuture.supplyAsync(() -> {
                try {
                    return b.run("--json", "get", bare + "&tr=" + enc(http), "-o", tmp.resolve("out-b").toString());
                } catch (Exception e) {
                    throw new java.util.concurrent.CompletionException(e);
                }
            });
            // b's first announce goes out alone: the tracker counts b as its one leecher before a announces
            Await.until(Duration.ofSeconds(30), "b's announce at the tracker", () -> tracker(port, "scrape", btih, ""),
                    r -> r.contains("10:incompletei1e"));
            // sharing again with trackers adds them to the running torrent, which announces at once
            a.run("add", "--protocol", "bittorrent", file.toString(), "--tracker", http, "--tracker", udp).ok();
            JsonObject viaHttp = bGet.get(100, TimeUnit.SECONDS).ok().json();
            assertEquals(-1L, Files.mismatch(file, Path.of(viaHttp.get("output").getAsString())));
            JsonObject viaUdp = c.run("--json", "get", bare + "&tr=" + enc(udp), "-o", tmp.resolve("out-c").toString())
                    .ok().json();
            assertEquals(-1L, Files.mismatch(file, Path.of(viaUdp.get("output").getAsString())));
            assertTrue(viaUdp.getAsJsonObject("bytesPerSource").size() >= 1, viaUdp.toString());
        } finally {
            if (tracker != null) {
                tracker.destroy();
                tracker.waitFor(5, TimeUnit.SECONDS);
            }
        }
    }

    private static String enc(String s) {
        return java.net.URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    /** Polls opentracker until it accepts an announce of {@code btih} (it loads the whitelist on its own thread). */
    private static void awaitWhitelisted(int port, String btih) throws Exception {
        Await.until(Duration.ofSeconds(15), "opentracker to accept " + btih, () -> tracker(port, "announce", btih,
                "&peer_id=-XX0000-abcdefghijkl&port=1&uploaded=0&downloaded=0&left=0&event=stopped&compact=1"),
                r -> !r.contains("failure"));
    }

    /** GETs {@code /ACTION?info_hash=BTIH...} of opentracker; its bencoded answer as ISO-8859-1 text. */
    private static String tracker(int port, String action, String btih, String more) throws Exception {
        StringBuilder q = new StringBuilder();
        for (byte x : HexFormat.of().parseHex(btih)) {
            q.append('%').append(String.format("%02x", x & 0xff));
        }
        URI u = URI.create("http://127.0.0.1:" + port + "/" + action + "?info_hash=" + q + more);
        HttpURLConnection c = (HttpURLConnection) u.toURL().openConnection();
        c.setConnectTimeout(1000);
        c.setReadTimeout(2000);
        try (InputStream in = c.getInputStream()) {
            return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
        }
    }

    private static List<String> flags(JsonObject peer) {
        List<String> out = new java.util.ArrayList<>();
        peer.getAsJsonArray("flags").forEach(e -> out.add(e.getAsString()));
        return out;
    }

    /** Waits until {@code node}'s peers of {@code btih} include one flagged {@code chiral}, or a {@code libtorrent} client. */
    private static JsonObject awaitPeer(Node node, String btih, String what) throws Exception {
        JsonArray list = Await.until(Duration.ofSeconds(30), "a " + what + " peer of " + btih,
                () -> node.api("peers/" + btih).getAsJsonArray(), l -> find(l, what) != null);
        return find(list, what);
    }

    private static JsonObject find(JsonArray peers, String what) {
        for (JsonElement e : peers) {
            JsonObject p = e.getAsJsonObject();
            String client = p.get("client") == null || p.get("client").isJsonNull() ? "" : p.get("client").getAsString();
            if (what.equals("chiral") ? flags(p).contains("chiral") : client.toLowerCase(java.util.Locale.ROOT).contains(what)) {
                return p;
            }
        }
        return null;
    }
}
