package io.chiral.protocol.bittorrent.internal;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Pattern;

import io.chiral.bencode.Bencode;
import io.chiral.bencode.BencodeException;
import io.chiral.bencode.Bytes;

/**
 * Payloads of BEP 10 extended messages ({@link PeerWire.Extended}): the extended handshake, BEP 9
 * {@code ut_metadata} messages and the Chiral {@code chiral} message. Every decoder accepts strict (canonical)
 * bencode within {@link Bencode.Limits#NETWORK}, checks every field it returns against the bounds below, and
 * throws {@link TorrentException} for anything else — never another exception, whatever the bytes. Unknown
 * dictionary keys are ignored, as BEP 10 requires.
 */
public final class Extension {
    /** BEP 9: metadata is exchanged in 16 KiB pieces. */
    public static final int METADATA_PIECE = 16 * 1024;
    /** Largest {@code metadata_size} (the info dictionary) accepted: 16 MiB. */
    public static final int MAX_METADATA_SIZE = 16 * 1024 * 1024;
    /** Longest extension name in {@code m}, in bytes. */
    public static final int MAX_NAME = 64;
    /** Most entries in {@code m}. */
    public static final int MAX_EXTENSIONS = 64;
    /** Longest client name {@code v}, in bytes. */
    public static final int MAX_CLIENT = 128;
    /** Largest {@code reqq} (outstanding requests) accepted. */
    public static final int MAX_REQQ = 65_535;
    /** Name of the BEP 9 extension. */
    public static final String UT_METADATA = "ut_metadata";
    /** Name of the Chiral extension. */
    public static final String CHIRAL = "chiral";
    /** Upper bound of {@link ChiralHello#reputationMilli()}: a reputation of 1.000. */
    public static final int MAX_REPUTATION_MILLI = 1000;

    private static final Bytes M = Bytes.of("m");
    private static final Bytes V = Bytes.of("v");
    private static final Bytes P = Bytes.of("p");
    private static final Bytes REQQ = Bytes.of("reqq");
    private static final Bytes METADATA_SIZE = Bytes.of("metadata_size");
    private static final Bytes MSG_TYPE = Bytes.of("msg_type");
    private static final Bytes PIECE = Bytes.of("piece");
    private static final Bytes TOTAL_SIZE = Bytes.of("total_size");
    private static final Bytes CHIRAL_PEER_ID = Bytes.of("chiral_peer_id");
    private static final Bytes REPUTATION = Bytes.of("reputation_score");
    private static final Bytes WALLET = Bytes.of("wallet_address");
    private static final Bytes NONCE = Bytes.of("nonce");
    private static final Bytes SIG = Bytes.of("sig");
    private static final Pattern PEER_ID = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern WALLET_ADDRESS = Pattern.compile("0x[0-9a-fA-F]{40}");
    private static final int MAX_DICT_DEPTH = 16;

    private Extension() {
    }

    // ---- BEP 10 extended handshake ----

    /**
     * The extended handshake (extension id 0). {@code extensions} maps names to the ids the sender wants to
     * receive them under (1..255, or 0: disabled), at most {@value #MAX_EXTENSIONS} names of at most
     * {@value #MAX_NAME} bytes, no two enabled names sharing an id. Absent optional values: {@code client} null,
     * {@code port} 0, {@code reqq} 0, {@code metadataSize} -1.
     */
    public record Handshake(Map<String, Integer> extensions, String client, int port, int reqq, long metadataSize) {
        public Handshake {
            extensions = Collections.unmodifiableSortedMap(new TreeMap<>(extensions));
            if (port < 0 || port > 0xffff || reqq < 0 || reqq > MAX_REQQ || metadataSize < -1
                    || metadataSize > MAX_METADATA_SIZE || metadataSize == 0) {
                throw new IllegalArgumentException("extended handshake value out of range");
            }
        }

        /** The id under which the sender receives {@code name}, or 0 when it does not support it. */
        public int id(String name) {
            Integer id = extensions.get(name);
            return id == null ? 0 : id;
        }
    }

