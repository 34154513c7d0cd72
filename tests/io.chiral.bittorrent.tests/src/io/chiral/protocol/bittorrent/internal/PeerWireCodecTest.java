package io.chiral.protocol.bittorrent.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.List;

import org.junit.jupiter.api.Test;

import io.chiral.protocol.bittorrent.internal.PeerWire.Handshake;
import io.chiral.protocol.bittorrent.internal.PeerWire.Limits;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;

/** {@link PeerWireCodec} on an embedded channel: byte-by-byte delivery, encoding, and closing on bad input. */
public class PeerWireCodecTest {
    private static final Limits LIMITS = Limits.DEFAULT.withPieceCount(100);
    private static final Handshake LOCAL = Handshake.of(new byte[20], BitTorrentProtocol.newPeerId(new java.util.Random()), true, true, false);
    private static final Handshake REMOTE = Handshake.of(new byte[20], new byte[20], true, true, false);

    @Test
    void decodesHandshakeThenMessagesDeliveredByteByByte() {
        EmbeddedChannel ch = new EmbeddedChannel(new PeerWireCodec(LIMITS, LOCAL));
        ByteArrayOutputStream wire = new ByteArrayOutputStream();
        wire.writeBytes(PeerWire.encodeHandshake(REMOTE));
        List<PeerWire.Message> sent = List.of(new PeerWire.Extended(0, new byte[] {'d', 'e'}), new PeerWire.HaveAll(),
                new PeerWire.Unchoke(), new PeerWire.Piece(3, 0, new byte[PeerWire.BLOCK]));
        sent.forEach(m -> wire.writeBytes(PeerWire.encode(m)));
        for (byte b : wire.toByteArray()) {
            ch.writeInbound(Unpooled.wrappedBuffer(new byte[] {b}));
        }
        assertEquals(REMOTE, ch.readInbound());
        for (PeerWire.Message m : sent) {
            assertEquals(m, ch.readInbound());
        }
        assertNull(ch.readInbound());
        ch.writeOutbound(LOCAL, new PeerWire.Interested());
        ByteBuf hs = ch.readOutbound();
        ByteBuf interested = ch.readOutbound();
        assertArrayEquals(PeerWire.encodeHandshake(LOCAL), bytes(hs));
        assertArrayEquals(PeerWire.encode(new PeerWire.Interested()), bytes(interested));
        ch.finishAndReleaseAll();
    }

    @Test
    void closesOnALengthAboveTheLimitBeforeItsBodyArrives() {
        EmbeddedChannel ch = new EmbeddedChannel(new PeerWireCodec(LIMITS, LOCAL));
        ch.writeInbound(Unpooled.wrappedBuffer(PeerWire.encodeHandshake(REMOTE)));
        assertInstanceOf(Handshake.class, ch.readInbound());
        DecoderException e = assertThrows(DecoderException.class, () -> ch.writeInbound(
                Unpooled.wrappedBuffer(ByteBuffer.allocate(5).putInt(LIMITS.maxMessage() + 1).put((byte) 7).flip())));
        assertInstanceOf(TorrentException.class, e.getCause());
        assertFalse(ch.isOpen());
        ch.finishAndReleaseAll();
    }

    @Test
    void closesOnANonBitTorrentHandshake() {
        EmbeddedChannel ch = new EmbeddedChannel(new PeerWireCodec(LIMITS, LOCAL));
        assertThrows(DecoderException.class, () -> ch.writeInbound(Unpooled.wrappedBuffer("GET / HTTP/1.1".getBytes())));
        assertFalse(ch.isOpen());
        ch.finishAndReleaseAll();
    }

    private static byte[] bytes(ByteBuf b) {
        byte[] out = new byte[b.readableBytes()];
        b.readBytes(out);
        b.release();
        return out;
    }
}
