package io.chiral.fuzz;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.protocol.bittorrent.internal.Extension;
import io.chiral.protocol.bittorrent.internal.TorrentException;

/**
 * BEP 10 extension payloads straight into their decoders: the extended handshake, BEP 9 ut_metadata (with the
 * metadata size unknown or announced), the {@code chiral} messages and the Chiral file description they carry.
 * Only {@link TorrentException} may escape; accepted values lie within the documented bounds.
 *
 * <p>Input: byte 0 selects the decoder (mod 5: handshake, metadata with unknown size, metadata with the size in
 * bytes 1-3, chiral message, file description); the rest is the payload.
 */
class ExtensionFuzzTest {
    private static final String CID = "ab".repeat(32);

    static Stream<Arguments> seeds() {
        List<byte[]> out = new ArrayList<>();
        out.add(with(0, Extension.encodeHandshake(new Extension.Handshake(Map.of("ut_metadata", 3, "chiral", 7, "ut_pex", 0),
                "Chiral 0.1", 6881, 250, 20_000))));
        out.add(with(0, "d1:md11:ut_metadatai1ee4:reqqi500e1:v13:libtorrent 2.0e".getBytes()));
        out.add(with(1, Extension.encodeMetadata(new Extension.MetadataRequest(2))));
        out.add(with(1, Extension.encodeMetadata(new Extension.MetadataReject(0))));
        out.add(with(1, "d8:msg_typei7ee".getBytes()));
        byte[] data = Extension.encodeMetadata(new Extension.MetadataData(0, 100, new byte[100]));
        out.add(with(1, data));
        out.add(with(2, concat(new byte[] {0, 0, 100}, data)));
        out.add(with(3, Extension.encodeChiral(new Extension.ChiralHello("0f".repeat(32), 1000, ""))));
        out.add(with(3, Extension.encodeChiral(new Extension.ChiralHello("a1".repeat(32), 0, "0x" + "aB".repeat(20)))));
        out.add(with(3, Extension.encodeChiral(new Extension.ChiralHello("0f".repeat(32), 500, "").withNonce(new byte[32]))));
        out.add(with(3, Extension.encodeChiral(new Extension.ChiralProof(io.chiral.bencode.Bytes.of(new byte[64])))));
        out.add(with(3, Extension.encodeChiral(new Extension.FileRequest(CID, 3))));
        out.add(with(3, Extension.encodeChiral(new Extension.FileReject(CID, 0))));
        out.add(with(3, Extension.encodeChiral(new Extension.FileData(CID, 0, 200, 262_144, new byte[200]))));
        out.add(with(3, "d8:msg_typei9ee".getBytes()));
        FileMetadata file = new FileMetadata(FileId.parse(CID), "a b.bin", 300_000, 262_144,
                List.of("11".repeat(32), "22".repeat(32)), "33".repeat(32), "application/octet-stream");
        out.add(with(4, Extension.encodeFileDescription(file)));
        return out.stream().map(b -> Arguments.of((Object) b));
    }