    public static byte[] encodeHandshake(Handshake h) {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("m", new TreeMap<>(h.extensions()));
        if (h.client() != null) {
            d.put("v", h.client());
        }
        if (h.port() != 0) {
            d.put("p", h.port());
        }
        if (h.reqq() != 0) {
            d.put("reqq", h.reqq());
        }
        if (h.metadataSize() != -1) {
            d.put("metadata_size", h.metadataSize());
        }
        return Bencode.encode(d);
    }

    public static Handshake decodeHandshake(byte[] payload) throws TorrentException {
        SortedMap<Bytes, Object> d = dict(payload, 0, payload.length);
        Map<String, Integer> m = extensionMap(d.get(M));
        String client = null;
        if (d.get(V) instanceof Bytes v) {
            if (v.length() > MAX_CLIENT) {
                throw new TorrentException("client name 'v' longer than " + MAX_CLIENT + " bytes");
            }
            client = v.utf8();
        }
        int port = (int) optionalInt(d, P, 1, 0xffff, 0);
        int reqq = (int) optionalInt(d, REQQ, 1, MAX_REQQ, 0);
        long size = optionalInt(d, METADATA_SIZE, 1, MAX_METADATA_SIZE, -1);
        return new Handshake(m, client, port, reqq, size);
    }

    private static Map<String, Integer> extensionMap(Object o) throws TorrentException {
        if (!(o instanceof SortedMap<?, ?> raw)) {
            throw new TorrentException("extended handshake without dictionary 'm'");
        }
        if (raw.size() > MAX_EXTENSIONS) {
            throw new TorrentException("more than " + MAX_EXTENSIONS + " extensions in 'm'");
        }
        Map<String, Integer> out = new TreeMap<>();
        Set<Long> ids = new HashSet<>();
        for (Map.Entry<?, ?> e : raw.entrySet()) {
            Bytes name = (Bytes) e.getKey();
            if (name.length() == 0 || name.length() > MAX_NAME) {
                throw new TorrentException("extension name of " + name.length() + " bytes");
            }
            String text = ascii(name, "extension name");
            if (!(e.getValue() instanceof Long id) || id < 0 || id > 0xff) {
                throw new TorrentException("extension '" + text + "' without an id in 0..255");
            }
            if (id != 0 && !ids.add(id)) {
                throw new TorrentException("extension id " + id + " used twice in 'm'");
            }
            out.put(text, id.intValue());
        }
        return out;
    }

    private static String ascii(Bytes b, String what) throws TorrentException {
        byte[] raw = b.toByteArray();
        for (byte x : raw) {
            if (x < 0x21 || x > 0x7e) {
                throw new TorrentException(what + " is not printable ASCII");
            }
        }
        return new String(raw, StandardCharsets.US_ASCII);
    }

    // ---- BEP 9 ut_metadata ----

    /** A BEP 9 message; {@code piece} is a 16 KiB piece of the info dictionary. */
    public sealed interface MetadataMessage permits MetadataRequest, MetadataData, MetadataReject, MetadataUnknown {
    }

    /** msg_type 0: asks for metadata piece {@code piece}. */
    public record MetadataRequest(int piece) implements MetadataMessage {
    }

    /**
     * msg_type 1: metadata piece {@code piece} of an info dictionary of {@code totalSize} bytes; {@code data} is
     * exactly 16 KiB, or the remainder for the last piece (copied in and out).
     */
    public record MetadataData(int piece, int totalSize, byte[] data) implements MetadataMessage {
        public MetadataData {
            data = data.clone();
        }

        @Override
        public byte[] data() {
            return data.clone();
        }

        /** Length of {@link #data()} without copying. */
        public int length() {
            return data.length;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof MetadataData m && m.piece == piece && m.totalSize == totalSize
                    && Arrays.equals(data, m.data);
        }

        @Override
        public int hashCode() {
            return 31 * (31 * piece + totalSize) + Arrays.hashCode(data);
        }

        @Override
        public String toString() {
            return "MetadataData[piece=" + piece + ", totalSize=" + totalSize + ", " + data.length + " bytes]";
        }
    }

    /** msg_type 2: the sender will not send metadata piece {@code piece}. */
    public record MetadataReject(int piece) implements MetadataMessage {
    }

    /** An unrecognised msg_type, which BEP 9 says must be ignored. */
    public record MetadataUnknown(long msgType) implements MetadataMessage {
    }

