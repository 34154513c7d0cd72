package io.chiral.protocol.http.internal;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;

import io.chiral.api.FileId;
import io.chiral.api.PeerInfo;

/** A URL naming a file on a Chiral HTTP peer: {@code http://HOST:PORT/file/<64-hex CID>}. */
record ChiralUrl(FileId id, PeerInfo peer) {

    /**
     * Whether {@code text} has the shape of a Chiral file URL, over {@code http} or {@code https} (the latter
     * only so that {@link #parse} can explain that https is not supported).
     */
    static boolean looksLikeFileUrl(String text) {
        if (text == null) {
            return false;
        }
        String lower = text.strip().toLowerCase(Locale.ROOT);
        if (!lower.startsWith("http://") && !lower.startsWith("https://")) {
            return false;
        }
        try {
            URI uri = new URI(text.strip());
            String path = uri.getRawPath();
            return uri.getHost() != null && path != null && path.startsWith(Route.PREFIX)
                    && FileId.isCid(path.substring(Route.PREFIX.length()));
        } catch (URISyntaxException e) {
            return false;
        }
    }

    /**
     * Parses a Chiral file URL.
     *
     * @throws IllegalArgumentException with a message fit for a user
     */
    static ChiralUrl parse(String text) {
        String s = text.strip();
        URI uri;
        try {
            uri = new URI(s);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("not a URL: " + e.getMessage());
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (scheme.equals("https")) {
            throw new IllegalArgumentException("https is not supported: Chiral HTTP peers speak plain http"
                    + " (content is verified by its CID instead); use http://HOST:PORT/file/CID");
        }
        if (!scheme.equals("http")) {
            throw new IllegalArgumentException("not an http URL: '" + Route.abbreviate(s) + "'");
        }
        if (uri.getRawUserInfo() != null) {
            throw new IllegalArgumentException("user names in URLs are not supported: '" + Route.abbreviate(s) + "'");
        }
        if (uri.getHost() == null) {
            throw new IllegalArgumentException("no host in '" + Route.abbreviate(s) + "'");
        }
        String path = uri.getRawPath();
        if (path == null || !path.startsWith(Route.PREFIX) || !FileId.isCid(path.substring(Route.PREFIX.length()))) {
            throw new IllegalArgumentException("not a Chiral file URL: '" + Route.abbreviate(s)
                    + "' (want http://HOST:PORT/file/<64 hex CID>)");
        }
        int port = uri.getPort() < 0 ? 80 : uri.getPort();
        PeerInfo peer = PeerInfo.parse(uri.getHost() + ":" + port, HttpProtocol.NAME);
        return new ChiralUrl(FileId.parse(path.substring(Route.PREFIX.length())), peer);
    }
}
