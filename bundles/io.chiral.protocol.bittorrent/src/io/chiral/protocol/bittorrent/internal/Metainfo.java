package io.chiral.protocol.bittorrent.internal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.BencodeException;
import io.chiral.bencode.Bytes;

/**
 * A parsed {@code .torrent} file (BEP 3 metainfo; BEP 12 tracker tiers; BEP 19 web seeds; BEP 27 private flag).
 * Of a v1+v2 hybrid (BEP 52, what libtorrent 2.0 makes by default) the v1 part is used: {@code pieces}, the v1
 * file list with its pad files; {@link #infoHashV2()} is recorded. v2-only torrents are refused.
 *
 * <p>{@link #parse} trusts nothing: the bencode is strict and bounded ({@link Bencode.Limits#FILE}), the piece
 * count must match the total length, paths are checked component by component (no {@code ..}, no separators, no
 * empty names), lengths are non-negative and their sum bounded. The info-hash is the SHA-1 of the info
 * dictionary's bencoding, which the strict decoder guarantees is the exact bytes of the file.
 */
public record Metainfo(byte[] infoHash, byte[] infoHashV2, String name, int pieceLength, byte[] pieces,
        List<FileEntry> files, long totalLength, List<List<String>> trackers, List<String> webSeeds,
        boolean isPrivate, String comment, String createdBy, byte[] infoBytes) {

    public static final int MAX_PIECE_LENGTH = 64 * 1024 * 1024;
    public static final int MAX_FILES = 100_000;
    public static final int MAX_PATH_DEPTH = 64;
    public static final int MAX_NAME_BYTES = 255;
    public static final long MAX_TOTAL_LENGTH = 1L << 50;
    public static final int MAX_URLS = 200;
    public static final int MAX_URL_LENGTH = 2048;

    /** One file of the torrent: its path below the torrent's directory, length and offset in the piece stream. */
    public record FileEntry(List<String> path, long length, long offset, boolean padding) {
    }

    public int pieceCount() {
        return pieces.length / 20;
    }

    public byte[] pieceHash(int index) {
        return Arrays.copyOfRange(pieces, index * 20, index * 20 + 20);
    }

    public int pieceSize(int index) {
        return (int) Math.min(pieceLength, totalLength - (long) index * pieceLength);
    }

    public String infoHashHex() {
        return java.util.HexFormat.of().formatHex(infoHash);
    }

    /** Whether this is a single-file torrent (one file named like the torrent, no directory). */
    public boolean singleFile() {
        return files.size() == 1 && files.get(0).path().size() == 1 && files.get(0).path().get(0).equals(name);
    }

    public static Metainfo parse(byte[] torrent) throws TorrentException {
        Object root;
        try {
            root = Bencode.decode(torrent, Bencode.Limits.FILE);
        } catch (BencodeException e) {
            throw new TorrentException("not a torrent file: " + e.getMessage(), e);
        }
        SortedMap<Bytes, Object> top = dict(root, "torrent");
        SortedMap<Bytes, Object> info = dict(top.get(Bytes.of("info")), "'info'");
        byte[] infoBytes = Bencode.encode(info);
        byte[] infoHash = digest("SHA-1", infoBytes);
        boolean v2 = info.get(Bytes.of("meta version")) instanceof Long mv && mv == 2;
        byte[] infoHashV2 = v2 ? digest("SHA-256", infoBytes) : null;
        if (!(info.get(Bytes.of("pieces")) instanceof Bytes pieces)) {
            throw new TorrentException(v2 ? "v2-only torrents are not supported (no v1 'pieces')" : "info has no 'pieces'");
        }
        String name = component(text(info, "name.utf-8", "name"), "name");
        long pl = longValue(info.get(Bytes.of("piece length")), "piece length");
        if (pl <= 0 || pl > MAX_PIECE_LENGTH) {
            throw new TorrentException("piece length " + pl + " out of range (1.." + MAX_PIECE_LENGTH + ")");
        }
        if (pieces.length() % 20 != 0) {
            throw new TorrentException("'pieces' is " + pieces.length() + " bytes, not a multiple of 20");
        }
        List<FileEntry> files = new ArrayList<>();
        long total;
        if (info.containsKey(Bytes.of("length"))) {
            if (info.containsKey(Bytes.of("files"))) {
                throw new TorrentException("info has both 'length' and 'files'");
            }
            total = longValue(info.get(Bytes.of("length")), "length");
            if (total < 0 || total > MAX_TOTAL_LENGTH) {
                throw new TorrentException("file length " + total + " out of range");
            }
            files.add(new FileEntry(List.of(name), total, 0, false));
        } else {
            if (!(info.get(Bytes.of("files")) instanceof List<?> list) || list.isEmpty()) {
                throw new TorrentException("info has neither 'length' nor a non-empty 'files' list");
            }
            if (list.size() > MAX_FILES) {
                throw new TorrentException("more than " + MAX_FILES + " files");
            }
            total = 0;
            for (Object o : list) {
                SortedMap<Bytes, Object> f = dict(o, "file entry");
                long len = longValue(f.get(Bytes.of("length")), "file length");
                if (len < 0 || len > MAX_TOTAL_LENGTH - total) {
                    throw new TorrentException("file length " + len + " out of range");
                }
                Object rawPath = f.containsKey(Bytes.of("path.utf-8")) ? f.get(Bytes.of("path.utf-8")) : f.get(Bytes.of("path"));
                if (!(rawPath instanceof List<?> parts) || parts.isEmpty() || parts.size() > MAX_PATH_DEPTH) {
                    throw new TorrentException("file entry without a path of 1.." + MAX_PATH_DEPTH + " components");
                }
                List<String> path = new ArrayList<>(parts.size());
                for (Object p : parts) {
                    if (!(p instanceof Bytes b)) {
                        throw new TorrentException("path component is not a string");
                    }
                    path.add(component(b.utf8(), "path component"));
                }
                boolean pad = f.get(Bytes.of("attr")) instanceof Bytes attr && attr.utf8().indexOf('p') >= 0;
                files.add(new FileEntry(List.copyOf(path), len, total, pad));
                total += len;
            }
        }
        long expectedPieces = (total + pl - 1) / pl;
        if (pieces.length() / 20 != expectedPieces) {
            throw new TorrentException(pieces.length() / 20 + " piece hashes for " + total + " bytes in pieces of " + pl
                    + " (want " + expectedPieces + ")");
        }
        boolean priv = info.get(Bytes.of("private")) instanceof Long p && p == 1;
        return new Metainfo(infoHash, infoHashV2, name, (int) pl, pieces.toByteArray(), List.copyOf(files), total,
                trackers(top), webSeeds(top), priv, optionalText(top, "comment"), optionalText(top, "created by"), infoBytes);
    }

    /**
     * A single-file v1 torrent for {@code file} (pieces hashed with SHA-1 as the file is read once), with the given
     * trackers (one tier each) and web seeds.
     */
    public static byte[] create(Path file, int pieceLength, List<String> trackers, List<String> webSeeds, String createdBy)
            throws IOException {
        long size = Files.size(file);
        if (pieceLength <= 0 || pieceLength > MAX_PIECE_LENGTH) {
            throw new IllegalArgumentException("piece length " + pieceLength + " out of range");
        }
        String name = file.getFileName().toString();
        byte[] pieces = new byte[(int) ((size + pieceLength - 1) / pieceLength) * 20];
        MessageDigest sha1 = md("SHA-1");
        byte[] buf = new byte[pieceLength];
        int p = 0;
        try (InputStream in = Files.newInputStream(file)) {
            while (true) {
                int n = in.readNBytes(buf, 0, pieceLength);
                if (n <= 0) {
                    break;
                }
                sha1.update(buf, 0, n);
                System.arraycopy(sha1.digest(), 0, pieces, p * 20, 20);
                p++;
                if (n < pieceLength) {
                    break;
                }
            }
        }
        if (p * 20 != pieces.length) {
            throw new IOException(file + " changed while it was being hashed");
        }
        Map<String, Object> info = new LinkedHashMap<>();
        info.put("length", size);
        info.put("name", name);
        info.put("piece length", (long) pieceLength);
        info.put("pieces", pieces);
        return torrentFile(info, trackers, webSeeds, createdBy);
    }

    /** The bencoded torrent around {@code info}: trackers one tier each, web seeds, creator and date. */
    private static byte[] torrentFile(Map<String, Object> info, List<String> trackers, List<String> webSeeds,
            String createdBy) {
        Map<String, Object> top = new LinkedHashMap<>();
        if (!trackers.isEmpty()) {
            top.put("announce", trackers.get(0));
            List<Object> tiers = new ArrayList<>();
            for (String t : trackers) {
                tiers.add(List.of(t));
            }
            top.put("announce-list", tiers);
        }
        if (createdBy != null) {
            top.put("created by", createdBy);
        }
        top.put("creation date", System.currentTimeMillis() / 1000);
        top.put("info", info);
        if (!webSeeds.isEmpty()) {
            top.put("url-list", List.copyOf(webSeeds));
        }
        return Bencode.encode(top);
    }

    /**
     * The smallest torrent file around an info dictionary's exact bytes ({@code d4:info…e}): what a magnet
     * download keeps once {@code ut_metadata} delivered them. Its info-hash is the SHA-1 of {@code infoBytes}.
     */
    public static byte[] wrapInfo(byte[] infoBytes) {
        byte[] out = new byte[infoBytes.length + 8];
        System.arraycopy("d4:info".getBytes(StandardCharsets.US_ASCII), 0, out, 0, 7);
        System.arraycopy(infoBytes, 0, out, 7, infoBytes.length);
        out[out.length - 1] = 'e';
        return out;
    }

    /**
     * A multi-file v1 torrent for the directory {@code dir}: every regular file below it, in sorted path order,
     * hashed as one piece stream (no pad files; symbolic links and empty directories are left out).
     */
    public static byte[] createMulti(Path dir, int pieceLength, List<String> trackers, String createdBy) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException(dir + " is not a directory");
        }
        if (pieceLength <= 0 || pieceLength > MAX_PIECE_LENGTH) {
            throw new IllegalArgumentException("piece length " + pieceLength + " out of range");
        }
        List<Path> files;
        try (var walk = Files.walk(dir)) {
            files = walk.filter(f -> Files.isRegularFile(f, java.nio.file.LinkOption.NOFOLLOW_LINKS))
                    .sorted(java.util.Comparator.comparing(f -> dir.relativize(f).toString())).toList();
        }
        if (files.isEmpty()) {
            throw new IllegalArgumentException(dir + " has no files");
        }
        if (files.size() > MAX_FILES) {
            throw new IllegalArgumentException(dir + " has more than " + MAX_FILES + " files");
        }
        MessageDigest sha1 = md("SHA-1");
        java.io.ByteArrayOutputStream pieces = new java.io.ByteArrayOutputStream();
        byte[] buf = new byte[pieceLength];
        int filled = 0;
        List<Object> fileList = new ArrayList<>();
        for (Path f : files) {
            long length = 0;
            try (InputStream in = Files.newInputStream(f)) {
                while (true) {
                    int n = in.read(buf, filled, pieceLength - filled);
                    if (n < 0) {
                        break;
                    }
                    filled += n;
                    length += n;
                    if (filled == pieceLength) {
                        pieces.writeBytes(sha1.digest(buf));
                        filled = 0;
                    }
                }
            }
            List<Object> path = new ArrayList<>();
            for (Path part : dir.relativize(f)) {
                path.add(part.toString());
            }
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("length", length);
            entry.put("path", path);
            fileList.add(entry);
        }
        if (filled > 0) {
            sha1.update(buf, 0, filled);
            pieces.writeBytes(sha1.digest());
        }
        Map<String, Object> info = new LinkedHashMap<>();
        info.put("files", fileList);
        info.put("name", dir.getFileName().toString());
        info.put("piece length", (long) pieceLength);
        info.put("pieces", pieces.toByteArray());
        return torrentFile(info, trackers, List.of(), createdBy);
    }

    /**
     * A piece length giving at most about 2,000 pieces: a power of two from 256 KiB (Chiral's chunk size, so pieces
     * and chunks share boundaries) to 16 MiB.
     */
    public static int defaultPieceLength(long size) {
        int pl = 256 * 1024;
        while (pl < 16 * 1024 * 1024 && size / pl > 2000) {
            pl <<= 1;
        }
        return pl;
    }

    // ---- helpers ----

    @SuppressWarnings("unchecked")
    private static SortedMap<Bytes, Object> dict(Object o, String what) throws TorrentException {
        if (o instanceof SortedMap<?, ?> m) {
            return (SortedMap<Bytes, Object>) m;
        }
        throw new TorrentException(what + " is not a dictionary");
    }

    private static long longValue(Object o, String what) throws TorrentException {
        if (o instanceof Long l) {
            return l;
        }
        throw new TorrentException("'" + what + "' is missing or not an integer");
    }

    private static String text(SortedMap<Bytes, Object> d, String preferred, String fallback) throws TorrentException {
        Object o = d.containsKey(Bytes.of(preferred)) ? d.get(Bytes.of(preferred)) : d.get(Bytes.of(fallback));
        if (o instanceof Bytes b) {
            return b.utf8();
        }
        throw new TorrentException("'" + fallback + "' is missing or not a string");
    }

    private static String optionalText(SortedMap<Bytes, Object> d, String key) {
        return d.get(Bytes.of(key)) instanceof Bytes b && b.length() <= 4096 ? b.utf8() : null;
    }

    /** A file or directory name as it will be created: no separators, no {@code .}/{@code ..}, no control characters. */
    static String component(String s, String what) throws TorrentException {
        if (s.isEmpty() || s.equals(".") || s.equals("..")) {
            throw new TorrentException(what + " '" + s + "' is not a usable file name");
        }
        if (s.getBytes(StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            throw new TorrentException(what + " longer than " + MAX_NAME_BYTES + " bytes");
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) {
                throw new TorrentException(what + " contains a path separator or control character");
            }
        }
        return s;
    }

    private static List<List<String>> trackers(SortedMap<Bytes, Object> top) throws TorrentException {
        List<List<String>> tiers = new ArrayList<>();
        int count = 0;
        if (top.get(Bytes.of("announce-list")) instanceof List<?> list) {
            for (Object tier : list) {
                if (!(tier instanceof List<?> urls)) {
                    throw new TorrentException("'announce-list' tier is not a list");
                }
                List<String> t = new ArrayList<>();
                for (Object u : urls) {
                    if (u instanceof Bytes b && b.length() <= MAX_URL_LENGTH && count++ < MAX_URLS) {
                        t.add(b.utf8());
                    }
                }
                if (!t.isEmpty()) {
                    tiers.add(List.copyOf(t));
                }
            }
        }
        if (tiers.isEmpty() && top.get(Bytes.of("announce")) instanceof Bytes a && a.length() <= MAX_URL_LENGTH && a.length() > 0) {
            tiers.add(List.of(a.utf8()));
        }
        return List.copyOf(tiers);
    }

    private static List<String> webSeeds(SortedMap<Bytes, Object> top) {
        List<String> out = new ArrayList<>();
        Object u = top.get(Bytes.of("url-list"));
        if (u instanceof Bytes b && b.length() > 0 && b.length() <= MAX_URL_LENGTH) {
            out.add(b.utf8());
        } else if (u instanceof List<?> l) {
            for (Object o : l) {
                if (o instanceof Bytes b && b.length() > 0 && b.length() <= MAX_URL_LENGTH && out.size() < MAX_URLS) {
                    out.add(b.utf8());
                }
            }
        }
        return List.copyOf(out);
    }

    static byte[] digest(String algorithm, byte[] data) {
        return md(algorithm).digest(data);
    }

    private static MessageDigest md(String algorithm) {
        try {
            return MessageDigest.getInstance(algorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(algorithm + " is required of every JDK", e);
        }
    }
}
