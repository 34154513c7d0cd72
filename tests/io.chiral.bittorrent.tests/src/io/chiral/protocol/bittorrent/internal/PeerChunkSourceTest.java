package io.chiral.protocol.bittorrent.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

import org.junit.jupiter.api.Test;

import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;

/**
 * {@link PeerChunkSource} against a scripted remote end on an embedded channel: what it asks for (description
 * first, then 16 KiB blocks that never cross a piece), how it puts a chunk together from blocks, how a choke makes
 * it ask again, and how a peer that breaks the protocol ends the source with a reason instead of a hang.
 */
class PeerChunkSourceTest {
    private static final String CID = "c1".repeat(32);
    private static final byte[] INFO_HASH = "twenty-byte-infohash".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    private static final int PIECE_LENGTH = 32 * 1024;
    private static final int REMOTE_CHIRAL_ID = 5;
    private static final PeerWire.Handshake REMOTE = PeerWire.Handshake.of(INFO_HASH, new byte[20], true, false, false);

    /** 300,000 bytes in chunks of 256 KiB: chunk 1 is 37,856 bytes, pieces 8 and 9 of 32 KiB each. */
    private final byte[] content = new byte[300_000];
    private final FileMetadata file;

    PeerChunkSourceTest() {
        new Random(11).nextBytes(content);
        file = new FileMetadata(FileId.parse(CID), "f.bin", content.length, 256 * 1024,
                List.of("aa".repeat(32), "bb".repeat(32)), "cc".repeat(32), null);
    }

    /** The source on an embedded channel, active, with the remote handshake and extended handshake delivered. */
    private static final class Harness {
        final EmbeddedChannel ch = new EmbeddedChannel();
        final PeerChunkSource source;
        final PeerWire.Decoder decoder;
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        int read;

        Harness(FileMetadata file, boolean chiral) {
            this(file, chiral, "0d".repeat(32), null);
        }

        Harness(FileMetadata file, boolean chiral, String nodeId, java.util.function.Function<byte[], byte[]> signer) {
            source = new PeerChunkSource(ch.eventLoop(), PeerInfo.of("bittorrent", "127.0.0.1:6881"), CID, file,
                    BitTorrentProtocol.newPeerId(new java.util.Random()), new Extension.ChiralHello(nodeId, 500, ""), signer, "test");
            source.infoHash(INFO_HASH);
            ch.pipeline().addLast(new PeerWireCodec(PeerWire.Limits.DEFAULT, source.localHandshake()), source);
            ch.pipeline().fireChannelActive();
            decoder = PeerWire.Decoder.negotiated(PeerWire.Limits.DEFAULT, REMOTE, source.localHandshake());
            deliver(PeerWire.encodeHandshake(REMOTE));
            deliver(new PeerWire.Extended(0, Extension.encodeHandshake(new Extension.Handshake(
                    chiral ? Map.of(Extension.CHIRAL, REMOTE_CHIRAL_ID) : Map.of(Extension.UT_METADATA, 2),
                    "peer", 0, 500, -1))));
        }

        void deliver(byte[] bytes) {
            assertTrue(ch.isOpen(), "closed: " + source.closeReason());
            ch.writeInbound(Unpooled.wrappedBuffer(bytes));
            ch.runPendingTasks();
        }

        void deliver(PeerWire.Message m) {
            deliver(PeerWire.encode(m));
        }

        void chiral(Extension.ChiralMessage m) {
            deliver(new PeerWire.Extended(Torrent.EXT_CHIRAL, Extension.encodeChiral(m)));
        }

        /** Messages the source sent since the last call (its handshake is checked and skipped). */
        List<PeerWire.Message> sent() throws TorrentException {
            ch.runPendingTasks();
            for (ByteBuf b; (b = ch.readOutbound()) != null;) {
                byte[] a = new byte[b.readableBytes()];
                b.readBytes(a);
                b.release();
                out.writeBytes(a);
            }
            ByteBuffer all = ByteBuffer.wrap(out.toByteArray());
            if (read == 0) {
                assertEquals(REMOTE.infoHash().length, PeerWire.decodeHandshake(all).infoHash().length);
                assertArrayEquals(INFO_HASH, PeerWire.decodeHandshake(ByteBuffer.wrap(out.toByteArray())).infoHash());
                read = PeerWire.HANDSHAKE_LENGTH;
            }
            all.position(read);
            List<PeerWire.Message> msgs = new ArrayList<>();
            for (PeerWire.Message m; (m = decoder.next(all)) != null;) {
                msgs.add(m);
            }
            read = all.position();
            return msgs;
        }
    }

