package io.chiral.protocol.bittorrent.internal;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * The BitTorrent peer wire protocol (BEP 3), with the Fast extension (BEP 6) and the extension protocol envelope
 * (BEP 10): the 68-byte handshake and the length-prefixed messages, as a pure codec (no I/O).
 *
 * <p>{@link Decoder} is built for hostile input: it reads the 4-byte length prefix and message id first and
 * rejects any length that is not exactly right for that id (or above {@link Limits}) before waiting for, or
 * allocating, the body; it then checks every field, so each decoded message is valid for the torrent described by
 * its {@link Limits}. Every rejection is a {@link TorrentException}; no other exception escapes for any input.
 */
public final class PeerWire {
    /** The 19 bytes after the first byte of a handshake. */
    public static final String PROTOCOL = "BitTorrent protocol";
    /** A handshake is always 68 bytes: 1 + 19 + 8 reserved + 20 info-hash + 20 peer id. */
    public static final int HANDSHAKE_LENGTH = 68;
    /** Size of a block requested or sent: 16 KiB, the de facto standard; larger requests are rejected. */
    public static final int BLOCK = 16 * 1024;

    public static final int CHOKE = 0;
    public static final int UNCHOKE = 1;
    public static final int INTERESTED = 2;
    public static final int NOT_INTERESTED = 3;
    public static final int HAVE = 4;
    public static final int BITFIELD = 5;
    public static final int REQUEST = 6;
    public static final int PIECE = 7;
    public static final int CANCEL = 8;
    public static final int PORT = 9;
    public static final int SUGGEST = 13;
    public static final int HAVE_ALL = 14;
    public static final int HAVE_NONE = 15;
    public static final int REJECT = 16;
    public static final int ALLOWED_FAST = 17;
    public static final int EXTENDED = 20;

    private static final byte[] PROTOCOL_BYTES = PROTOCOL.getBytes(StandardCharsets.US_ASCII);

    private PeerWire() {
    }

    /**
     * Bounds for decoding: the largest message (length prefix value), the largest block in Request, Cancel, Reject
     * and Piece, and the number of pieces of the torrent, or {@link #UNKNOWN_PIECES} before the metadata is known
     * (then indexes are only checked to be non-negative and a bitfield only against {@code maxMessage}).
     */
    public record Limits(int maxMessage, int maxBlock, int pieceCount) {
        public static final int UNKNOWN_PIECES = -1;
        /** 1 MiB + 13 per message, 16 KiB blocks, piece count unknown. */
        public static final Limits DEFAULT = new Limits((1 << 20) + 13, BLOCK, UNKNOWN_PIECES);

        /** Checks the bounds are usable: a piece message with a full block and the torrent's bitfield must fit. */
        public Limits {
            if (maxBlock < 1 || maxMessage < 9 + maxBlock) {
                throw new IllegalArgumentException("maxMessage " + maxMessage + " cannot hold a block of " + maxBlock);
            }
            if (pieceCount < UNKNOWN_PIECES || pieceCount == 0
                    || (pieceCount > 0 && 1L + bitfieldLength(pieceCount) > maxMessage)) {
                throw new IllegalArgumentException("bad piece count " + pieceCount + " for maxMessage " + maxMessage);
            }
        }

        /** The same bounds for a torrent of {@code pieces} pieces. */
        public Limits withPieceCount(int pieces) {
            return new Limits(maxMessage, maxBlock, pieces);
        }

        boolean knowsPieces() {
            return pieceCount > 0;
        }
    }

    /** Bytes of a bitfield for {@code pieces} pieces: ceil(pieces / 8). */
    public static int bitfieldLength(int pieces) {
        return (int) ((pieces + 7L) / 8);
    }

    // ---- handshake ----

