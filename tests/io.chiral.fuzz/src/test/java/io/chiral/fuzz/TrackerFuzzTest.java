package io.chiral.fuzz;

import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.chiral.protocol.bittorrent.internal.TorrentException;
import io.chiral.protocol.bittorrent.internal.Trackers;

/**
 * Tracker answers: HTTP announce (bencode, compact and dictionary peer lists) and UDP BEP 15 connect and announce
 * answers. Only {@link TorrentException} may escape, no host name may be resolved, and a result is bounded.
 *
 * <p>Input: byte 0 selects HTTP (even) or UDP (odd); for UDP bit 1 makes the transaction id the one in the answer
 * (otherwise 0x01020304 is expected) and bits 3..5 shift the datagram length passed to the parser by -2..+5.
 */
class TrackerFuzzTest {
    private static final int TX = 0x01020304;

    static Stream<Arguments> seeds() {
        List<byte[]> out = new ArrayList<>();
        byte[] compact = {10, 0, 0, 1, 0x1a, (byte) 0xe1, (byte) 192, (byte) 168, 1, 2, 0x1a, (byte) 0xe2};
        out.add(http("d8:completei5e10:incompletei3e8:intervali1800e5:peers12:"
                + new String(compact, StandardCharsets.ISO_8859_1) + "e"));
        out.add(http("d8:intervali900e5:peersld2:ip11:10.20.30.407:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881eed2:ip"
                + "11:2001:db8::14:porti51413eeee"));
        out.add(http("d14:failure reason17:torrent not founde"));
        out.add(udp(ByteBuffer.allocate(16).putInt(0).putInt(TX).putLong(0x1122334455667788L).array()));
        out.add(udp(ByteBuffer.allocate(32).putInt(1).putInt(TX).putInt(1800).putInt(2).putInt(7)
                .put(compact).array()));
        out.add(udp(ByteBuffer.allocate(20).putInt(3).putInt(TX).put("bad torrent".getBytes(StandardCharsets.US_ASCII))
                .array()));
        return out.stream().map(b -> Arguments.of((Object) b));
    }

    private static byte[] http(String body) {
        byte[] b = body.getBytes(StandardCharsets.ISO_8859_1);
        byte[] out = new byte[b.length + 1];
        System.arraycopy(b, 0, out, 1, b.length);
        return out;
    }

    private static byte[] udp(byte[] datagram) {
        byte[] out = new byte[datagram.length + 1];
        out[0] = 0x01 | (2 << 3); // UDP, fixed transaction, exact length
        System.arraycopy(datagram, 0, out, 1, datagram.length);
        return out;
    }

    @MethodSource("seeds")
    @FuzzTest
    void parse(byte[] data) throws Exception {
        if (data.length == 0) {
            return;
        }
        int mode = data[0] & 0xff;
        byte[] body = Arrays.copyOfRange(data, 1, data.length);
        if ((mode & 1) == 0) {
            try {
                check(NoLookups.during(() -> Trackers.parseHttp(body)));
            } catch (TorrentException e) {
                // rejected
            }
            return;
        }
        int tx = (mode & 2) != 0 && body.length >= 8 ? ByteBuffer.wrap(body).getInt(4) : TX;
        int length = body.length + ((mode >> 3) & 7) - 2;
        try {
            NoLookups.during(() -> Trackers.parseUdpConnect(body, length, tx));
        } catch (TorrentException e) {
            // rejected
        }
        try {
            check(NoLookups.during(() -> Trackers.parseUdpAnnounce(body, length, tx)));
        } catch (TorrentException e) {
            // rejected
        }
    }

    private static void check(Trackers.Result r) {
        Check.that(r.interval() > 0 && r.interval() <= 86_400, "interval");
        Check.that(r.seeders() >= -1 && r.leechers() >= -1, "swarm counts");
        Check.that(r.peers().size() <= Trackers.MAX_PEERS, "peer count");
        for (InetSocketAddress a : r.peers()) {
            Check.that(!a.isUnresolved() && a.getPort() > 0 && a.getPort() <= 65535, "peer address");
        }
    }
}
