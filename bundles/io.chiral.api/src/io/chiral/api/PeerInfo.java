package io.chiral.api;

import java.util.Objects;

/**
 * A peer as one protocol sees it: the protocol name ({@code http}, {@code bittorrent} …), its address
 * ({@code host:port}), and, when known, its Chiral node id and client name.
 */
public record PeerInfo(String protocol, String address, String nodeId, String client) {
    public PeerInfo {
        Objects.requireNonNull(protocol, "protocol");
        Objects.requireNonNull(address, "address");
    }

    public static PeerInfo of(String protocol, String address) {
        return new PeerInfo(protocol, address, null, null);
    }

    /**
     * Parses {@code [protocol://]host:port}; the protocol defaults to {@code defaultProtocol}.
     *
     * @throws IllegalArgumentException for anything that is not host:port with a port in 1..65535
     */
    public static PeerInfo parse(String text, String defaultProtocol) {
        String s = text.strip();
        String proto = defaultProtocol;
        int scheme = s.indexOf("://");
        if (scheme > 0) {
            proto = s.substring(0, scheme).toLowerCase(java.util.Locale.ROOT);
            s = s.substring(scheme + 3);
        }
        while (s.endsWith("/")) {
            s = s.substring(0, s.length() - 1);
        }
        int colon = s.lastIndexOf(':');
        if (colon <= 0 || colon == s.length() - 1) {
            throw new IllegalArgumentException("not a peer address (want HOST:PORT): '" + text + "'");
        }
        String host = s.substring(0, colon);
        int port;
        try {
            port = Integer.parseInt(s.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not a port number in '" + text + "'");
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("port out of range (1-65535) in '" + text + "'");
        }
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        if (host.isEmpty() || host.chars().anyMatch(c -> c <= ' ' || c == '/' || c == '@')) {
            throw new IllegalArgumentException("not a host name in '" + text + "'");
        }
        return of(proto, (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port);
    }

    /** Host part of {@link #address()} (without IPv6 brackets). */
    public String host() {
        String h = address.substring(0, address.lastIndexOf(':'));
        return h.startsWith("[") ? h.substring(1, h.length() - 1) : h;
    }

    public int port() {
        return Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
    }

    /** {@code protocol://address}, the form used in listings and per-source statistics. */
    public String label() {
        return protocol + "://" + address;
    }
}