    /**
     * A BEP 3 handshake. {@code reserved} is 8 bytes, {@code infoHash} and {@code peerId} 20 bytes each; the arrays
     * are copied in and out, so a handshake is immutable.
     */
    public record Handshake(byte[] reserved, byte[] infoHash, byte[] peerId) {
        public Handshake {
            reserved = exact(reserved, 8, "reserved");
            infoHash = exact(infoHash, 20, "info-hash");
            peerId = exact(peerId, 20, "peer id");
        }

        /** A handshake advertising the given capabilities and nothing else. */
        public static Handshake of(byte[] infoHash, byte[] peerId, boolean extensionProtocol, boolean fast,
                boolean dht) {
            byte[] r = new byte[8];
            r[5] = (byte) (extensionProtocol ? 0x10 : 0);
            r[7] = (byte) ((fast ? 0x04 : 0) | (dht ? 0x01 : 0));
            return new Handshake(r, infoHash, peerId);
        }

        @Override
        public byte[] reserved() {
            return reserved.clone();
        }

        @Override
        public byte[] infoHash() {
            return infoHash.clone();
        }

        @Override
        public byte[] peerId() {
            return peerId.clone();
        }

        /** BEP 10 extension protocol: reserved[5] & 0x10. */
        public boolean extensionProtocol() {
            return (reserved[5] & 0x10) != 0;
        }

        /** BEP 6 Fast extension: reserved[7] & 0x04. */
        public boolean fast() {
            return (reserved[7] & 0x04) != 0;
        }

        /** BEP 5 DHT (the peer may send Port): reserved[7] & 0x01. */
        public boolean dht() {
            return (reserved[7] & 0x01) != 0;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Handshake h && Arrays.equals(reserved, h.reserved) && Arrays.equals(infoHash, h.infoHash)
                    && Arrays.equals(peerId, h.peerId);
        }

        @Override
        public int hashCode() {
            return 31 * (31 * Arrays.hashCode(reserved) + Arrays.hashCode(infoHash)) + Arrays.hashCode(peerId);
        }

        @Override
        public String toString() {
            HexFormat hex = HexFormat.of();
            return "Handshake[reserved=" + hex.formatHex(reserved) + ", infoHash=" + hex.formatHex(infoHash)
                    + ", peerId=" + hex.formatHex(peerId) + "]";
        }
    }

    private static byte[] exact(byte[] b, int length, String what) {
        if (b == null || b.length != length) {
            throw new IllegalArgumentException(what + " must be " + length + " bytes");
        }
        return b.clone();
    }

    public static byte[] encodeHandshake(Handshake h) {
        ByteBuffer out = ByteBuffer.allocate(HANDSHAKE_LENGTH);
        out.put((byte) PROTOCOL_BYTES.length).put(PROTOCOL_BYTES);
        out.put(h.reserved).put(h.infoHash).put(h.peerId);
        return out.array();
    }

    /**
     * Reads a handshake from {@code in} (in read mode): null, consuming nothing, while fewer than 68 bytes are
     * available; otherwise consumes exactly 68 bytes. Rejects as soon as the protocol string differs, even before
     * 68 bytes arrived.
     */
    public static Handshake decodeHandshake(ByteBuffer in) throws TorrentException {
        int p = in.position();
        int seen = Math.min(in.remaining(), 1 + PROTOCOL_BYTES.length);
        for (int i = 0; i < seen; i++) {
            int expected = i == 0 ? PROTOCOL_BYTES.length : PROTOCOL_BYTES[i - 1];
            if (in.get(p + i) != expected) {
                throw new TorrentException("not a BitTorrent handshake (byte " + i + ")");
            }
        }
        if (in.remaining() < HANDSHAKE_LENGTH) {
            return null;
        }
        in.position(p + 1 + PROTOCOL_BYTES.length);
        byte[] reserved = new byte[8];
        byte[] infoHash = new byte[20];
        byte[] peerId = new byte[20];
        in.get(reserved).get(infoHash).get(peerId);
        return new Handshake(reserved, infoHash, peerId);
    }