    private static <T> T chiralOf(PeerWire.Message m, Class<T> type) throws TorrentException {
        PeerWire.Extended e = assertInstanceOf(PeerWire.Extended.class, m);
        assertEquals(REMOTE_CHIRAL_ID, e.extId());
        return type.cast(Extension.decodeChiral(e.payload()));
    }

    private PeerWire.Piece block(int piece, int begin, int length) {
        int from = piece * PIECE_LENGTH + begin;
        return new PeerWire.Piece(piece, begin, Arrays.copyOfRange(content, from, from + length));
    }

    @Test
    void provesItsIdentityOverTheProvidersNonce() throws Exception {
        byte[] seed = new byte[32];
        new Random(4).nextBytes(seed);
        byte[] pk = new byte[32];
        org.bouncycastle.math.ec.rfc8032.Ed25519.generatePublicKey(seed, 0, pk, 0);
        String id = java.util.HexFormat.of().formatHex(pk);
        Harness h = new Harness(file, true, id, m -> {
            byte[] sig = new byte[64];
            org.bouncycastle.math.ec.rfc8032.Ed25519.sign(seed, 0, m, 0, m.length, sig, 0);
            return sig;
        });
        h.sent();
        byte[] nonce = new byte[32];
        new Random(8).nextBytes(nonce);
        h.chiral(new Extension.ChiralHello("0e".repeat(32), 500, "").withNonce(nonce));
        List<PeerWire.Message> answer = h.sent();
        assertEquals(1, answer.size(), answer.toString());
        Extension.ChiralProof proof = chiralOf(answer.get(0), Extension.ChiralProof.class);
        assertTrue(ChiralAuth.verify(id, INFO_HASH, nonce, proof.signature().toByteArray()), "the proof verifies");
        // once per connection; a hello without a nonce asks for none
        h.chiral(new Extension.ChiralHello("0e".repeat(32), 500, "").withNonce(nonce));
        assertTrue(h.sent().isEmpty(), "a second proof was sent");
        Harness quiet = new Harness(file, true, id, m -> new byte[64]);
        quiet.sent();
        quiet.chiral(new Extension.ChiralHello("0e".repeat(32), 500, ""));
        assertTrue(quiet.sent().isEmpty(), "a proof without a nonce to sign");
    }

    @Test
    void asksForTheDescriptionThenPutsAChunkTogetherFromBlocks() throws Exception {
        Harness h = new Harness(file, true);
        CompletableFuture<ByteBuffer> chunk = h.source.fetchChunk(1).toCompletableFuture();
        List<PeerWire.Message> first = h.sent();
        assertInstanceOf(PeerWire.Interested.class, first.get(1));
        assertInstanceOf(Extension.ChiralHello.class, chiralOf(first.get(2), Extension.ChiralMessage.class));
        assertEquals(new Extension.FileRequest(CID, 0), chiralOf(first.get(3), Extension.ChiralMessage.class));
        assertEquals(4, first.size(), first.toString());

        h.chiral(new Extension.FileData(CID, 0, 10, PIECE_LENGTH, new byte[10]));
        assertTrue(h.sent().isEmpty(), "nothing is asked for while choked");
        h.deliver(new PeerWire.Unchoke());
        List<PeerWire.Message> requests = h.sent();
        assertEquals(List.of(new PeerWire.Request(8, 0, 16384), new PeerWire.Request(8, 16384, 16384),
                new PeerWire.Request(9, 0, 300_000 - 262_144 - 32_768)), requests);

        // a choke drops the requests: after the next unchoke they are asked again
        h.deliver(block(8, 0, 16384));
        h.deliver(new PeerWire.Choke());
        h.deliver(block(8, 16384, 16384)); // late: arrived after the choke, not asked for any more
        h.deliver(new PeerWire.Unchoke());
        assertEquals(requests.subList(1, 3), h.sent(), "the block that arrived before the choke is not asked again");
        assertFalse(chunk.isDone());
        h.deliver(block(8, 16384, 16384));
        h.deliver(block(9, 0, 300_000 - 262_144 - 32_768));
        ByteBuffer got = chunk.get();
        assertEquals(0, got.position());
        byte[] bytes = new byte[got.remaining()];
        got.get(bytes);
        assertArrayEquals(Arrays.copyOfRange(content, 262_144, 300_000), bytes);
        h.source.close();
        h.ch.runPendingTasks();
        assertFalse(h.ch.isOpen());
    }

