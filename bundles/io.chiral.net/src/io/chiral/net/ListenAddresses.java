package io.chiral.net;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code host:port} addresses a listening socket can be reached at, as a node advertises them in its provider
 * records: bound to a wildcard address, {@code 127.0.0.1:PORT} and every non-loopback IPv4 address of the
 * interfaces that are up (never {@code 0.0.0.0}, which names no host to others); bound to one address, that address.
 */
public final class ListenAddresses {
    private ListenAddresses() {
    }

    public static List<String> of(InetAddress bound, int port) {
        if (!bound.isAnyLocalAddress()) {
            return List.of(hostPort(bound, port));
        }
        List<String> out = new ArrayList<>();
        out.add("127.0.0.1:" + port);
        try {
            for (NetworkInterface nif : NetworkInterface.networkInterfaces().toList()) {
                if (!nif.isUp() || nif.isLoopback()) {
                    continue;
                }
                for (InetAddress a : nif.inetAddresses().toList()) {
                    if (a instanceof Inet4Address && !a.isLoopbackAddress()) {
                        String hp = hostPort(a, port);
                        if (!out.contains(hp)) {
                            out.add(hp);
                        }
                    }
                }
            }
        } catch (SocketException e) {
            // interfaces cannot be listed: loopback only
        }
        return List.copyOf(out);
    }

    /** {@code host:port}, IPv6 hosts in brackets and without a zone. */
    public static String hostPort(InetAddress address, int port) {
        String host = address.getHostAddress();
        int zone = host.indexOf('%');
        if (zone >= 0) {
            host = host.substring(0, zone);
        }
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
}