    // ---- messages ----

    /** A peer-wire message after the handshake; every record's constructor checks its own invariants. */
    public sealed interface Message permits KeepAlive, Choke, Unchoke, Interested, NotInterested, Have, Bitfield,
            Request, Piece, Cancel, Port, Suggest, HaveAll, HaveNone, Reject, AllowedFast, Extended, Unknown {
    }

    /** Length 0: keeps the connection open. */
    public record KeepAlive() implements Message {
    }

    public record Choke() implements Message {
    }

    public record Unchoke() implements Message {
    }

    public record Interested() implements Message {
    }

    public record NotInterested() implements Message {
    }

    /** The sender has piece {@code index}. */
    public record Have(int index) implements Message {
        public Have {
            nonNegative(index, "index");
        }
    }

    /**
     * The pieces the sender has, high bit of byte 0 = piece 0. The array is copied in and out; decoded bitfields
     * are exactly {@code ceil(pieceCount / 8)} bytes with the spare bits clear when the piece count is known.
     */
    public record Bitfield(byte[] bits) implements Message {
        public Bitfield {
            bits = bits.clone();
        }

        @Override
        public byte[] bits() {
            return bits.clone();
        }

        /** Number of bytes, without copying. */
        public int length() {
            return bits.length;
        }

        /** Whether piece {@code index} is set (false beyond the end). */
        public boolean has(int index) {
            return index >= 0 && index / 8 < bits.length && (bits[index / 8] & (0x80 >>> (index % 8))) != 0;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Bitfield b && Arrays.equals(bits, b.bits);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(bits);
        }

        @Override
        public String toString() {
            return "Bitfield[" + bits.length + " bytes]";
        }
    }

    /** Asks for {@code length} bytes of piece {@code index} from offset {@code begin}. */
    public record Request(int index, int begin, int length) implements Message {
        public Request {
            checkBlock(index, begin, length);
        }
    }

    /**
     * A block of piece {@code index} at offset {@code begin}. Unlike the other records it does not copy its array (a block is 16 KiB and arrives by the
     * million): the array belongs to the record, and neither its creator nor a reader may modify it.
     */
    public record Piece(int index, int begin, byte[] block) implements Message {
        public Piece {
            checkBlock(index, begin, block.length);
        }

        /** Block length in bytes. */
        public int length() {
            return block.length;
        }

        /** Copies the block into {@code dst} at {@code offset}. */
        public void copyTo(byte[] dst, int offset) {
            System.arraycopy(block, 0, dst, offset, block.length);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Piece p && p.index == index && p.begin == begin && Arrays.equals(block, p.block);
        }

        @Override
        public int hashCode() {
            return 31 * (31 * index + begin) + Arrays.hashCode(block);
        }

        @Override
        public String toString() {
            return "Piece[index=" + index + ", begin=" + begin + ", " + block.length + " bytes]";
        }
    }

    /** Withdraws a {@link Request}. */
    public record Cancel(int index, int begin, int length) implements Message {
        public Cancel {
            checkBlock(index, begin, length);
        }
    }

    /** The sender's DHT port (1..65535). */
    public record Port(int port) implements Message {
        public Port {
            if (port < 1 || port > 0xffff) {
                throw new IllegalArgumentException("port " + port);
            }
        }
    }

    /** BEP 6: the sender suggests downloading piece {@code index}. */
    public record Suggest(int index) implements Message {
        public Suggest {
            nonNegative(index, "index");
        }
    }

    /** BEP 6: the sender has every piece (instead of a bitfield). */
    public record HaveAll() implements Message {
    }

    /** BEP 6: the sender has no piece (instead of a bitfield). */
    public record HaveNone() implements Message {
    }

    /** BEP 6: the sender will not serve this request. */
    public record Reject(int index, int begin, int length) implements Message {
        public Reject {
            checkBlock(index, begin, length);
        }
    }

