package io.chiral.fuzz;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import com.code_intelligence.jazzer.junit.FuzzTest;

import io.chiral.protocol.bittorrent.internal.Extension;
import io.chiral.protocol.bittorrent.internal.PeerWire;
import io.chiral.protocol.bittorrent.internal.TorrentException;

/**
 * The peer wire as a receiving peer sees it: an optional 68-byte handshake, then length-prefixed messages through
 * {@link PeerWire.Decoder}, each BEP 10 extended message handed to the {@link Extension} decoders. Only
 * {@link TorrentException} may escape; a rejected message consumes nothing; an accepted one re-encodes to exactly
 * the bytes it was decoded from; delivering the stream in two parts decodes the same messages.
 *
 * <p>Input: byte 0 holds flags: bit 0 Fast (BEP 6) negotiated, bit 1 extension protocol (BEP 10), bit 2 the piece
 * count is known (then bytes 1-2 are the count - 1), bit 3 the stream starts with the remote handshake (and its
 * reserved bits decide what is negotiated), bit 4 custom limits (then 8 more bytes: maxMessage and maxBlock, made
 * valid for the {@link PeerWire.Limits} constructor). Then the stream; its last byte also picks the split point.
 */
class PeerWireFuzzTest {
    private static final int FAST = 1;
    private static final int EXT = 2;
    private static final int PIECES = 4;
    private static final int HANDSHAKE = 8;
    private static final int LIMITS = 16;

