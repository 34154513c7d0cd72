package io.chiral.protocol.bittorrent.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import io.chiral.bencode.Bencode;

/**
 * .torrent files and magnet links against libtorrent 2.0.8 (Debian python3-libtorrent, driven by
 * tests/interop/lt_torrent.py): we read what libtorrent writes (v1+v2 hybrids with pad files, single and multi-file),
 * libtorrent reads what we write, magnet links both ways; rejections; a bounded mutation fuzz.
 */
public class MetainfoTest {
    private static final HexFormat HEX = HexFormat.of();
    private static Path work;

    @BeforeAll
    static void setUp() throws Exception {
        work = Files.createDirectories(Path.of("target", "metainfo").toAbsolutePath());
    }

    static Path locate(String relative) {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null) {
            if (Files.exists(dir.resolve(relative))) {
                return dir.resolve(relative);
            }
            dir = dir.getParent();
        }
        throw new AssertionError(relative + " not found above " + Path.of("").toAbsolutePath());
    }

    static JsonObject lt(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", locate("tests/interop/lt_torrent.py").toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.appendTo(work.resolve("lt.log").toFile())).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            fail("libtorrent " + String.join(" ", args) + " failed (is python3-libtorrent installed?): "
                    + Files.readString(work.resolve("lt.log")));
        }
        return JsonParser.parseString(out).getAsJsonObject();
    }

    static Path random(Path p, int size, long seed) throws Exception {
        Files.createDirectories(p.getParent());
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return Files.write(p, b);
    }

    @Test
    void readsLibtorrentsHybridMultiFileTorrent() throws Exception {
        Path dir = work.resolve("album");
        random(dir.resolve("a.bin"), 300_000, 1);
        random(dir.resolve("sub").resolve("b.txt"), 70_000, 2);
        Path torrent = work.resolve("album.torrent");
        JsonObject ref = lt("create", dir.toString(), torrent.toString(), "--tracker", "http://127.0.0.1:6969/announce");
        Metainfo m = Metainfo.parse(Files.readAllBytes(torrent));
        assertEquals(ref.get("info_hash_v1").getAsString(), m.infoHashHex());
        assertEquals(ref.get("info_hash_v2").getAsString(), HEX.formatHex(m.infoHashV2()));
        assertEquals(ref.get("num_pieces").getAsInt(), m.pieceCount());
        assertEquals(ref.get("piece_length").getAsInt(), m.pieceLength());
        assertEquals(ref.get("total_size").getAsLong(), m.totalLength());
        assertEquals("album", m.name());
        assertFalse(m.singleFile());
        var files = ref.getAsJsonArray("files");
        assertEquals(files.size(), m.files().size());
        for (int i = 0; i < files.size(); i++) {
            JsonObject f = files.get(i).getAsJsonObject();
            Metainfo.FileEntry e = m.files().get(i);
            assertEquals(f.get("path").getAsString(), "album/" + String.join("/", e.path()));
            assertEquals(f.get("size").getAsLong(), e.length());
            assertEquals(f.get("pad").getAsBoolean(), e.padding());
        }
        assertEquals(List.of(List.of("http://127.0.0.1:6969/announce")), m.trackers());
    }

    @Test
    void readsLibtorrentsSingleFileTorrent() throws Exception {
        Path file = random(work.resolve("single").resolve("movie.bin"), 1_000_000, 3);
        Path torrent = work.resolve("movie.torrent");
        JsonObject ref = lt("create", file.toString(), torrent.toString(), "--v1-only");
        Metainfo m = Metainfo.parse(Files.readAllBytes(torrent));
        assertEquals(ref.get("info_hash_v1").getAsString(), m.infoHashHex());
        assertNull(m.infoHashV2(), "a v1-only torrent has no v2 info-hash");
        assertTrue(m.singleFile());
        assertEquals(1_000_000, m.totalLength());
        assertEquals(ref.get("num_pieces").getAsInt(), m.pieceCount());
        // the piece hashes are the SHA-1 of the file's pieces
        byte[] data = Files.readAllBytes(file);
        for (int i = 0; i < m.pieceCount(); i++) {
            byte[] piece = java.util.Arrays.copyOfRange(data, i * m.pieceLength(), i * m.pieceLength() + m.pieceSize(i));
            assertArrayEquals(Metainfo.digest("SHA-1", piece), m.pieceHash(i), "piece " + i);
        }
    }

    @Test
    void libtorrentReadsTheMultiFileTorrentsWeCreate() throws Exception {
        Path dir = Files.createDirectories(work.resolve("multi").resolve("album"));
        random(dir.resolve("01 intro.flac"), 300_001, 11);
        random(Files.createDirectories(dir.resolve("bonus")).resolve("demo.flac"), 700_000, 12);
        random(dir.resolve("cover.jpg"), 65_536, 13);
        byte[] t = Metainfo.createMulti(dir, 256 * 1024, List.of("udp://127.0.0.1:6970"), "Chiral test");
        Path torrent = Files.write(work.resolve("album.torrent"), t);
        Metainfo m = Metainfo.parse(t);
        assertEquals(3, m.files().size());
        assertEquals(List.of("bonus", "demo.flac"), m.files().get(1).path(), "sorted, with directories");
        JsonObject ref = lt("inspect", torrent.toString());
        assertEquals(m.infoHashHex(), ref.get("info_hash_v1").getAsString());
        assertEquals("album", ref.get("name").getAsString());
        assertEquals(1_065_537, ref.get("total_size").getAsLong());
        assertEquals(3, ref.getAsJsonArray("files").size());
        // the pieces span file boundaries: the whole stream hashes to the torrent's pieces
        java.io.ByteArrayOutputStream stream = new java.io.ByteArrayOutputStream();
        for (String f : List.of("01 intro.flac", "bonus/demo.flac", "cover.jpg")) {
            stream.writeBytes(Files.readAllBytes(dir.resolve(f)));
        }
        byte[] data = stream.toByteArray();
        for (int i = 0; i < m.pieceCount(); i++) {
            byte[] piece = java.util.Arrays.copyOfRange(data, i * m.pieceLength(), i * m.pieceLength() + m.pieceSize(i));
            assertArrayEquals(Metainfo.digest("SHA-1", piece), m.pieceHash(i), "piece " + i);
        }
    }

    @Test
    void libtorrentReadsTheTorrentsWeCreate() throws Exception {
        Path file = random(work.resolve("ours").resolve("report.pdf"), 2_500_000, 4);
        byte[] t = Metainfo.create(file, Metainfo.defaultPieceLength(2_500_000), List.of("http://127.0.0.1:6969/announce",
                "udp://127.0.0.1:6970"), List.of("http://127.0.0.1:8080/files/"), "Chiral test");
        Path torrent = Files.write(work.resolve("ours.torrent"), t);
        Metainfo m = Metainfo.parse(t);
        JsonObject ref = lt("inspect", torrent.toString());
        assertEquals(m.infoHashHex(), ref.get("info_hash_v1").getAsString());
        assertEquals("report.pdf", ref.get("name").getAsString());
        assertEquals(2_500_000, ref.get("total_size").getAsLong());
        assertEquals(m.pieceCount(), ref.get("num_pieces").getAsInt());
        assertEquals(2, ref.getAsJsonArray("trackers").size());
        assertEquals(256 * 1024, Metainfo.defaultPieceLength(1000), "never below Chiral's chunk size");
        assertEquals(1024 * 1024, Metainfo.defaultPieceLength(1L << 30), "1 GiB in 1,024 pieces");
        assertEquals(4 * 1024 * 1024, Metainfo.defaultPieceLength(4L << 30), "4 GiB in 1,024 pieces");
    }

    @Test
    void magnetLinksBothWays() throws Exception {
        Path file = random(work.resolve("mag").resolve("song.flac"), 200_000, 5);
        Path torrent = work.resolve("song.torrent");
        JsonObject ref = lt("create", file.toString(), torrent.toString(), "--tracker", "http://127.0.0.1:6969/announce");
        String uri = lt("make_magnet", torrent.toString()).get("uri").getAsString();
        Magnet m = Magnet.parse(uri);
        assertEquals(ref.get("info_hash_v1").getAsString(), HEX.formatHex(m.infoHash()));
        assertEquals("song.flac", m.name());
        assertEquals(List.of("http://127.0.0.1:6969/announce"), m.trackers());

        Magnet ours = new Magnet(m.infoHash(), "a name & more/ü", List.of("udp://127.0.0.1:1337/announce"),
                List.of("127.0.0.1:6881"), List.of());
        JsonObject parsed = lt("parse_magnet", ours.toUri());
        assertEquals(HEX.formatHex(m.infoHash()), parsed.get("info_hash_v1").getAsString());
        assertEquals("a name & more/ü", parsed.get("name").getAsString());
        assertEquals("udp://127.0.0.1:1337/announce", parsed.getAsJsonArray("trackers").get(0).getAsString());
        Magnet back = Magnet.parse(ours.toUri());
        assertEquals(ours.name(), back.name());
        assertEquals(ours.peers(), back.peers());

        // base32 form, checked against libtorrent's reading of the same link
        String b32 = "magnet:?xt=urn:btih:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567&dn=x+y";
        assertEquals(lt("parse_magnet", b32).get("info_hash_v1").getAsString(), HEX.formatHex(Magnet.parse(b32).infoHash()));
    }

    @Test
    void badTorrentsAndLinksAreRefusedWithAReason() throws Exception {
        Map<String, Object> info = new LinkedHashMap<>();
        info.put("length", 100_000L);
        info.put("name", "x.bin");
        info.put("piece length", 16384L);
        info.put("pieces", new byte[20 * 7]);
        assertEquals(7, Metainfo.parse(Bencode.encode(Map.of("info", info))).pieceCount());

        Map<String, Object> wrongCount = new LinkedHashMap<>(info);
        wrongCount.put("pieces", new byte[20 * 6]);
        assertTrue(refusal(Map.of("info", wrongCount)).contains("piece hashes"));
        Map<String, Object> dotdot = new LinkedHashMap<>(info);
        dotdot.remove("length");
        dotdot.put("files", List.of(Map.of("length", 100_000L, "path", List.of("..", "etc", "passwd"))));
        assertTrue(refusal(Map.of("info", dotdot)).contains("not a usable file name"));
        Map<String, Object> slash = new LinkedHashMap<>(dotdot);
        slash.put("files", List.of(Map.of("length", 100_000L, "path", List.of("a/b"))));
        assertTrue(refusal(Map.of("info", slash)).contains("separator"));
        Map<String, Object> both = new LinkedHashMap<>(dotdot);
        both.put("length", 1L);
        assertTrue(refusal(Map.of("info", both)).contains("both"));
        Map<String, Object> negative = new LinkedHashMap<>(info);
        negative.put("length", -5L);
        assertTrue(refusal(Map.of("info", negative)).contains("out of range"));
        Map<String, Object> v2only = new LinkedHashMap<>(info);
        v2only.remove("pieces");
        v2only.put("meta version", 2L);
        assertTrue(refusal(Map.of("info", v2only)).contains("v2-only"));
        assertThrows(TorrentException.class, () -> Metainfo.parse("not bencode".getBytes(StandardCharsets.US_ASCII)));
        assertThrows(TorrentException.class, () -> Metainfo.parse(Bencode.encode(Map.of("announce", "x"))));

        for (String bad : new String[] {"http://x", "magnet:?dn=nohash", "magnet:?xt=urn:btih:1234",
                "magnet:?xt=urn:btih:zz23456789012345678901234567890123456789", "magnet:?xt=urn:btih:" + "a".repeat(40) + "&dn=%G1",
                "magnet:?xt=urn:btmh:1220" + "a".repeat(64), "magnet:?" + "a=b&".repeat(300),
                "magnet:?xt=urn:btih:" + "a".repeat(40) + "&xt=urn:btih:" + "b".repeat(40), "magnet:?novalue"}) {
            assertThrows(TorrentException.class, () -> Magnet.parse(bad), bad);
        }
    }

    private static String refusal(Object torrent) {
        TorrentException e = assertThrows(TorrentException.class, () -> Metainfo.parse(Bencode.encode(torrent)));
        return e.getMessage();
    }

    @Test
    void mutatedTorrentsAndLinksFailCleanly() throws Exception {
        Path file = random(work.resolve("fuzz").resolve("seed.bin"), 100_000, 6);
        byte[] valid = Metainfo.create(file, 16384, List.of("http://127.0.0.1/announce"), List.of(), "fuzz");
        String link = new Magnet(new byte[20], "name", List.of("http://t/a"), List.of("127.0.0.1:1"), List.of("http://w/")).toUri();
        Random r = new Random(2026);
        int parsed = 0;
        for (int i = 0; i < 100_000; i++) {
            byte[] d = valid.clone();
            int kind = i % 3;
            if (kind == 0) {
                for (int m = 0; m < 1 + r.nextInt(4); m++) {
                    d[r.nextInt(d.length)] = (byte) r.nextInt(256);
                }
            } else if (kind == 1) {
                d = java.util.Arrays.copyOf(d, r.nextInt(d.length));
            } else {
                int at = r.nextInt(d.length);
                byte[] digits = Integer.toString(r.nextInt(Integer.MAX_VALUE)).getBytes(StandardCharsets.US_ASCII);
                byte[] grown = new byte[d.length + digits.length];
                System.arraycopy(d, 0, grown, 0, at);
                System.arraycopy(digits, 0, grown, at, digits.length);
                System.arraycopy(d, at, grown, at + digits.length, d.length - at);
                d = grown;
            }
            try {
                Metainfo m = Metainfo.parse(d);
                parsed++;
                assertEquals(m.pieceCount(), (m.totalLength() + m.pieceLength() - 1) / m.pieceLength());
            } catch (TorrentException expected) {
                // refused with a reason
            } catch (RuntimeException e) {
                throw new AssertionError("input " + i + " escaped as " + e, e);
            }
            char[] c = link.toCharArray();
            for (int m = 0; m < 1 + r.nextInt(3); m++) {
                c[8 + r.nextInt(c.length - 8)] = (char) (32 + r.nextInt(95));
            }
            try {
                Magnet.parse(new String(c));
            } catch (TorrentException expected) {
                // refused with a reason
            } catch (RuntimeException e) {
                throw new AssertionError("link " + new String(c) + " escaped as " + e, e);
            }
        }
        assertTrue(parsed > 0 && parsed < 100_000, "mutations both kept and broke the torrent: " + parsed);
    }

}
