package io.chiral.fuzz;

import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.chiral.bencode.Bencode;
import io.chiral.protocol.bittorrent.internal.Metainfo;
import io.chiral.protocol.bittorrent.internal.TorrentException;

/**
 * {@code .torrent} parsing: only {@link TorrentException} may escape; an accepted torrent is self-consistent
 * (info-hash of its info bytes, piece count for its length, contiguous files, usable names).
 */
class MetainfoFuzzTest {

    static Stream<Arguments> seeds() {
        List<byte[]> out = new ArrayList<>();
        // single file, 3 pieces of 16 KiB, trackers, web seed, comment
        Map<String, Object> info = new LinkedHashMap<>();
        info.put("length", 40_000L);
        info.put("name", "file.bin");
        info.put("piece length", 16_384L);
        info.put("pieces", new byte[60]);
        Map<String, Object> top = new LinkedHashMap<>();
        top.put("announce", "http://tracker.example/announce");
        top.put("announce-list", List.of(List.of("http://tracker.example/announce"), List.of("udp://t.example:6969")));
        top.put("comment", "seed");
        top.put("created by", "chiral");
        top.put("info", info);
        top.put("url-list", List.of("http://seed.example/file.bin"));
        out.add(Bencode.encode(top));
        // multi file with a BEP 47 pad file, private, path.utf-8
        Map<String, Object> multi = new LinkedHashMap<>();
        multi.put("files", List.of(
                Map.of("length", 10L, "path", List.of("dir", "a.txt")),
                Map.of("length", 16_374L, "path", List.of(".pad", "16374"), "attr", "p"),
                Map.of("length", 5L, "path.utf-8", List.of("b\u00e9.txt"), "path", List.of("b.txt"))));
        multi.put("name", "album");
        multi.put("piece length", 16_384L);
        multi.put("pieces", new byte[40]);
        multi.put("private", 1L);
        out.add(Bencode.encode(Map.of("info", multi, "url-list", "http://seed.example/")));
        // v1+v2 hybrid marker
        Map<String, Object> hybrid = new LinkedHashMap<>(info);
        hybrid.put("meta version", 2L);
        out.add(Bencode.encode(Map.of("info", hybrid)));
        // empty file
        Map<String, Object> empty = new LinkedHashMap<>(info);
        empty.put("length", 0L);
        empty.put("pieces", new byte[0]);
        out.add(Bencode.encode(Map.of("info", empty)));
        return out.stream().map(b -> Arguments.of((Object) b));
    }

    @MethodSource("seeds")
    @FuzzTest
    void parse(byte[] data) throws Exception {
        Metainfo m;
        try {
            m = NoLookups.during(() -> Metainfo.parse(data));
        } catch (TorrentException e) {
            return;
        }
        Check.that(Arrays.equals(m.infoHash(), MessageDigest.getInstance("SHA-1").digest(m.infoBytes())), "info-hash");
        Check.that(m.pieceLength() > 0 && m.pieceLength() <= Metainfo.MAX_PIECE_LENGTH, "piece length");
        Check.that(m.totalLength() >= 0 && m.totalLength() <= Metainfo.MAX_TOTAL_LENGTH, "total length");
        Check.that(m.pieces().length % 20 == 0, "pieces");
        long pieces = (m.totalLength() + m.pieceLength() - 1) / m.pieceLength();
        Check.that(m.pieceCount() == pieces, "piece count");
        long offset = 0;
        Check.that(!m.files().isEmpty() && m.files().size() <= Metainfo.MAX_FILES, "file count");
        for (Metainfo.FileEntry f : m.files()) {
            Check.that(f.offset() == offset && f.length() >= 0, "contiguous files");
            Check.that(!f.path().isEmpty() && f.path().size() <= Metainfo.MAX_PATH_DEPTH, "path depth");
            for (String c : f.path()) {
                Check.that(!c.isEmpty() && !c.equals("..") && !c.equals(".") && c.indexOf('/') < 0 && c.indexOf('\\') < 0,
                        "path component");
            }
            offset += f.length();
        }
        Check.that(offset == m.totalLength(), "file lengths add up");
        if (m.pieceCount() > 0) {
            int last = m.pieceCount() - 1;
            Check.that(m.pieceSize(last) > 0 && m.pieceSize(0) > 0, "piece sizes");
            Check.that(m.pieceHash(last).length == 20, "piece hash");
        }
        Check.that(m.trackers().stream().mapToInt(List::size).sum() <= Metainfo.MAX_URLS, "tracker count");
        Check.that(m.webSeeds().size() <= Metainfo.MAX_URLS, "web seed count");
        m.singleFile();
        m.infoHashHex();
    }
}
