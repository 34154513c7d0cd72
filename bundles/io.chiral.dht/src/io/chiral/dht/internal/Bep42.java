package io.chiral.dht.internal;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.security.SecureRandom;
import java.util.zip.CRC32C;

/**
 * BEP 42 (DHT security extension): a node id's first 21 bits are tied to its IPv4 address through CRC32-C, and
 * its last byte is the random {@code r} used. Nodes on local addresses (loopback, private, link-local) are exempt.
 */
public final class Bep42 {
    private static final int V4_MASK = 0x030f3fff;

    private Bep42() {
    }

    /** A compliant id for {@code ip}: random except for the bits the address fixes. */
    public static NodeId generate(InetAddress ip, SecureRandom random) {
        byte[] id = new byte[NodeId.LENGTH];
        random.nextBytes(id);
        if (!(ip instanceof Inet4Address)) {
            return NodeId.of(id);
        }
        int r = id[19] & 0x07;
        int crc = crc(ip, r);
        id[0] = (byte) (crc >>> 24);
        id[1] = (byte) (crc >>> 16);
        id[2] = (byte) (((crc >>> 8) & 0xf8) | (id[2] & 0x07));
        id[19] = (byte) r;
        return NodeId.of(id);
    }

    /** Whether {@code id} is compliant for {@code ip}; always true for IPv6 and local addresses. */
    public static boolean valid(NodeId id, InetAddress ip) {
        if (!(ip instanceof Inet4Address) || isLocal(ip)) {
            return true;
        }
        byte[] b = id.bytes();
        int crc = crc(ip, b[19] & 0x07);
        return (b[0] & 0xff) == (crc >>> 24 & 0xff)
                && (b[1] & 0xff) == (crc >>> 16 & 0xff)
                && (b[2] & 0xf8) == (crc >>> 8 & 0xf8);
    }

    /** Loopback, RFC 1918 private, link-local, unspecified. */
    public static boolean isLocal(InetAddress ip) {
        return ip.isLoopbackAddress() || ip.isSiteLocalAddress() || ip.isLinkLocalAddress() || ip.isAnyLocalAddress();
    }

    private static int crc(InetAddress ip, int r) {
        byte[] a = ip.getAddress();
        int v = ((a[0] & 0xff) << 24 | (a[1] & 0xff) << 16 | (a[2] & 0xff) << 8 | (a[3] & 0xff)) & V4_MASK;
        v |= r << 29;
        CRC32C c = new CRC32C();
        c.update(new byte[] {(byte) (v >>> 24), (byte) (v >>> 16), (byte) (v >>> 8), (byte) v});
        return (int) c.getValue();
    }
}