    @Test
    void fetchesADescriptionLongerThanOnePiece() throws Exception {
        List<String> hashes = new ArrayList<>();
        for (int i = 0; i < 600; i++) {
            hashes.add(String.format("%064x", i));
        }
        FileMetadata big = new FileMetadata(FileId.parse(CID), "big.iso", 600L * 262_144, 262_144, hashes,
                "dd".repeat(32), "application/x-iso9660-image");
        byte[] description = Extension.encodeFileDescription(big);
        assertTrue(description.length > Extension.METADATA_PIECE);
        Harness h = new Harness(null, true);
        h.sent();
        for (int piece = 0; piece < 2; piece++) {
            int from = piece * Extension.METADATA_PIECE;
            h.chiral(new Extension.FileData(CID, piece, description.length, 1 << 20,
                    Arrays.copyOfRange(description, from, Math.min(description.length, from + Extension.METADATA_PIECE))));
            if (piece == 0) {
                assertEquals(List.of(new Extension.FileRequest(CID, 1)),
                        h.sent().stream().map(m -> chiralOrNull(m)).toList());
            }
        }
        assertEquals(big, h.source.description().toCompletableFuture().get());
    }

    private static Extension.ChiralMessage chiralOrNull(PeerWire.Message m) {
        try {
            return chiralOf(m, Extension.ChiralMessage.class);
        } catch (TorrentException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void aPeerThatBreaksTheProtocolEndsTheSourceWithAReason() throws Exception {
        assertFails(new Harness(file, false), h -> { }, "not a Chiral node");
        assertFails(new Harness(file, true), h -> h.chiral(new Extension.FileReject(CID, 0)), "does not serve");
        assertFails(new Harness(file, true), h -> h.chiral(new Extension.FileData("ee".repeat(32), 0, 4, PIECE_LENGTH,
                new byte[4])), "another file");
        assertFails(new Harness(file, true), h -> h.deliver(block(0, 0, 16384)), "never asked for");
        assertFails(new Harness(file, true), h -> {
            h.chiral(new Extension.FileData(CID, 0, 4, PIECE_LENGTH, new byte[4]));
            h.deliver(new PeerWire.Unchoke());
            for (int i = 0; i <= PeerChunkSource.MAX_UNEXPECTED_BLOCKS; i++) {
                h.deliver(block(4, 0, 16384)); // chunk 0 was never asked for
            }
        }, "not asked for");
        assertFails(new Harness(file, true), h -> h.deliver(ByteBuffer.allocate(8).putInt(1 << 30).putInt(0).array()),
                "protocol error");
        assertFails(new Harness(file, true), h -> h.deliver(new PeerWire.Extended(Torrent.EXT_CHIRAL,
                "d8:msg_typei3e3:cid2:xxe".getBytes())), "protocol error");
        // another torrent's handshake
        EmbeddedChannel ch = new EmbeddedChannel();
        PeerChunkSource s = new PeerChunkSource(ch.eventLoop(), PeerInfo.of("bittorrent", "127.0.0.1:1"), CID, file,
                BitTorrentProtocol.newPeerId(new java.util.Random()), null, null, "test");
        s.infoHash(INFO_HASH);
        ch.pipeline().addLast(new PeerWireCodec(PeerWire.Limits.DEFAULT, s.localHandshake()), s);
        ch.pipeline().fireChannelActive();
        CompletableFuture<ByteBuffer> f = s.fetchChunk(0).toCompletableFuture();
        ch.writeInbound(Unpooled.wrappedBuffer(PeerWire.encodeHandshake(PeerWire.Handshake.of(new byte[20], new byte[20],
                true, false, false))));
        ch.runPendingTasks();
        ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class, f::get);
        assertTrue(e.getCause().getMessage().contains("another info-hash"), e.getCause().getMessage());
        assertFalse(ch.isOpen());
    }

    private interface Script {
        void run(Harness h) throws Exception;
    }

    private void assertFails(Harness h, Script script, String reason) throws Exception {
        CompletableFuture<ByteBuffer> f = h.source.fetchChunk(1).toCompletableFuture();
        h.ch.runPendingTasks();
        script.run(h);
        h.ch.runPendingTasks();
        ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class, f::get);
        assertTrue(e.getCause().getMessage().contains(reason), reason + " <> " + e.getCause().getMessage());
        assertTrue(h.source.isClosed());
        assertFalse(h.ch.isOpen(), "the connection is closed");
        // later requests fail at once rather than wait
        assertTrue(h.source.fetchChunk(0).toCompletableFuture().isCompletedExceptionally());
    }
}