    /** Number of 16 KiB metadata pieces for {@code size} bytes. */
    public static int metadataPieces(long size) {
        return (int) ((size + METADATA_PIECE - 1) / METADATA_PIECE);
    }

    public static byte[] encodeMetadata(MetadataMessage m) {
        Map<String, Object> d = new LinkedHashMap<>();
        switch (m) {
            case MetadataRequest r -> {
                d.put("msg_type", 0);
                d.put("piece", r.piece());
            }
            case MetadataData r -> {
                d.put("msg_type", 1);
                d.put("piece", r.piece());
                d.put("total_size", r.totalSize());
            }
            case MetadataReject r -> {
                d.put("msg_type", 2);
                d.put("piece", r.piece());
            }
            case MetadataUnknown u -> throw new IllegalArgumentException("an unknown metadata message cannot be sent");
        }
        byte[] dict = Bencode.encode(d);
        return m instanceof MetadataData data ? withPiece(dict, data.data) : dict;
    }

    /** A data message: the bencoded dictionary, then the piece's bytes (BEP 9's layout, also the chiral file data). */
    private static byte[] withPiece(byte[] dict, byte[] data) {
        byte[] out = Arrays.copyOf(dict, dict.length + data.length);
        System.arraycopy(data, 0, out, dict.length, data.length);
        return out;
    }

    /**
     * The bytes after the dictionary of a data message, which must be exactly piece {@code piece} (16 KiB, or what
     * remains of {@code total} for the last piece).
     */
    private static byte[] pieceBytes(byte[] payload, int dictEnd, long total, int piece, String what)
            throws TorrentException {
        long expected = Math.min(METADATA_PIECE, total - (long) piece * METADATA_PIECE);
        if (payload.length - dictEnd != expected) {
            throw new TorrentException(what + " piece " + piece + " carries " + (payload.length - dictEnd)
                    + " bytes, expected " + expected);
        }
        return Arrays.copyOfRange(payload, dictEnd, payload.length);
    }

    /**
     * Decodes a ut_metadata payload. {@code metadataSize} is the size announced in the sender's extended handshake,
     * or -1 when unknown; a data message must match it. Piece numbers must lie within the metadata (within
     * {@value #MAX_METADATA_SIZE} bytes when the size is unknown); a data message's bytes must be exactly its piece.
     */
    public static MetadataMessage decodeMetadata(byte[] payload, long metadataSize) throws TorrentException {
        int dictEnd = valueEnd(payload, 0, payload.length);
        SortedMap<Bytes, Object> d = dict(payload, 0, dictEnd);
        if (!(d.get(MSG_TYPE) instanceof Long type)) {
            throw new TorrentException("ut_metadata message without integer 'msg_type'");
        }
        if (type < 0 || type > 2) {
            return new MetadataUnknown(type);
        }
        long size = metadataSize;
        if (type == 1) {
            long total = requiredInt(d, TOTAL_SIZE, 1, MAX_METADATA_SIZE);
            if (metadataSize != -1 && total != metadataSize) {
                throw new TorrentException("total_size " + total + " differs from metadata_size " + metadataSize);
            }
            size = total;
        }
        int pieces = metadataPieces(size == -1 ? MAX_METADATA_SIZE : size);
        int piece = (int) requiredInt(d, PIECE, 0, pieces - 1);
        if (type == 0) {
            requireNoTrailing(payload, dictEnd);
            return new MetadataRequest(piece);
        }
        if (type == 2) {
            requireNoTrailing(payload, dictEnd);
            return new MetadataReject(piece);
        }
        return new MetadataData(piece, (int) size, pieceBytes(payload, dictEnd, size, piece, "metadata"));
    }

    private static void requireNoTrailing(byte[] payload, int dictEnd) throws TorrentException {
        if (dictEnd != payload.length) {
            throw new TorrentException("ut_metadata message has " + (payload.length - dictEnd) + " trailing bytes");
        }
    }