    /** BEP 6: the receiver may request piece {@code index} even while choked. */
    public record AllowedFast(int index) implements Message {
        public AllowedFast {
            nonNegative(index, "index");
        }
    }

    /**
     * BEP 10: extension message {@code extId} (0 = extended handshake, otherwise an id the receiver assigned in its
     * handshake) carrying {@code payload}; the array is copied in and out. See {@link Extension}.
     */
    public record Extended(int extId, byte[] payload) implements Message {
        public Extended {
            if (extId < 0 || extId > 0xff) {
                throw new IllegalArgumentException("extension id " + extId);
            }
            payload = payload.clone();
        }

        @Override
        public byte[] payload() {
            return payload.clone();
        }

        /** Payload length in bytes. */
        public int length() {
            return payload.length;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Extended e && e.extId == extId && Arrays.equals(payload, e.payload);
        }

        @Override
        public int hashCode() {
            return 31 * extId + Arrays.hashCode(payload);
        }

        @Override
        public String toString() {
            return "Extended[extId=" + extId + ", " + payload.length + " bytes]";
        }
    }

    /**
     * A message with an id this codec does not know; BEP 3 lets the receiver ignore it. Its {@code length} bytes
     * (id included) were consumed, not kept.
     */
    public record Unknown(int id, int length) implements Message {
    }

    private static void nonNegative(int v, String what) {
        if (v < 0) {
            throw new IllegalArgumentException(what + " " + v + " is negative");
        }
    }

    private static void checkBlock(int index, int begin, int length) {
        nonNegative(index, "index");
        nonNegative(begin, "begin");
        if (length < 1) {
            throw new IllegalArgumentException("block length " + length);
        }
    }

    // ---- encoding ----

    /** The message with its 4-byte length prefix. Encodes what the records allow; {@link Unknown} cannot be sent. */
    public static byte[] encode(Message m) {
        return switch (m) {
            case KeepAlive k -> new byte[4];
            case Choke c -> bare(CHOKE);
            case Unchoke u -> bare(UNCHOKE);
            case Interested i -> bare(INTERESTED);
            case NotInterested n -> bare(NOT_INTERESTED);
            case Have h -> header(HAVE, 4).putInt(h.index()).array();
            case Bitfield b -> header(BITFIELD, b.bits.length).put(b.bits).array();
            case Request r -> header(REQUEST, 12).putInt(r.index()).putInt(r.begin()).putInt(r.length()).array();
            case Piece p -> header(PIECE, 8 + p.block.length).putInt(p.index()).putInt(p.begin()).put(p.block).array();
            case Cancel c -> header(CANCEL, 12).putInt(c.index()).putInt(c.begin()).putInt(c.length()).array();
            case Port p -> header(PORT, 2).putShort((short) p.port()).array();
            case Suggest s -> header(SUGGEST, 4).putInt(s.index()).array();
            case HaveAll h -> bare(HAVE_ALL);
            case HaveNone h -> bare(HAVE_NONE);
            case Reject r -> header(REJECT, 12).putInt(r.index()).putInt(r.begin()).putInt(r.length()).array();
            case AllowedFast a -> header(ALLOWED_FAST, 4).putInt(a.index()).array();
            case Extended e -> header(EXTENDED, 1 + e.payload.length).put((byte) e.extId()).put(e.payload).array();
            case Unknown u -> throw new IllegalArgumentException("an unknown message has no body to send");
        };
    }

    private static byte[] bare(int id) {
        return header(id, 0).array();
    }

    private static ByteBuffer header(int id, int bodyLength) {
        return ByteBuffer.allocate(5 + bodyLength).putInt(1 + bodyLength).put((byte) id);
    }

    // ---- decoding ----