    private static byte[] with(int selector, byte[] payload) {
        return concat(new byte[] {(byte) selector}, payload);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @MethodSource("seeds")
    @FuzzTest
    void decode(byte[] data) throws Exception {
        if (data.length == 0) {
            return;
        }
        byte[] payload = Arrays.copyOfRange(data, 1, data.length);
        try {
            switch ((data[0] & 0xff) % 5) {
                case 0 -> {
                    Extension.Handshake h = NoLookups.during(() -> Extension.decodeHandshake(payload));
                    Check.that(h.extensions().size() <= Extension.MAX_EXTENSIONS, "extension count");
                    Check.that(h.extensions().values().stream().allMatch(id -> id >= 0 && id <= 255), "extension ids");
                    Check.that(h.extensions().values().stream().filter(id -> id != 0).distinct().count()
                            == h.extensions().values().stream().filter(id -> id != 0).count(), "distinct ids");
                    Check.that(h.client() == null || h.client().length() <= Extension.MAX_CLIENT, "client name");
                    Extension.decodeHandshake(Extension.encodeHandshake(h));
                }
                case 1 -> metadata(payload, -1);
                case 2 -> {
                    if (payload.length < 3) {
                        return;
                    }
                    long size = (payload[0] & 0xff) << 16 | (payload[1] & 0xff) << 8 | (payload[2] & 0xff);
                    metadata(Arrays.copyOfRange(payload, 3, payload.length), size);
                }
                case 3 -> chiral(payload);
                default -> {
                    FileMetadata m = NoLookups.during(() -> Extension.decodeFileDescription(payload, CID));
                    Check.that(m.id().hex().equals(CID), "description names the file asked for");
                    Check.that(m.chunkCount() <= Extension.MAX_FILE_DESCRIPTION / 32, "chunk count bound");
                    Check.that(Extension.decodeFileDescription(Extension.encodeFileDescription(m), CID).equals(m),
                            "description round trip");
                }
            }
        } catch (TorrentException e) {
            // rejected
        }
    }

    private static void chiral(byte[] payload) throws Exception {
        Extension.ChiralMessage m = NoLookups.during(() -> Extension.decodeChiral(payload));
        int maxPieces = Extension.metadataPieces(Extension.MAX_FILE_DESCRIPTION);
        switch (m) {
            case Extension.ChiralHello h -> {
                Check.that(h.reputationMilli() >= 0 && h.reputationMilli() <= 1000, "reputation");
                Check.that(h.nonce() == null || h.nonce().length() >= Extension.MIN_NONCE
                        && h.nonce().length() <= Extension.MAX_NONCE, "nonce bound");
            }
            case Extension.FileRequest r -> Check.that(r.piece() >= 0 && r.piece() < maxPieces, "request piece");
            case Extension.FileReject r -> Check.that(r.piece() >= 0 && r.piece() < maxPieces, "reject piece");
            case Extension.FileData d -> {
                Check.that(d.totalSize() > 0 && d.totalSize() <= Extension.MAX_FILE_DESCRIPTION, "total size bound");
                long expected = Math.min(Extension.METADATA_PIECE, d.totalSize() - (long) d.piece() * Extension.METADATA_PIECE);
                Check.that(d.piece() >= 0 && d.data().length == expected && expected > 0, "data piece");
                Check.that(d.pieceLength() >= 16384 && d.pieceLength() <= Extension.MAX_PIECE_LENGTH
                        && d.pieceLength() % 16384 == 0, "piece length");
            }
            case Extension.ChiralProof p -> Check.that(p.signature().length() == Extension.SIGNATURE, "proof signature");
            case Extension.ChiralUnknown u -> Check.that(u.msgType() < 1 || u.msgType() > 5, "unknown type");
        }
        if (!(m instanceof Extension.ChiralUnknown)) {
            Check.that(m.equals(Extension.decodeChiral(Extension.encodeChiral(m))), "chiral round trip");
        }
    }

    private static void metadata(byte[] payload, long size) throws Exception {
        Extension.MetadataMessage m = NoLookups.during(() -> Extension.decodeMetadata(payload, size));
        long pieces = Extension.metadataPieces(size == -1 ? Extension.MAX_METADATA_SIZE : size);
        switch (m) {
            case Extension.MetadataRequest r -> Check.that(r.piece() >= 0 && r.piece() < pieces, "request piece");
            case Extension.MetadataReject r -> Check.that(r.piece() >= 0 && r.piece() < pieces, "reject piece");
            case Extension.MetadataData d -> {
                Check.that(size == -1 || d.totalSize() == size, "total size");
                Check.that(d.totalSize() > 0 && d.totalSize() <= Extension.MAX_METADATA_SIZE, "total size bound");
                long expected = Math.min(Extension.METADATA_PIECE, d.totalSize() - (long) d.piece() * Extension.METADATA_PIECE);
                Check.that(d.piece() >= 0 && d.length() == expected && expected > 0, "data piece");
                Check.that(Arrays.equals(Extension.decodeMetadata(Extension.encodeMetadata(d), size) instanceof Extension.MetadataData
                        again ? again.data() : null, d.data()), "data round trip");
            }
            case Extension.MetadataUnknown u -> Check.that(u.msgType() < 0 || u.msgType() > 2, "unknown type");
        }
    }
}
