package io.chiral.dht.internal;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A DHT node as KRPC carries it: id plus IPv4 address and port, in BEP 5 "compact node info" form (26 bytes);
 * and the 6-byte "compact peer info" of {@code get_peers} values.
 */
public record Contact(NodeId id, InetSocketAddress address) {
    public static final int COMPACT_NODE = 26;
    public static final int COMPACT_PEER = 6;

    public Contact {
        if (!(address.getAddress() instanceof Inet4Address)) {
            throw new IllegalArgumentException("compact node info is IPv4 only: " + address);
        }
    }

    /** Parses concatenated compact node infos; a length that is not a multiple of 26 is rejected. */
    public static List<Contact> parseNodes(byte[] compact) {
        if (compact.length % COMPACT_NODE != 0) {
            throw new IllegalArgumentException("compact nodes of " + compact.length + " bytes (not a multiple of 26)");
        }
        List<Contact> out = new ArrayList<>(compact.length / COMPACT_NODE);
        ByteBuffer b = ByteBuffer.wrap(compact);
        while (b.hasRemaining()) {
            byte[] id = new byte[NodeId.LENGTH];
            b.get(id);
            InetSocketAddress a = readPeer(b);
            if (a.getPort() != 0) {
                out.add(new Contact(NodeId.of(id), a));
            }
        }
        return out;
    }

    public static byte[] encodeNodes(List<Contact> contacts) {
        ByteBuffer b = ByteBuffer.allocate(contacts.size() * COMPACT_NODE);
        for (Contact c : contacts) {
            b.put(c.id().bytes());
            writePeer(b, c.address());
        }
        return b.array();
    }

    public static InetSocketAddress parsePeer(byte[] compact) {
        if (compact.length != COMPACT_PEER) {
            throw new IllegalArgumentException("compact peer of " + compact.length + " bytes (want 6)");
        }
        return readPeer(ByteBuffer.wrap(compact));
    }

    public static byte[] encodePeer(InetSocketAddress a) {
        ByteBuffer b = ByteBuffer.allocate(COMPACT_PEER);
        writePeer(b, a);
        return b.array();
    }

    private static InetSocketAddress readPeer(ByteBuffer b) {
        byte[] ip = new byte[4];
        b.get(ip);
        int port = b.getShort() & 0xffff;
        try {
            return new InetSocketAddress(InetAddress.getByAddress(ip), port);
        } catch (UnknownHostException e) {
            throw new IllegalStateException("4 bytes are always an IPv4 address", e);
        }
    }

    private static void writePeer(ByteBuffer b, InetSocketAddress a) {
        byte[] ip = a.getAddress().getAddress();
        if (ip.length != 4) {
            throw new IllegalArgumentException("compact peer info is IPv4 only: " + a);
        }
        b.put(ip).putShort((short) a.getPort());
    }
}