    /**
     * Offset just past the bencoded value starting at {@code from}, found by a structural scan (strings skipped by
     * their length, containers by depth, at most {@value #MAX_DICT_DEPTH} deep). Only the extent is found here;
     * the value itself is then decoded strictly by {@link Bencode}.
     */
    static int valueEnd(byte[] in, int from, int end) throws TorrentException {
        int pos = from;
        int depth = 0;
        do {
            if (pos >= end) {
                throw new TorrentException("bencoded value truncated");
            }
            byte b = in[pos];
            if (b == 'e' && depth > 0 && pos > from) {
                depth--;
                pos++;
            } else if (b == 'd' || b == 'l') {
                if (++depth > MAX_DICT_DEPTH) {
                    throw new TorrentException("bencoded value nested deeper than " + MAX_DICT_DEPTH);
                }
                pos++;
            } else if (b == 'i') {
                pos = skipInteger(in, pos + 1, end);
            } else if (b >= '0' && b <= '9') {
                pos = skipString(in, pos, end);
            } else {
                throw new TorrentException("not bencode at byte " + pos);
            }
        } while (depth > 0);
        return pos;
    }

    private static int skipInteger(byte[] in, int pos, int end) throws TorrentException {
        while (pos < end && in[pos] != 'e') {
            pos++;
        }
        if (pos >= end) {
            throw new TorrentException("bencoded integer truncated");
        }
        return pos + 1;
    }

    private static int skipString(byte[] in, int pos, int end) throws TorrentException {
        long len = 0;
        while (pos < end && in[pos] >= '0' && in[pos] <= '9') {
            len = len * 10 + (in[pos] - '0');
            if (len > end) {
                throw new TorrentException("bencoded string longer than the input");
            }
            pos++;
        }
        if (pos >= end || in[pos] != ':' || len > end - pos - 1) {
            throw new TorrentException("bencoded string truncated");
        }
        return pos + 1 + (int) len;
    }

    // ---- Chiral extension ----

    /** Largest Chiral file description one peer sends another (16 MiB: 2^19 chunk hashes, a 128 GiB file). */
    public static final int MAX_FILE_DESCRIPTION = MAX_METADATA_SIZE;
    /** Torrent piece lengths a file description may state: 16 KiB .. 64 MiB, a multiple of 16 KiB. */
    public static final int MAX_PIECE_LENGTH = 64 * 1024 * 1024;
    private static final Bytes CID = Bytes.of("cid");
    private static final Bytes PIECE_LENGTH = Bytes.of("piece_length");

    /** Shortest and longest {@code nonce} of a hello. */
    public static final int MIN_NONCE = 16;
    public static final int MAX_NONCE = 64;
    /** Length of an Ed25519 signature, the {@code sig} of a proof. */
    public static final int SIGNATURE = 64;

    /**
     * A message of the {@code chiral} extension. msg_type 1 is the hello both Chiral peers send after the extended
     * handshake, 5 the proof of the identity the hello claims; 2, 3 and 4 fetch the Chiral description of the
     * torrent's file (its CID, chunk SHA-256s and Merkle root, which a CID download verifies against) in 16 KiB
     * pieces, as BEP 9 does with the info dictionary.
     */
    public sealed interface ChiralMessage permits ChiralHello, FileRequest, FileData, FileReject, ChiralProof,
            ChiralUnknown {
    }

    /**
     * msg_type 1, sent once after the extended handshake by Chiral nodes: the sender's Ed25519 node id as 64
     * lowercase hex digits, its reputation as an integer in thousandths ({@code reputation_score} 0..1000 stands
     * for 0.000..1.000; bencode has no floats), its wallet address ({@code 0x} + 40 hex digits) or the empty
     * string, and {@code nonce}: {@value #MIN_NONCE}..{@value #MAX_NONCE} random bytes fresh for this connection,
     * which the other side signs in its {@link ChiralProof} (null: the sender asks for no proof). The claimed id
     * counts only once proven.
     */
    public record ChiralHello(String chiralPeerId, int reputationMilli, String walletAddress, Bytes nonce)
            implements ChiralMessage {
        /** A hello without a nonce. */
        public ChiralHello(String chiralPeerId, int reputationMilli, String walletAddress) {
            this(chiralPeerId, reputationMilli, walletAddress, null);
        }

        /** The same hello with {@code nonce}. */
        public ChiralHello withNonce(byte[] n) {
            return new ChiralHello(chiralPeerId, reputationMilli, walletAddress, Bytes.of(n));
        }

        public ChiralHello {
            if (nonce != null && (nonce.length() < MIN_NONCE || nonce.length() > MAX_NONCE)) {
                throw new IllegalArgumentException("nonce must be " + MIN_NONCE + ".." + MAX_NONCE + " bytes");
            }
            if (chiralPeerId == null || !PEER_ID.matcher(chiralPeerId).matches()) {
                throw new IllegalArgumentException("chiral peer id must be 64 lowercase hex digits");
            }
            if (reputationMilli < 0 || reputationMilli > MAX_REPUTATION_MILLI) {
                throw new IllegalArgumentException("reputation " + reputationMilli + " not in 0..1000");
            }
            if (walletAddress == null || !(walletAddress.isEmpty() || WALLET_ADDRESS.matcher(walletAddress).matches())) {
                throw new IllegalArgumentException("wallet address must be 0x + 40 hex digits, or empty");
            }
        }
    }