    /**
     * Incremental decoder of the messages following a handshake, for one connection. {@link #next} is given a
     * buffer in read mode holding whatever has arrived; it returns null (consuming nothing) until a whole message
     * is there, so the buffer must be able to hold {@code 4 + maxMessage} bytes. The decoder is stateful (it knows
     * whether the first message was sent and what was negotiated) and not thread-safe.
     *
     * <p>Beyond the per-message checks it enforces: HaveAll and HaveNone only as the first message (a
     * keep-alive or BEP 10 extended messages may precede them, as libtorrent 2.0 sends those first); the
     * Fast messages only when both sides advertised BEP 6; Extended only when both advertised BEP 10.
     */
    public static final class Decoder {
        private final Limits limits;
        private final boolean fast;
        private final boolean extensions;
        private boolean first = true;

        /** {@code fast} and {@code extensions}: whether both handshakes advertised BEP 6 and BEP 10. */
        public Decoder(Limits limits, boolean fast, boolean extensions) {
            this.limits = limits;
            this.fast = fast;
            this.extensions = extensions;
        }

        /** A decoder for what the two handshakes negotiated. */
        public static Decoder negotiated(Limits limits, Handshake local, Handshake remote) {
            return new Decoder(limits, local.fast() && remote.fast(),
                    local.extensionProtocol() && remote.extensionProtocol());
        }

        /**
         * The next message, or null when more bytes are needed; the buffer's position moves past what was read.
         * On a TorrentException nothing is consumed; the connection should be closed.
         */
        public Message next(ByteBuffer in) throws TorrentException {
            if (in.order() != ByteOrder.BIG_ENDIAN) {
                throw new IllegalArgumentException("the peer wire is big-endian; so must the buffer be");
            }
            int p = in.position();
            if (in.remaining() < 4) {
                return null;
            }
            int length = in.getInt(p);
            if (length < 0 || length > limits.maxMessage()) {
                throw new TorrentException("message length " + Integer.toUnsignedString(length) + " exceeds "
                        + limits.maxMessage());
            }
            if (length == 0) {
                in.position(p + 4);
                return new KeepAlive();
            }
            if (in.remaining() < 5) {
                return null;
            }
            int id = in.get(p + 4) & 0xff;
            checkLength(id, length);
            if (in.remaining() - 4 < length) { // not 4 + length: that overflows for a maxMessage near 2^31
                return null;
            }
            in.position(p + 5);
            Message m;
            try {
                m = body(id, length - 1, in);
            } catch (TorrentException e) {
                in.position(p);
                throw e;
            }
            in.position(p + 4 + length);
            if (!(m instanceof Extended) && !(m instanceof KeepAlive)) {
                // BEP 10 messages may come first: libtorrent 2.0 sends its extended handshake, and on a magnet link
                // its ut_metadata requests, before its have-none
                first = false;
            }
            return m;
        }

        /** Rejects a length that cannot be right for {@code id}, before the body is awaited or allocated. */
        private void checkLength(int id, int length) throws TorrentException {
            // a late bitfield is tolerated (aria2 1.36 sends one after its first pieces); the session merges it
            if (id == HAVE_ALL || id == HAVE_NONE) {
                if (!first) {
                    throw new TorrentException("message " + id + " is only allowed first");
                }
            }
            if (id >= SUGGEST && id <= ALLOWED_FAST && !fast) {
                throw new TorrentException("Fast extension message " + id + " without BEP 6 negotiated");
            }
            if (id == EXTENDED && !extensions) {
                throw new TorrentException("extended message without BEP 10 negotiated");
            }
            int min;
            int max;
            switch (id) {
                case CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED, HAVE_ALL, HAVE_NONE -> min = max = 1;
                case HAVE, SUGGEST, ALLOWED_FAST -> min = max = 5;
                case REQUEST, CANCEL, REJECT -> min = max = 13;
                case PORT -> min = max = 3;
                case PIECE -> {
                    min = 10;
                    max = 9 + limits.maxBlock();
                }
                case BITFIELD -> {
                    min = limits.knowsPieces() ? 1 + bitfieldLength(limits.pieceCount()) : 2;
                    max = limits.knowsPieces() ? min : limits.maxMessage();
                }
                case EXTENDED -> {
                    min = 2;
                    max = limits.maxMessage();
                }
                default -> {
                    min = 1;
                    max = limits.maxMessage();
                }
            }
            if (length < min || length > max) {
                throw new TorrentException("message " + id + " of length " + length + " (allowed " + min + ".." + max
                        + ")");
            }
        }

