package io.chiral.dht.internal;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SortedMap;
import java.util.function.Function;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.Bytes;

/**
 * A signed record of the Chiral network, stored under {@link #target()} = SHA-1 of its key string. On the wire it
 * is a bencoded dictionary: {@code k} publisher's Ed25519 public key, {@code key} the namespaced key, {@code sub}
 * (optional) what distinguishes several records of one publisher under one key (a CID under a keyword),
 * {@code seq} publish time in ms (newer replaces older), {@code ttl} seconds, {@code v} the value dictionary,
 * {@code sig} the Ed25519 signature over {@code "chiral-record-v1"} followed by the bencoded dictionary of
 * {@code key, seq, sub, ttl, v}. {@link #parse} accepts nothing unsigned, badly signed or oversized.
 */
public record ChiralRecord(byte[] publicKey, String key, byte[] sub, long seq, long ttlSeconds,
        SortedMap<Bytes, Object> value, byte[] signature) {
    public static final int MAX_ENCODED = 2048;
    public static final int MAX_KEY = 200;
    public static final int MAX_SUB = 64;
    public static final long MAX_TTL_SECONDS = 24 * 3600L;
    private static final byte[] DOMAIN = "chiral-record-v1".getBytes(StandardCharsets.US_ASCII);

    /** Builds and signs a record with {@code signer} (Ed25519 over the given bytes). */
    @SuppressWarnings("unchecked")
    public static ChiralRecord create(String key, byte[] sub, long seq, long ttlSeconds, Map<String, Object> value,
            byte[] publicKey, Function<byte[], byte[]> signer) {
        SortedMap<Bytes, Object> v;
        try {
            v = (SortedMap<Bytes, Object>) Bencode.decode(Bencode.encode(value), Bencode.Limits.NETWORK);
        } catch (io.chiral.bencode.BencodeException e) {
            throw new IllegalArgumentException("record value does not round-trip through bencode", e);
        }
        byte[] sig = signer.apply(signedBytes(key, sub, seq, ttlSeconds, v));
        ChiralRecord r = new ChiralRecord(publicKey.clone(), key, sub == null ? null : sub.clone(), seq, ttlSeconds, v, sig);
        if (r.encode().length > MAX_ENCODED) {
            throw new IllegalArgumentException("record for " + key + " is larger than " + MAX_ENCODED + " bytes");
        }
        return r;
    }

    /** Validates and verifies a decoded wire record. */
    @SuppressWarnings("unchecked")
    public static ChiralRecord parse(Object decoded) {
        if (!(decoded instanceof SortedMap<?, ?> raw)) {
            throw new IllegalArgumentException("record is not a dictionary");
        }
        SortedMap<Bytes, Object> m = (SortedMap<Bytes, Object>) raw;
        byte[] k = bytes(m, "k", Ed25519Keys.PUBLIC_KEY, Ed25519Keys.PUBLIC_KEY);
        Bytes keyBytes = m.get(Bytes.of("key")) instanceof Bytes b ? b : null;
        if (keyBytes == null || keyBytes.length() == 0 || keyBytes.length() > MAX_KEY) {
            throw new IllegalArgumentException("record key missing or longer than " + MAX_KEY + " bytes");
        }
        byte[] sub = m.containsKey(Bytes.of("sub")) ? bytes(m, "sub", 1, MAX_SUB) : null;
        long seq = m.get(Bytes.of("seq")) instanceof Long l && l >= 0 ? l : -1;
        long ttl = m.get(Bytes.of("ttl")) instanceof Long l && l > 0 && l <= MAX_TTL_SECONDS ? l : -1;
        if (seq < 0 || ttl < 0) {
            throw new IllegalArgumentException("record seq or ttl missing or out of range");
        }
        if (!(m.get(Bytes.of("v")) instanceof SortedMap<?, ?> v)) {
            throw new IllegalArgumentException("record value is not a dictionary");
        }
        byte[] sig = bytes(m, "sig", Ed25519Keys.SIGNATURE, Ed25519Keys.SIGNATURE);
        String key = keyBytes.utf8();
        ChiralRecord r = new ChiralRecord(k, key, sub, seq, ttl, (SortedMap<Bytes, Object>) v, sig);
        if (!Ed25519Keys.verify(k, signedBytes(key, sub, seq, ttl, r.value), sig)) {
            throw new IllegalArgumentException("record signature does not verify");
        }
        if (r.encode().length > MAX_ENCODED) {
            throw new IllegalArgumentException("record larger than " + MAX_ENCODED + " bytes");
        }
        return r;
    }

    private static byte[] bytes(SortedMap<Bytes, Object> m, String field, int min, int max) {
        if (m.get(Bytes.of(field)) instanceof Bytes b && b.length() >= min && b.length() <= max) {
            return b.toByteArray();
        }
        throw new IllegalArgumentException("record field '" + field + "' missing or not " + min + ".." + max + " bytes");
    }

    static byte[] signedBytes(String key, byte[] sub, long seq, long ttl, SortedMap<Bytes, Object> value) {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("key", key);
        d.put("seq", seq);
        if (sub != null) {
            d.put("sub", sub);
        }
        d.put("ttl", ttl);
        d.put("v", value);
        byte[] body = Bencode.encode(d);
        byte[] out = Arrays.copyOf(DOMAIN, DOMAIN.length + body.length);
        System.arraycopy(body, 0, out, DOMAIN.length, body.length);
        return out;
    }

    /** SHA-1 of the key string: where the record lives in the DHT. */
    public static NodeId targetOf(String key) {
        return NodeId.of(Bep44.sha1(key.getBytes(StandardCharsets.UTF_8)));
    }

    public NodeId target() {
        return targetOf(key);
    }

    /** Publisher and sub-key: one stored record per identity and key, the highest seq wins. */
    public Bytes identity() {
        byte[] id = Arrays.copyOf(publicKey, publicKey.length + (sub == null ? 0 : sub.length));
        if (sub != null) {
            System.arraycopy(sub, 0, id, publicKey.length, sub.length);
        }
        return Bytes.of(id);
    }

    public Map<String, Object> toWire() {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("k", publicKey);
        d.put("key", key);
        d.put("seq", seq);
        d.put("sig", signature);
        if (sub != null) {
            d.put("sub", sub);
        }
        d.put("ttl", ttlSeconds);
        d.put("v", value);
        return d;
    }

    public byte[] encode() {
        return Bencode.encode(toWire());
    }
}
