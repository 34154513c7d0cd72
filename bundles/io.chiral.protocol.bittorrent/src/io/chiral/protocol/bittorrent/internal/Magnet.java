package io.chiral.protocol.bittorrent.internal;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

/**
 * A BitTorrent magnet link (BEP 9): {@code xt=urn:btih:} with the info-hash as 40 hex or 32 base32 characters,
 * {@code dn} display name, {@code tr} trackers, {@code x.pe} peer addresses, {@code ws} web seeds (BEP 19).
 * {@code urn:btmh:} (v2) is accepted next to a btih and ignored alone (v2-only links are refused). Parsing is
 * bounded: at most {@value #MAX_LENGTH} characters and {@value #MAX_PARAMETERS} parameters.
 */
public record Magnet(byte[] infoHash, String name, List<String> trackers, List<String> peers, List<String> webSeeds) {
    public static final int MAX_LENGTH = 16 * 1024;
    public static final int MAX_PARAMETERS = 256;
    private static final String BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    public static boolean looksLikeMagnet(String s) {
        return s != null && s.regionMatches(true, 0, "magnet:?", 0, 8);
    }

    public static Magnet parse(String uri) throws TorrentException {
        if (uri == null || !looksLikeMagnet(uri)) {
            throw new TorrentException("not a magnet link (must start with magnet:?)");
        }
        if (uri.length() > MAX_LENGTH) {
            throw new TorrentException("magnet link longer than " + MAX_LENGTH + " characters");
        }
        byte[] hash = null;
        boolean v2 = false;
        String name = null;
        List<String> trackers = new ArrayList<>();
        List<String> peers = new ArrayList<>();
        List<String> seeds = new ArrayList<>();
        String[] params = uri.substring(8).split("&", -1);
        if (params.length > MAX_PARAMETERS) {
            throw new TorrentException("magnet link with more than " + MAX_PARAMETERS + " parameters");
        }
        for (String p : params) {
            if (p.isEmpty()) {
                continue;
            }
            int eq = p.indexOf('=');
            if (eq <= 0) {
                throw new TorrentException("magnet parameter without a value: '" + abbreviate(p) + "'");
            }
            String key = p.substring(0, eq).toLowerCase(Locale.ROOT);
            String value = decode(p.substring(eq + 1));
            int dot = key.indexOf('.');
            String base = dot > 0 && key.substring(dot + 1).chars().allMatch(Character::isDigit) ? key.substring(0, dot) : key;
            switch (base) {
                case "xt" -> {
                    String v = value.toLowerCase(Locale.ROOT);
                    if (v.startsWith("urn:btih:")) {
                        byte[] h = infoHash(value.substring(9));
                        if (hash != null && !java.util.Arrays.equals(hash, h)) {
                            throw new TorrentException("magnet link names two different info-hashes");
                        }
                        hash = h;
                    } else if (v.startsWith("urn:btmh:")) {
                        v2 = true;
                    }
                }
                case "dn" -> name = value;
                case "tr" -> trackers.add(value);
                case "x.pe" -> peers.add(value);
                case "ws" -> seeds.add(value);
                default -> {
                    // other parameters (xl, as, kt, so …) are not needed to download
                }
            }
        }
        if (hash == null) {
            throw new TorrentException(v2 ? "v2-only magnet links (urn:btmh) are not supported"
                    : "magnet link without an info-hash (xt=urn:btih:...)");
        }
        return new Magnet(hash, name, List.copyOf(trackers), List.copyOf(peers), List.copyOf(seeds));
    }

    /** 40 hex or 32 base32 characters → 20 bytes. */
    static byte[] infoHash(String s) throws TorrentException {
        if (s.length() == 40) {
            try {
                return HexFormat.of().parseHex(s.toLowerCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new TorrentException("info-hash is not 40 hex characters");
            }
        }
        if (s.length() == 32) {
            byte[] out = new byte[20];
            long buffer = 0;
            int bits = 0;
            int o = 0;
            for (int i = 0; i < 32; i++) {
                int v = BASE32.indexOf(Character.toUpperCase(s.charAt(i)));
                if (v < 0) {
                    throw new TorrentException("info-hash is not 32 base32 characters");
                }
                buffer = buffer << 5 | v;
                bits += 5;
                if (bits >= 8) {
                    out[o++] = (byte) (buffer >>> (bits - 8));
                    bits -= 8;
                }
            }
            return out;
        }
        throw new TorrentException("info-hash must be 40 hex or 32 base32 characters, got " + s.length());
    }

    /** Percent-decoding (UTF-8), {@code +} as a space; a malformed escape is an error. */
    static String decode(String s) throws TorrentException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '%') {
                if (i + 2 >= s.length()) {
                    throw new TorrentException("truncated %-escape in magnet link");
                }
                int hi = Character.digit(s.charAt(i + 1), 16);
                int lo = Character.digit(s.charAt(i + 2), 16);
                if (hi < 0 || lo < 0) {
                    throw new TorrentException("bad %-escape in magnet link");
                }
                out.write(hi << 4 | lo);
                i += 2;
            } else if (c == '+') {
                out.write(' ');
            } else {
                byte[] b = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
                out.write(b, 0, b.length);
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** The link: info-hash in hex, then name, trackers, peers, web seeds, each percent-encoded. */
    public String toUri() {
        StringBuilder b = new StringBuilder("magnet:?xt=urn:btih:").append(HexFormat.of().formatHex(infoHash));
        if (name != null) {
            b.append("&dn=").append(encode(name));
        }
        for (String t : trackers) {
            b.append("&tr=").append(encode(t));
        }
        for (String p : peers) {
            b.append("&x.pe=").append(encode(p));
        }
        for (String w : webSeeds) {
            b.append("&ws=").append(encode(w));
        }
        return b.toString();
    }

    /** Percent-encoding of the UTF-8 bytes (unreserved characters kept), as tracker URLs use it too. */
    static String encode(String s) {
        return Trackers.percent(s.getBytes(StandardCharsets.UTF_8));
    }

    private static String abbreviate(String s) {
        return s.length() <= 40 ? s : s.substring(0, 40) + "...";
    }
}
