package io.chiral.fuzz;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.BencodeException;

/**
 * The strict bencode decoder: only {@link BencodeException} may escape, and whatever it accepts is canonical, so
 * re-encoding gives back exactly the input (the info-hash of a torrent relies on this).
 */
class BencodeFuzzTest {
    private static final Bencode.Limits SMALL = new Bencode.Limits(4096, 4, 64);

    static Stream<Arguments> seeds() {
        return Stream.of(
                "i0e", "i-42e", "i9223372036854775807e", "0:", "4:spam", "le", "de", "l4:spami42ee",
                "d3:bar4:spam3:fooi42ee", "d1:ad1:bl1:ci1eeee", "d8:msg_typei0e5:piecei0ee",
                "d1:md11:ut_metadatai3ee1:pi6881e1:v5:Chirale")
                .map(s -> Arguments.of((Object) s.getBytes(StandardCharsets.US_ASCII)));
    }

    @MethodSource("seeds")
    @FuzzTest
    void decode(byte[] data) throws Exception {
        for (Bencode.Limits limits : List.of(Bencode.Limits.NETWORK, SMALL)) {
            Object value;
            try {
                value = Bencode.decode(data, limits);
            } catch (BencodeException e) {
                Check.that(e.offset() >= 0 && e.offset() <= data.length, "error offset within the input");
                continue;
            }
            Check.that(value instanceof Long || value instanceof io.chiral.bencode.Bytes || value instanceof List
                    || value instanceof Map, "decoded type");
            Check.that(Arrays.equals(Bencode.encode(value), data), "decode then encode gives back the input");
        }
        if (data.length > 2) {
            // a window of the input, as the extension decoders use it
            int offset = (data[0] & 0xff) % data.length;
            int length = (data[1] & 0xff) % (data.length - offset + 1);
            try {
                Object value = Bencode.decode(data, offset, length, Bencode.Limits.NETWORK);
                Check.that(Arrays.equals(Bencode.encode(value), Arrays.copyOfRange(data, offset, offset + length)),
                        "window round trip");
            } catch (BencodeException e) {
                // rejected
            }
        }
    }
}
