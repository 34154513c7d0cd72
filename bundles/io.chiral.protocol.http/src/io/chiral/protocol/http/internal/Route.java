package io.chiral.protocol.http.internal;

import io.chiral.api.FileId;

/**
 * A request path the server understands: {@code /file/{cid}}, {@code /file/{cid}/manifest} or
 * {@code /file/{cid}/chunk/{i}} (a query string is ignored).
 *
 * @param chunk the chunk index for {@link Kind#CHUNK}, else -1
 */
record Route(Kind kind, FileId id, int chunk) {

    enum Kind {
        FILE, MANIFEST, CHUNK
    }

    static final String PREFIX = "/file/";

    /**
     * Parses a request target.
     *
     * @throws IllegalArgumentException with a one-line reason when the path names nothing this server has
     */
    static Route parse(String uri) {
        int q = uri.indexOf('?');
        String path = q >= 0 ? uri.substring(0, q) : uri;
        if (!path.startsWith(PREFIX)) {
            throw new IllegalArgumentException("no such resource: " + abbreviate(path)
                    + " (paths are /file/CID, /file/CID/manifest, /file/CID/chunk/N)");
        }
        String[] parts = path.substring(PREFIX.length()).split("/", -1);
        if (!FileId.isCid(parts[0])) {
            throw new IllegalArgumentException("not a CID: '" + abbreviate(parts[0]) + "' (want 64 hex characters)");
        }
        FileId id = FileId.parse(parts[0]);
        if (parts.length == 1) {
            return new Route(Kind.FILE, id, -1);
        }
        if (parts.length == 2 && parts[1].equals("manifest")) {
            return new Route(Kind.MANIFEST, id, -1);
        }
        if (parts.length == 3 && parts[1].equals("chunk")) {
            return new Route(Kind.CHUNK, id, chunkIndex(parts[2]));
        }
        throw new IllegalArgumentException("no such resource: " + abbreviate(path)
                + " (paths are /file/CID, /file/CID/manifest, /file/CID/chunk/N)");
    }

    private static int chunkIndex(String s) {
        if (s.isEmpty() || s.length() > 10 || !s.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new IllegalArgumentException("not a chunk index: '" + abbreviate(s) + "'");
        }
        long v = Long.parseLong(s);
        if (v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("no chunk " + s);
        }
        return (int) v;
    }

    static String abbreviate(String s) {
        String t = s.length() <= 80 ? s : s.substring(0, 77) + "...";
        StringBuilder b = new StringBuilder(t.length());
        t.codePoints().forEach(cp -> b.appendCodePoint(cp >= 0x20 && cp != 0x7f ? cp : '?'));
        return b.toString();
    }
}
