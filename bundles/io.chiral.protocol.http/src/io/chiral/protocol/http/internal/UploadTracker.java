package io.chiral.protocol.http.internal;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import io.chiral.api.FileId;
import io.chiral.api.PeerInfo;
import io.netty.channel.Channel;

/** Which file each inbound connection asked for last, so that {@code peers(id)} can list who downloads what. */
final class UploadTracker {
    private final Map<Channel, FileId> lastRequested = new ConcurrentHashMap<>();

    void requested(Channel ch, FileId id) {
        if (ch.isActive()) {
            lastRequested.put(ch, id);
        }
    }

    void closed(Channel ch) {
        lastRequested.remove(ch);
    }

    /** Remote addresses of open connections whose last request was for {@code id}. */
    List<PeerInfo> peers(FileId id) {
        List<PeerInfo> out = new ArrayList<>();
        lastRequested.forEach((ch, requested) -> {
            if (requested.equals(id) && ch.isActive()) {
                String address = format(ch.remoteAddress());
                if (address != null) {
                    out.add(PeerInfo.of(HttpProtocol.NAME, address));
                }
            }
        });
        return out;
    }

    /** {@code host:port}, IPv6 in brackets; null for an address that is not an IP socket address. */
    static String format(SocketAddress address) {
        if (!(address instanceof InetSocketAddress isa)) {
            return null;
        }
        String host = isa.getAddress() != null ? isa.getAddress().getHostAddress() : isa.getHostString();
        int zone = host.indexOf('%');
        if (zone >= 0) {
            host = host.substring(0, zone);
        }
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + isa.getPort();
    }
}