    /** msg_type 2: asks for piece {@code piece} of the description of file {@code cid} (64 hex; 32 bytes on the wire). */
    public record FileRequest(String cid, int piece) implements ChiralMessage {
        public FileRequest {
            requireCid(cid);
        }
    }

    /**
     * msg_type 3: piece {@code piece} of the description of {@code cid}, {@code totalSize} bytes in all, and the
     * piece length of the torrent the sender serves the file as; the piece's bytes follow the dictionary.
     */
    public record FileData(String cid, int piece, int totalSize, int pieceLength, byte[] data) implements ChiralMessage {
        public FileData {
            requireCid(cid);
            data = data.clone();
        }

        @Override
        public byte[] data() {
            return data.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof FileData f && f.cid.equals(cid) && f.piece == piece && f.totalSize == totalSize
                    && f.pieceLength == pieceLength && Arrays.equals(f.data, data);
        }

        @Override
        public int hashCode() {
            return java.util.Objects.hash(cid, piece, totalSize, pieceLength, Arrays.hashCode(data));
        }

        @Override
        public String toString() {
            return "FileData[cid=" + cid + ", piece=" + piece + ", totalSize=" + totalSize + ", pieceLength="
                    + pieceLength + ", " + data.length + " bytes]";
        }
    }

    /** msg_type 4: the sender does not describe {@code cid} (piece {@code piece} asked for). */
    public record FileReject(String cid, int piece) implements ChiralMessage {
        public FileReject {
            requireCid(cid);
        }
    }

    /**
     * msg_type 5: proof that the sender holds the key its hello named: {@code sig}, the Ed25519 signature of
     * {@link ChiralAuth#proofMessage} (info-hash, the sender's public key, the receiver's hello nonce).
     */
    public record ChiralProof(Bytes signature) implements ChiralMessage {
        public ChiralProof {
            if (signature == null || signature.length() != SIGNATURE) {
                throw new IllegalArgumentException("a proof's signature is " + SIGNATURE + " bytes");
            }
        }
    }

    /** A msg_type this version does not know: ignored, so that later versions can add messages. */
    public record ChiralUnknown(long msgType) implements ChiralMessage {
    }

    private static void requireCid(String cid) {
        if (cid == null || !PEER_ID.matcher(cid).matches()) {
            throw new IllegalArgumentException("cid must be 64 lowercase hex digits");
        }
    }

    public static byte[] encodeChiral(ChiralMessage m) {
        Map<String, Object> d = new LinkedHashMap<>();
        switch (m) {
            case ChiralHello h -> {
                d.put("msg_type", 1);
                d.put("chiral_peer_id", h.chiralPeerId());
                d.put("reputation_score", h.reputationMilli());
                d.put("wallet_address", h.walletAddress());
                if (h.nonce() != null) {
                    d.put("nonce", h.nonce());
                }
            }
            case ChiralProof pr -> {
                d.put("msg_type", 5);
                d.put("sig", pr.signature());
            }
            case FileRequest r -> {
                d.put("msg_type", 2);
                d.put("cid", HexFormat.of().parseHex(r.cid()));
                d.put("piece", r.piece());
            }
            case FileData f -> {
                d.put("msg_type", 3);
                d.put("cid", HexFormat.of().parseHex(f.cid()));
                d.put("piece", f.piece());
                d.put("total_size", f.totalSize());
                d.put("piece_length", f.pieceLength());
            }
            case FileReject r -> {
                d.put("msg_type", 4);
                d.put("cid", HexFormat.of().parseHex(r.cid()));
                d.put("piece", r.piece());
            }
            case ChiralUnknown u -> throw new IllegalArgumentException("an unknown chiral message cannot be sent");
        }
        byte[] dict = Bencode.encode(d);
        return m instanceof FileData f ? withPiece(dict, f.data) : dict;
    }

