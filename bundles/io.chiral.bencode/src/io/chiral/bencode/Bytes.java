package io.chiral.bencode;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;

/** An immutable byte string, the bencode string type; ordered as raw unsigned bytes, as dictionary keys must be. */
public final class Bytes implements Comparable<Bytes> {
    private final byte[] data;

    private Bytes(byte[] data) {
        this.data = data;
    }

    /** Wraps a copy of {@code data}. */
    public static Bytes of(byte[] data) {
        return new Bytes(data.clone());
    }

    public static Bytes of(String utf8) {
        return new Bytes(utf8.getBytes(StandardCharsets.UTF_8));
    }

    static Bytes wrap(byte[] data) {
        return new Bytes(data);
    }

    public int length() {
        return data.length;
    }

    public byte[] toByteArray() {
        return data.clone();
    }

    byte[] raw() {
        return data;
    }

    /** UTF-8 text; malformed sequences become U+FFFD. */
    public String utf8() {
        return new String(data, StandardCharsets.UTF_8);
    }

    public String hex() {
        return HexFormat.of().formatHex(data);
    }

    @Override
    public int compareTo(Bytes o) {
        return Arrays.compareUnsigned(data, o.data);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Bytes b && Arrays.equals(data, b.data);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        for (byte b : data) {
            if (b < 0x20 || b > 0x7e) {
                return "0x" + hex();
            }
        }
        return utf8();
    }
}