    static Stream<Arguments> seeds() {
        List<byte[]> out = new ArrayList<>();
        byte[] hash = new byte[20];
        Arrays.fill(hash, (byte) 0xab);
        byte[] id = "-CH0001-abcdefghijkl".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        byte[] handshake = PeerWire.encodeHandshake(PeerWire.Handshake.of(hash, id, true, true, true));
        byte[] ext = Extension.encodeHandshake(new Extension.Handshake(
                java.util.Map.of("ut_metadata", 3, "chiral", 7), "Chiral 0.1", 6881, 250, 20_000));
        byte[] meta = Extension.encodeMetadata(new Extension.MetadataData(1, 20_000, new byte[20_000 - 16_384]));
        byte[] chiral = Extension.encodeChiral(new Extension.ChiralHello("ab".repeat(32), 875,
                "0x" + "12".repeat(20)));
        List<PeerWire.Message> all = List.of(new PeerWire.Extended(0, ext), new PeerWire.Bitfield(new byte[] {(byte) 0xf0}),
                new PeerWire.KeepAlive(), new PeerWire.Choke(), new PeerWire.Unchoke(), new PeerWire.Interested(),
                new PeerWire.NotInterested(), new PeerWire.Have(3), new PeerWire.Request(1, 16_384, 16_384),
                new PeerWire.Piece(1, 0, new byte[] {1, 2, 3}), new PeerWire.Cancel(1, 16_384, 16_384),
                new PeerWire.Port(6881), new PeerWire.Suggest(2), new PeerWire.Reject(1, 0, 16_384),
                new PeerWire.AllowedFast(0), new PeerWire.Extended(3, meta),
                new PeerWire.Extended(3, Extension.encodeMetadata(new Extension.MetadataRequest(0))),
                new PeerWire.Extended(7, chiral));
        ByteArrayOutputStream stream = new ByteArrayOutputStream();
        for (PeerWire.Message m : all) {
            stream.writeBytes(PeerWire.encode(m));
        }
        stream.writeBytes(new byte[] {0, 0, 0, 3, 99, 1, 2}); // unknown id 99
        byte[] messages = stream.toByteArray();
        // known piece count 4 (bitfield of 1 byte), handshake first
        out.add(concat(new byte[] {FAST | EXT | PIECES | HANDSHAKE, 0, 3}, handshake, messages));
        out.add(concat(new byte[] {FAST | EXT}, messages));
        out.add(concat(new byte[] {0}, PeerWire.encode(new PeerWire.HaveAll()), PeerWire.encode(new PeerWire.Have(0))));
        out.add(concat(new byte[] {FAST | LIMITS, 0, 0, 0x40, 0, 0, 0, 0x10, 0}, PeerWire.encode(new PeerWire.HaveNone()),
                PeerWire.encode(new PeerWire.Piece(0, 0, new byte[64]))));
        return out.stream().map(b -> Arguments.of((Object) b));
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    @MethodSource("seeds")
    @FuzzTest
    void decode(byte[] data) throws Exception {
        if (data.length == 0) {
            return;
        }
        int flags = data[0] & 0xff;
        int at = 1;
        PeerWire.Limits limits = PeerWire.Limits.DEFAULT;
        if ((flags & LIMITS) != 0) {
            if (data.length < at + 8) {
                return;
            }
            ByteBuffer b = ByteBuffer.wrap(data, at, 8);
            int maxBlock = 1 + (b.getInt() & 0x7fffffff) % (1 << 24);
            long maxMessage = 9L + maxBlock + (b.getInt() & 0x7fffffff);
            limits = new PeerWire.Limits((int) Math.min(Integer.MAX_VALUE, maxMessage), maxBlock,
                    PeerWire.Limits.UNKNOWN_PIECES);
            at += 8;
        }
        if ((flags & PIECES) != 0) {
            if (data.length < at + 2) {
                return;
            }
            int pieces = 1 + ((data[at] & 0xff) << 8 | (data[at + 1] & 0xff));
            if (1L + PeerWire.bitfieldLength(pieces) > limits.maxMessage()) {
                return; // the Limits constructor refuses this combination, as documented
            }
            limits = limits.withPieceCount(pieces);
            at += 2;
        }
        byte[] stream = Arrays.copyOfRange(data, at, data.length);
        List<Object> whole = run(flags, limits, stream, stream.length);
        if (stream.length > 1) {
            int split = (stream[stream.length - 1] & 0xff) % stream.length;
            List<Object> parts = run(flags, limits, stream, split);
            Check.that(render(whole).equals(render(parts)), "the same messages whether delivered at once or in two parts");
        }
    }

    /** Decodes {@code stream}, first only its first {@code split} bytes, then all of it; returns what was seen. */
    private static List<Object> run(int flags, PeerWire.Limits limits, byte[] stream, int split) throws Exception {
        List<Object> seen = new ArrayList<>();
        ByteBuffer in = ByteBuffer.wrap(stream).limit(split);
        PeerWire.Decoder decoder = null;
        long metadataSize = -1;
        boolean more = true;
        while (true) {
            int before = in.position();
            try {
                if (decoder == null && (flags & HANDSHAKE) != 0) {
                    PeerWire.Handshake h = NoLookups.during(() -> PeerWire.decodeHandshake(in));
                    if (h != null) {
                        Check.that(in.position() - before == PeerWire.HANDSHAKE_LENGTH, "handshake length");
                        Check.that(Arrays.equals(PeerWire.encodeHandshake(h),
                                Arrays.copyOfRange(stream, before, in.position())), "handshake round trip");
                        PeerWire.Handshake local = PeerWire.Handshake.of(new byte[20], new byte[20], true, true, true);
                        decoder = PeerWire.Decoder.negotiated(limits, local, h);
                        seen.add(h);
                        continue;
                    }
                } else {
                    if (decoder == null) {
                        decoder = new PeerWire.Decoder(limits, (flags & FAST) != 0, (flags & EXT) != 0);
                    }
                    PeerWire.Decoder d = decoder;
                    PeerWire.Message m = NoLookups.during(() -> d.next(in));
                    if (m != null) {
                        int consumed = in.position() - before;
                        Check.that(consumed >= 4, "a message consumes its length prefix");
                        if (!(m instanceof PeerWire.Unknown)) {
                            Check.that(Arrays.equals(PeerWire.encode(m), Arrays.copyOfRange(stream, before, in.position())),
                                    "message round trip " + m);
                        }
                        seen.add(m);
                        if (m instanceof PeerWire.Extended e) {
                            metadataSize = extension(e, metadataSize, seen);
                        }
                        continue;
                    }
                }
            } catch (TorrentException e) {
                Check.that(in.position() == before, "a rejected message consumes nothing");
                seen.add("rejected");
                return seen;
            }
            Check.that(in.position() == before, "an incomplete message consumes nothing");
            if (!more) {
                return seen;
            }
            in.limit(stream.length);
            more = false;
        }
    }

    private static long extension(PeerWire.Extended e, long metadataSize, List<Object> seen) throws Exception {
        byte[] payload = e.payload();
        try {
            if (e.extId() == 0) {
                Extension.Handshake h = NoLookups.during(() -> Extension.decodeHandshake(payload));
                seen.add(h);
                return h.metadataSize();
            }
            try {
                seen.add(NoLookups.during(() -> Extension.decodeMetadata(payload, metadataSize)));
            } catch (TorrentException rejected) {
                seen.add("metadata rejected");
            }
            seen.add(NoLookups.during(() -> Extension.decodeChiral(payload)));
        } catch (TorrentException rejected) {
            seen.add("extension rejected");
        }
        return metadataSize;
    }

    private static List<String> render(List<Object> seen) {
        return seen.stream().map(String::valueOf).toList();
    }
}