    /**
     * Decodes a {@code chiral} payload. A description piece must lie within {@value #MAX_FILE_DESCRIPTION} bytes
     * and a data message carry exactly its piece; the piece length is 16 KiB .. 64 MiB in whole 16 KiB blocks.
     */
    public static ChiralMessage decodeChiral(byte[] payload) throws TorrentException {
        int dictEnd = valueEnd(payload, 0, payload.length);
        SortedMap<Bytes, Object> d = dict(payload, 0, dictEnd);
        if (!(d.get(MSG_TYPE) instanceof Long type)) {
            throw new TorrentException("chiral message without integer 'msg_type'");
        }
        if (type < 1 || type > 5) {
            return new ChiralUnknown(type);
        }
        if (type != 3) {
            requireNoTrailing(payload, dictEnd);
        }
        if (type == 1) {
            String id = d.get(CHIRAL_PEER_ID) instanceof Bytes b && b.length() == 64 ? ascii(b, "chiral_peer_id") : null;
            if (id == null || !PEER_ID.matcher(id).matches()) {
                throw new TorrentException("chiral_peer_id is not 64 lowercase hex digits");
            }
            int reputation = (int) requiredInt(d, REPUTATION, 0, MAX_REPUTATION_MILLI);
            String wallet = d.get(WALLET) instanceof Bytes b && b.length() <= 42 ? new String(b.toByteArray(),
                    StandardCharsets.ISO_8859_1) : null;
            if (wallet == null || !(wallet.isEmpty() || WALLET_ADDRESS.matcher(wallet).matches())) {
                throw new TorrentException("wallet_address is not 0x + 40 hex digits or empty");
            }
            Bytes nonce = null;
            if (d.containsKey(NONCE)) {
                if (!(d.get(NONCE) instanceof Bytes n) || n.length() < MIN_NONCE || n.length() > MAX_NONCE) {
                    throw new TorrentException("hello nonce is not " + MIN_NONCE + ".." + MAX_NONCE + " bytes");
                }
                nonce = n;
            }
            return new ChiralHello(id, reputation, wallet, nonce);
        }
        if (type == 5) {
            if (!(d.get(SIG) instanceof Bytes sig) || sig.length() != SIGNATURE) {
                throw new TorrentException("chiral proof without a " + SIGNATURE + "-byte 'sig'");
            }
            return new ChiralProof(sig);
        }
        if (!(d.get(CID) instanceof Bytes c) || c.length() != 32) {
            throw new TorrentException("chiral message without a 32-byte 'cid'");
        }
        String cid = HexFormat.of().formatHex(c.toByteArray());
        if (type != 3) {
            int piece = (int) requiredInt(d, PIECE, 0, metadataPieces(MAX_FILE_DESCRIPTION) - 1);
            return type == 2 ? new FileRequest(cid, piece) : new FileReject(cid, piece);
        }
        long total = requiredInt(d, TOTAL_SIZE, 1, MAX_FILE_DESCRIPTION);
        int piece = (int) requiredInt(d, PIECE, 0, metadataPieces(total) - 1);
        long pieceLength = requiredInt(d, PIECE_LENGTH, PeerWire.BLOCK, MAX_PIECE_LENGTH);
        if (pieceLength % PeerWire.BLOCK != 0) {
            throw new TorrentException("piece_length " + pieceLength + " is not a multiple of 16 KiB");
        }
        return new FileData(cid, piece, (int) total, (int) pieceLength, pieceBytes(payload, dictEnd, total, piece, "description"));
    }