        /** Decodes a body of {@code n} bytes (already bounded by {@link #checkLength}) starting at the position. */
        private Message body(int id, int n, ByteBuffer in) throws TorrentException {
            return switch (id) {
                case CHOKE -> new Choke();
                case UNCHOKE -> new Unchoke();
                case INTERESTED -> new Interested();
                case NOT_INTERESTED -> new NotInterested();
                case HAVE -> new Have(index(in.getInt()));
                case BITFIELD -> new Bitfield(bitfield(bytes(in, n)));
                case REQUEST -> {
                    int[] b = blockFields(in);
                    yield new Request(b[0], b[1], b[2]);
                }
                case PIECE -> {
                    int index = index(in.getInt());
                    int begin = begin(in.getInt(), n - 8);
                    yield new Piece(index, begin, bytes(in, n - 8));
                }
                case CANCEL -> {
                    int[] b = blockFields(in);
                    yield new Cancel(b[0], b[1], b[2]);
                }
                case PORT -> new Port(port(in.getShort() & 0xffff));
                case SUGGEST -> new Suggest(index(in.getInt()));
                case HAVE_ALL -> new HaveAll();
                case HAVE_NONE -> new HaveNone();
                case REJECT -> {
                    int[] b = blockFields(in);
                    yield new Reject(b[0], b[1], b[2]);
                }
                case ALLOWED_FAST -> new AllowedFast(index(in.getInt()));
                case EXTENDED -> {
                    int extId = in.get() & 0xff;
                    yield new Extended(extId, bytes(in, n - 1));
                }
                default -> new Unknown(id, n + 1);
            };
        }

        private int index(int index) throws TorrentException {
            if (index < 0 || (limits.knowsPieces() && index >= limits.pieceCount())) {
                throw new TorrentException("piece index " + Integer.toUnsignedString(index) + " out of range"
                        + (limits.knowsPieces() ? " (" + limits.pieceCount() + " pieces)" : ""));
            }
            return index;
        }

        private static int begin(int begin, int length) throws TorrentException {
            if (begin < 0 || (long) begin + length > Integer.MAX_VALUE) {
                throw new TorrentException("block offset " + Integer.toUnsignedString(begin) + " out of range");
            }
            return begin;
        }

        private int[] blockFields(ByteBuffer in) throws TorrentException {
            int index = index(in.getInt());
            int begin = in.getInt();
            int length = in.getInt();
            if (length < 1 || length > limits.maxBlock()) {
                throw new TorrentException("block length " + Integer.toUnsignedString(length) + " (allowed 1.."
                        + limits.maxBlock() + ")");
            }
            return new int[] {index, begin(begin, length), length};
        }

        private static int port(int port) throws TorrentException {
            if (port == 0) {
                throw new TorrentException("DHT port 0");
            }
            return port;
        }

        private byte[] bitfield(byte[] bits) throws TorrentException {
            if (limits.knowsPieces()) {
                int spare = bits.length * 8 - limits.pieceCount();
                int mask = (1 << spare) - 1;
                if ((bits[bits.length - 1] & mask) != 0) {
                    throw new TorrentException("bitfield has spare bits set beyond piece " + limits.pieceCount());
                }
            }
            return bits;
        }

        private static byte[] bytes(ByteBuffer in, int n) {
            byte[] b = new byte[n];
            in.get(b);
            return b;
        }
    }
}
