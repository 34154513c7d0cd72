package io.chiral.fuzz;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.stream.Stream;

import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.chiral.protocol.bittorrent.internal.Magnet;
import io.chiral.protocol.bittorrent.internal.TorrentException;

/**
 * Magnet links: only {@link TorrentException} may escape; an accepted link has a 20-byte info-hash and survives
 * {@link Magnet#toUri()} then {@link Magnet#parse} unchanged. The input is tried as is and behind
 * {@code magnet:?}, so the fuzzer need not rediscover the prefix.
 */
class MagnetFuzzTest {

    static Stream<Arguments> seeds() {
        return Stream.of(
                "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567",
                "magnet:?xt=urn:btih:AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYU&dn=My+File%20%C3%A9.iso",
                "magnet:?xt=urn:btih:0123456789ABCDEF0123456789ABCDEF01234567&tr=http%3A%2F%2Ft.example%2Fannounce"
                        + "&tr.1=udp%3A%2F%2Fu.example%3A6969&x.pe=10.0.0.1:6881&ws=http%3A%2F%2Fw.example%2F&xl=1024",
                "magnet:?xt=urn:btmh:1220aabbccddeeff&xt=urn:btih:0123456789abcdef0123456789abcdef01234567",
                "magnet:?xt=urn:btmh:1220aabbccddeeff", "magnet:?dn=x&&kt=a+b", "xt=urn:btih:&dn=%zz")
                .map(s -> Arguments.of((Object) s.getBytes(StandardCharsets.UTF_8)));
    }

    @MethodSource("seeds")
    @FuzzTest
    void parse(byte[] data) throws Exception {
        String s = new String(data, StandardCharsets.UTF_8);
        check(s);
        check("magnet:?" + s);
    }

    private static void check(String uri) throws Exception {
        Magnet m;
        try {
            m = NoLookups.during(() -> Magnet.parse(uri));
        } catch (TorrentException e) {
            return;
        }
        Check.that(m.infoHash().length == 20, "20-byte info-hash");
        Check.that(m.trackers().size() + m.peers().size() + m.webSeeds().size() <= Magnet.MAX_PARAMETERS,
                "parameter count");
        Magnet again = Magnet.parse(m.toUri());
        Check.that(Arrays.equals(m.infoHash(), again.infoHash()) && java.util.Objects.equals(m.name(), again.name())
                && m.trackers().equals(again.trackers()) && m.peers().equals(again.peers())
                && m.webSeeds().equals(again.webSeeds()), "toUri then parse gives the same link");
    }
}