    private static final Bytes NAME = Bytes.of("name");
    private static final Bytes SIZE = Bytes.of("size");
    private static final Bytes CHUNK_SIZE = Bytes.of("chunk_size");
    private static final Bytes HASHES = Bytes.of("hashes");
    private static final Bytes MERKLE_ROOT = Bytes.of("merkle_root");
    private static final Bytes MIME = Bytes.of("mime");

    /**
     * The description of a stored file that {@link FileData} carries: a bencoded dictionary of name, size,
     * chunk size, the chunks' SHA-256s concatenated (32 bytes each), the Merkle root (32 bytes) and MIME type.
     */
    public static byte[] encodeFileDescription(io.chiral.api.FileMetadata m) {
        byte[] hashes = new byte[32 * m.chunkCount()];
        for (int i = 0; i < m.chunkCount(); i++) {
            System.arraycopy(HexFormat.of().parseHex(m.chunkHashes().get(i)), 0, hashes, 32 * i, 32);
        }
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("name", m.name());
        d.put("size", m.size());
        d.put("chunk_size", m.chunkSize());
        d.put("hashes", hashes);
        d.put("merkle_root", HexFormat.of().parseHex(m.merkleRoot()));
        d.put("mime", m.mimeType());
        return Bencode.encode(d);
    }

    /**
     * Decodes a file description sent for {@code cid}. Its consistency (chunk count against size, Merkle root
     * against the hashes) is checked by whoever uses it; here only its form and bounds.
     */
    public static io.chiral.api.FileMetadata decodeFileDescription(byte[] bytes, String cid) throws TorrentException {
        if (bytes.length > MAX_FILE_DESCRIPTION) {
            throw new TorrentException("file description of " + bytes.length + " bytes is too large");
        }
        Object root;
        try {
            root = Bencode.decode(bytes, new Bencode.Limits(MAX_FILE_DESCRIPTION, 4, 64));
        } catch (BencodeException e) {
            throw new TorrentException("invalid file description: " + e.getMessage(), e);
        }
        if (!(root instanceof SortedMap<?, ?> raw)) {
            throw new TorrentException("file description is not a dictionary");
        }
        @SuppressWarnings("unchecked")
        SortedMap<Bytes, Object> d = (SortedMap<Bytes, Object>) raw;
        long size = requiredInt(d, SIZE, 0, Long.MAX_VALUE);
        int chunkSize = (int) requiredInt(d, CHUNK_SIZE, 1, io.chiral.api.FileMetadata.MAX_CHUNK_SIZE);
        if (!(d.get(HASHES) instanceof Bytes h) || h.length() % 32 != 0) {
            throw new TorrentException("file description without 'hashes' in 32-byte units");
        }
        if (!(d.get(MERKLE_ROOT) instanceof Bytes root32) || root32.length() != 32) {
            throw new TorrentException("file description without a 32-byte 'merkle_root'");
        }
        String name = d.get(NAME) instanceof Bytes n && n.length() <= 1024 ? n.utf8() : "";
        String mime = d.get(MIME) instanceof Bytes t && t.length() <= 255 ? t.utf8() : "";
        byte[] all = h.toByteArray();
        List<String> hashes = new ArrayList<>(all.length / 32);
        for (int i = 0; i < all.length; i += 32) {
            hashes.add(HexFormat.of().formatHex(all, i, i + 32));
        }
        try {
            return new io.chiral.api.FileMetadata(io.chiral.api.FileId.parse(cid), name, size, chunkSize, hashes,
                    HexFormat.of().formatHex(root32.toByteArray()), mime);
        } catch (IllegalArgumentException e) {
            throw new TorrentException("inconsistent file description: " + e.getMessage());
        }
    }

    // ---- BEP 11 ut_pex ----

    /** Name of the peer-exchange extension. */
    public static final String UT_PEX = "ut_pex";
    /** Most peers taken from one PEX message (BEP 11 asks senders for at most 50 added per message). */
    public static final int MAX_PEX_PEERS = 200;
    private static final Bytes ADDED = Bytes.of("added");
    private static final Bytes ADDED_F = Bytes.of("added.f");
    private static final Bytes DROPPED = Bytes.of("dropped");

