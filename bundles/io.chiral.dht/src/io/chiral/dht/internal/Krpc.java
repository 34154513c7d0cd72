package io.chiral.dht.internal;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.BencodeException;
import io.chiral.bencode.Bytes;

/**
 * KRPC (BEP 5): bencoded dictionaries over UDP. {@link #decode} turns one datagram into a {@link Query},
 * {@link Response} or {@link Error}, or throws {@link KrpcException} carrying the KRPC error code to answer with
 * (203 protocol error) — never anything else, whatever the bytes.
 */
public final class Krpc {
    public static final int MAX_DATAGRAM = 64 * 1024;
    public static final int MAX_TRANSACTION_ID = 32;
    public static final int GENERIC_ERROR = 201;
    public static final int SERVER_ERROR = 202;
    public static final int PROTOCOL_ERROR = 203;
    public static final int METHOD_UNKNOWN = 204;

    private static final Bytes T = Bytes.of("t");
    private static final Bytes Y = Bytes.of("y");
    private static final Bytes Q = Bytes.of("q");
    private static final Bytes A = Bytes.of("a");
    private static final Bytes R = Bytes.of("r");
    private static final Bytes E = Bytes.of("e");
    private static final Bytes V = Bytes.of("v");
    private static final Bytes ID = Bytes.of("id");
    private static final Bytes IP = Bytes.of("ip");

    private Krpc() {
    }

    /** Any KRPC message: transaction id and, when present, the sender's client version ({@code v}). */
    public sealed interface Message permits Query, Response, Error {
        Bytes transaction();
    }

    /** A query: {@code method} with arguments {@code args} (which include {@code id}). */
    public record Query(Bytes transaction, String method, NodeId sender, SortedMap<Bytes, Object> args, Bytes version)
            implements Message {
    }

    /** A response: values {@code values} (which include {@code id}). */
    public record Response(Bytes transaction, NodeId sender, SortedMap<Bytes, Object> values, Bytes version, Bytes ip)
            implements Message {
    }

    /** An error: code and message. */
    public record Error(Bytes transaction, long code, String message) implements Message {
    }

    /** A datagram that is not a valid KRPC message; {@link #code} is what to answer (if it had a transaction id). */
    public static final class KrpcException extends Exception {
        private static final long serialVersionUID = 1L;
        private final int code;
        private final transient Bytes transaction;

        KrpcException(int code, String message, Bytes transaction) {
            super(message);
            this.code = code;
            this.transaction = transaction;
        }

        public int code() {
            return code;
        }

        /** Transaction id of the bad message, or null when it had none usable. */
        public Bytes transaction() {
            return transaction;
        }
    }

    public static Message decode(byte[] datagram, int offset, int length) throws KrpcException {
        Object root;
        try {
            root = Bencode.decode(datagram, offset, length, Bencode.Limits.NETWORK);
        } catch (BencodeException e) {
            throw new KrpcException(PROTOCOL_ERROR, "invalid bencode: " + e.getMessage(), null);
        }
        if (!(root instanceof SortedMap<?, ?> raw)) {
            throw new KrpcException(PROTOCOL_ERROR, "message is not a dictionary", null);
        }
        @SuppressWarnings("unchecked")
        SortedMap<Bytes, Object> m = (SortedMap<Bytes, Object>) raw;
        Bytes t = m.get(T) instanceof Bytes b && b.length() > 0 && b.length() <= MAX_TRANSACTION_ID ? b : null;
        if (t == null) {
            throw new KrpcException(PROTOCOL_ERROR, "missing or bad transaction id 't'", null);
        }
        Bytes v = m.get(V) instanceof Bytes b ? b : null;
        String y = m.get(Y) instanceof Bytes b ? b.utf8() : null;
        if ("q".equals(y)) {
            String method = m.get(Q) instanceof Bytes b && b.length() <= 64 ? b.utf8() : null;
            if (method == null) {
                throw new KrpcException(PROTOCOL_ERROR, "query without method 'q'", t);
            }
            SortedMap<Bytes, Object> args = dict(m.get(A), "query without arguments 'a'", t);
            return new Query(t, method, sender(args, t), args, v);
        }
        if ("r".equals(y)) {
            SortedMap<Bytes, Object> values = dict(m.get(R), "response without values 'r'", t);
            Bytes ip = m.get(IP) instanceof Bytes b ? b : null;
            return new Response(t, sender(values, t), values, v, ip);
        }
        if ("e".equals(y)) {
            if (m.get(E) instanceof List<?> l && l.size() >= 2 && l.get(0) instanceof Long code && l.get(1) instanceof Bytes msg) {
                return new Error(t, code, msg.utf8());
            }
            throw new KrpcException(PROTOCOL_ERROR, "error without [code, message]", t);
        }
        throw new KrpcException(PROTOCOL_ERROR, "unknown message type 'y'", t);
    }

    @SuppressWarnings("unchecked")
    private static SortedMap<Bytes, Object> dict(Object o, String missing, Bytes t) throws KrpcException {
        if (o instanceof SortedMap<?, ?> d) {
            return (SortedMap<Bytes, Object>) d;
        }
        throw new KrpcException(PROTOCOL_ERROR, missing, t);
    }

    private static NodeId sender(SortedMap<Bytes, Object> d, Bytes t) throws KrpcException {
        if (d.get(ID) instanceof Bytes id && id.length() == NodeId.LENGTH) {
            return NodeId.of(id.toByteArray());
        }
        throw new KrpcException(PROTOCOL_ERROR, "missing or bad node id 'id'", t);
    }

    // ---- encoding ----

    public static byte[] query(Bytes t, String method, NodeId self, Map<String, Object> args, Bytes version) {
        Map<String, Object> a = new LinkedHashMap<>(args);
        a.put("id", self.bytes());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("t", t);
        m.put("y", "q");
        m.put("q", method);
        m.put("a", a);
        if (version != null) {
            m.put("v", version);
        }
        return Bencode.encode(m);
    }

    public static byte[] response(Bytes t, NodeId self, Map<String, Object> values, Bytes version) {
        return response(t, self, values, version, null);
    }

    /** A response; {@code ip} (BEP 42) is the requester's compact address, or null. */
    public static byte[] response(Bytes t, NodeId self, Map<String, Object> values, Bytes version, Bytes ip) {
        Map<String, Object> r = new LinkedHashMap<>(values);
        r.put("id", self.bytes());
        Map<String, Object> m = new LinkedHashMap<>();
        if (ip != null) {
            m.put("ip", ip);
        }
        m.put("t", t);
        m.put("y", "r");
        m.put("r", r);
        if (version != null) {
            m.put("v", version);
        }
        return Bencode.encode(m);
    }

    public static byte[] error(Bytes t, int code, String message) {
        return Bencode.encode(Map.of("t", t, "y", "e", "e", List.of((long) code, message)));
    }
}
