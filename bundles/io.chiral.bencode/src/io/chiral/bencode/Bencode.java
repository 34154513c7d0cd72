package io.chiral.bencode;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Strict bencode. The decoder accepts exactly one canonical value filling the whole input: integers without
 * leading zeros or {@code -0} that fit a {@code long}, string lengths that fit the remaining input, dictionary keys
 * strictly ascending (no duplicates), nesting at most {@link Limits#maxDepth()}, at most
 * {@link Limits#maxElements()} values. It never allocates more than the input it was given.
 */
public final class Bencode {
    /** Bounds for one decode. */
    public record Limits(int maxInput, int maxDepth, int maxElements) {
        /** KRPC datagrams and peer-wire messages: 64 KiB, depth 16, 4096 values. */
        public static final Limits NETWORK = new Limits(64 * 1024, 16, 4096);
        /** .torrent files and BEP 9 metadata: 16 MiB, depth 32, 2^20 values. */
        public static final Limits FILE = new Limits(16 * 1024 * 1024, 32, 1 << 20);
    }

    private final byte[] in;
    private final int end;
    private final Limits limits;
    private int pos;
    private int elements;

    private Bencode(byte[] in, int offset, int length, Limits limits) {
        this.in = in;
        this.pos = offset;
        this.end = offset + length;
        this.limits = limits;
    }

    public static Object decode(byte[] input, Limits limits) throws BencodeException {
        return decode(input, 0, input.length, limits);
    }

    public static Object decode(byte[] input, int offset, int length, Limits limits) throws BencodeException {
        if (length > limits.maxInput()) {
            throw new BencodeException("input of " + length + " bytes exceeds the limit of " + limits.maxInput(), 0);
        }
        Bencode d = new Bencode(input, offset, length, limits);
        Object v = d.value(0);
        if (d.pos != d.end) {
            throw new BencodeException("trailing data after the value", d.pos - offset);
        }
        return v;
    }

    private BencodeException error(String what) {
        return new BencodeException(what, pos);
    }

    private Object value(int depth) throws BencodeException {
        if (pos >= end) {
            throw error("input ends where a value should start");
        }
        if (++elements > limits.maxElements()) {
            throw error("more than " + limits.maxElements() + " values");
        }
        byte b = in[pos];
        if (b == 'i') {
            return integer();
        }
        if (b >= '0' && b <= '9') {
            return string();
        }
        if (b == 'l' || b == 'd') {
            if (depth >= limits.maxDepth()) {
                throw error("nesting deeper than " + limits.maxDepth());
            }
            pos++;
            return b == 'l' ? list(depth) : dict(depth);
        }
        throw error("unexpected byte 0x" + Integer.toHexString(b & 0xff));
    }

    private Long integer() throws BencodeException {
        pos++; // 'i'
        int start = pos;
        boolean negative = pos < end && in[pos] == '-';
        if (negative) {
            pos++;
        }
        int digits = pos;
        long v = 0;
        while (pos < end && in[pos] >= '0' && in[pos] <= '9') {
            int d = in[pos] - '0';
            if (v > (Long.MAX_VALUE - d) / 10) {
                throw error("integer does not fit 64 bits");
            }
            v = v * 10 + d;
            pos++;
        }
        int n = pos - digits;
        if (n == 0) {
            throw error("integer without digits");
        }
        if (pos >= end || in[pos] != 'e') {
            throw error("integer not terminated by 'e'");
        }
        if ((n > 1 && in[digits] == '0') || (negative && v == 0)) {
            pos = start;
            throw error("non-canonical integer");
        }
        pos++;
        return negative ? -v : v;
    }

    private Bytes string() throws BencodeException {
        long len = 0;
        int start = pos;
        while (pos < end && in[pos] >= '0' && in[pos] <= '9') {
            len = len * 10 + (in[pos] - '0');
            if (len > end) {
                throw error("string length beyond the input");
            }
            pos++;
        }
        if (pos - start > 1 && in[start] == '0') {
            throw error("string length with a leading zero");
        }
        if (pos >= end || in[pos] != ':') {
            throw error("string length not followed by ':'");
        }
        pos++;
        if (len > end - pos) {
            throw error("string of " + len + " bytes but only " + (end - pos) + " left");
        }
        byte[] b = new byte[(int) len];
        System.arraycopy(in, pos, b, 0, (int) len);
        pos += (int) len;
        return Bytes.wrap(b);
    }

    private List<Object> list(int depth) throws BencodeException {
        List<Object> out = new ArrayList<>();
        while (true) {
            if (pos >= end) {
                throw error("list not terminated");
            }
            if (in[pos] == 'e') {
                pos++;
                return Collections.unmodifiableList(out);
            }
            out.add(value(depth + 1));
        }
    }

    private SortedMap<Bytes, Object> dict(int depth) throws BencodeException {
        TreeMap<Bytes, Object> out = new TreeMap<>();
        Bytes last = null;
        while (true) {
            if (pos >= end) {
                throw error("dictionary not terminated");
            }
            if (in[pos] == 'e') {
                pos++;
                return Collections.unmodifiableSortedMap(out);
            }
            if (in[pos] < '0' || in[pos] > '9') {
                throw error("dictionary key is not a string");
            }
            int keyAt = pos;
            if (++elements > limits.maxElements()) {
                throw error("more than " + limits.maxElements() + " values");
            }
            Bytes key = string();
            if (last != null && key.compareTo(last) <= 0) {
                pos = keyAt;
                throw error(key.compareTo(last) == 0 ? "duplicate dictionary key '" + key + "'"
                        : "dictionary keys out of order ('" + key + "' after '" + last + "')");
            }
            last = key;
            out.put(key, value(depth + 1));
        }
    }

    // ---- encoding ----

    /** Encodes Long/Integer, Bytes, byte[], String (UTF-8), List and Map (keys Bytes or String, sorted here). */
    public static byte[] encode(Object value) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        write(out, value);
        return out.toByteArray();
    }

    private static void write(ByteArrayOutputStream out, Object v) {
        if (v instanceof Long || v instanceof Integer) {
            out.writeBytes(("i" + v + "e").getBytes(StandardCharsets.US_ASCII));
        } else if (v instanceof Bytes b) {
            writeString(out, b.raw());
        } else if (v instanceof byte[] b) {
            writeString(out, b);
        } else if (v instanceof String s) {
            writeString(out, s.getBytes(StandardCharsets.UTF_8));
        } else if (v instanceof List<?> l) {
            out.write('l');
            for (Object o : l) {
                write(out, o);
            }
            out.write('e');
        } else if (v instanceof Map<?, ?> m) {
            TreeMap<Bytes, Object> sorted = new TreeMap<>();
            for (Map.Entry<?, ?> e : m.entrySet()) {
                Bytes k = e.getKey() instanceof Bytes b ? b : e.getKey() instanceof String s ? Bytes.of(s) : null;
                if (k == null) {
                    throw new IllegalArgumentException("dictionary key must be Bytes or String: " + e.getKey());
                }
                if (sorted.put(k, e.getValue()) != null) {
                    throw new IllegalArgumentException("duplicate dictionary key " + k);
                }
            }
            out.write('d');
            for (Map.Entry<Bytes, Object> e : sorted.entrySet()) {
                writeString(out, e.getKey().raw());
                write(out, e.getValue());
            }
            out.write('e');
        } else {
            throw new IllegalArgumentException("cannot bencode " + (v == null ? "null" : v.getClass().getName()));
        }
    }

    private static void writeString(ByteArrayOutputStream out, byte[] b) {
        out.writeBytes((b.length + ":").getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(b);
    }

}