    /** A PEX message: IPv4 peers added (with their BEP 11 flag bytes, 0 when absent) and dropped since the last one. */
    public record Pex(List<java.net.InetSocketAddress> added, byte[] addedFlags, List<java.net.InetSocketAddress> dropped) {
        public Pex {
            added = List.copyOf(added);
            dropped = List.copyOf(dropped);
            addedFlags = addedFlags == null ? new byte[added.size()] : addedFlags.clone();
            if (addedFlags.length != added.size() || added.size() > MAX_PEX_PEERS || dropped.size() > MAX_PEX_PEERS) {
                throw new IllegalArgumentException("PEX message out of bounds");
            }
        }

        @Override
        public byte[] addedFlags() {
            return addedFlags.clone();
        }
    }

    public static byte[] encodePex(Pex m) {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("added", compact(m.added()));
        d.put("added.f", m.addedFlags());
        d.put("dropped", compact(m.dropped()));
        return Bencode.encode(d);
    }

    public static Pex decodePex(byte[] payload) throws TorrentException {
        SortedMap<Bytes, Object> d = dict(payload, 0, payload.length);
        List<java.net.InetSocketAddress> added = peers(d.get(ADDED), "added");
        List<java.net.InetSocketAddress> dropped = peers(d.get(DROPPED), "dropped");
        byte[] flags = new byte[added.size()];
        if (d.get(ADDED_F) instanceof Bytes f) {
            byte[] raw = f.toByteArray();
            System.arraycopy(raw, 0, flags, 0, Math.min(raw.length, flags.length));
        }
        return new Pex(added, flags, dropped);
    }

    private static byte[] compact(List<java.net.InetSocketAddress> peers) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(peers.size() * 6);
        for (java.net.InetSocketAddress a : peers) {
            byte[] ip = a.getAddress() == null ? null : a.getAddress().getAddress();
            if (ip != null && ip.length == 4) {
                out.writeBytes(ip);
                out.write(a.getPort() >> 8);
                out.write(a.getPort() & 0xff);
            }
        }
        return out.toByteArray();
    }

    private static List<java.net.InetSocketAddress> peers(Object o, String what) throws TorrentException {
        if (o == null) {
            return List.of();
        }
        if (!(o instanceof Bytes b) || b.length() % 6 != 0) {
            throw new TorrentException("PEX '" + what + "' is not a string of 6-byte IPv4 peers");
        }
        byte[] raw = b.toByteArray();
        int n = Math.min(raw.length / 6, MAX_PEX_PEERS);
        List<java.net.InetSocketAddress> out = new java.util.ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int port = ((raw[i * 6 + 4] & 0xff) << 8) | (raw[i * 6 + 5] & 0xff);
            if (port == 0) {
                continue;
            }
            try {
                out.add(new java.net.InetSocketAddress(java.net.InetAddress.getByAddress(
                        java.util.Arrays.copyOfRange(raw, i * 6, i * 6 + 4)), port));
            } catch (java.net.UnknownHostException e) {
                throw new IllegalStateException(e); // four bytes are always an address
            }
        }
        return out;
    }

    // ---- helpers ----

    @SuppressWarnings("unchecked")
    private static SortedMap<Bytes, Object> dict(byte[] in, int offset, int length) throws TorrentException {
        Object root;
        try {
            root = Bencode.decode(in, offset, length, Bencode.Limits.NETWORK);
        } catch (BencodeException e) {
            throw new TorrentException("invalid bencode: " + e.getMessage(), e);
        }
        if (!(root instanceof SortedMap<?, ?> d)) {
            throw new TorrentException("extension message is not a dictionary");
        }
        return (SortedMap<Bytes, Object>) d;
    }

    private static long requiredInt(SortedMap<Bytes, Object> d, Bytes key, long min, long max)
            throws TorrentException {
        if (d.get(key) instanceof Long v && v >= min && v <= max) {
            return v;
        }
        throw new TorrentException("'" + key + "' missing or not an integer in " + min + ".." + max);
    }

    private static long optionalInt(SortedMap<Bytes, Object> d, Bytes key, long min, long max, long absent)
            throws TorrentException {
        return d.containsKey(key) ? requiredInt(d, key, min, max) : absent;
    }
}
