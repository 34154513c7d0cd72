package io.chiral.protocol.bittorrent.internal;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageCodec;
import io.netty.handler.codec.DecoderException;

/**
 * Netty codec of one peer-wire connection: inbound, first the remote 68-byte {@link PeerWire.Handshake} (emitted as
 * such), then {@link PeerWire.Message}s through a {@link PeerWire.Decoder} negotiated from the two handshakes;
 * outbound, {@link PeerWire.Handshake}s and {@link PeerWire.Message}s.
 *
 * <p>Bounded: the decoder rejects any length prefix above {@code maxMessage} as soon as it is seen, so no more than
 * {@code 4 + maxMessage} bytes are ever waited for; a cumulation beyond that is a bug and is refused too. Any
 * {@link TorrentException} closes the channel (after firing it down the pipeline as the cause of a
 * {@link DecoderException}) and every later inbound byte is discarded. Not sharable: one instance per channel.
 */
public final class PeerWireCodec extends ByteToMessageCodec<Object> {
    private PeerWire.Limits limits;
    private PeerWire.Handshake local;
    private PeerWire.Handshake remote;
    private PeerWire.Decoder decoder;
    private boolean failed;

    /** A codec for a connection on which we send {@code local} and decode with {@code limits}. */
    public PeerWireCodec(PeerWire.Limits limits, PeerWire.Handshake local) {
        this.limits = limits;
        this.local = local;
    }

    /**
     * A codec for an accepted connection: the torrent is known only from the remote handshake, so after emitting
     * it the codec decodes nothing until the handler calls {@link #accept} (from within its {@code channelRead}).
     */
    public PeerWireCodec() {
        this.limits = PeerWire.Limits.DEFAULT;
    }

    /** Sets what we answer an inbound handshake with and the limits of the torrent it asked for. */
    public void accept(PeerWire.Handshake ours, PeerWire.Limits torrentLimits) {
        if (remote == null || decoder != null) {
            throw new IllegalStateException("accept() belongs right after an inbound handshake");
        }
        this.local = ours;
        this.limits = torrentLimits;
        this.decoder = PeerWire.Decoder.negotiated(torrentLimits, ours, remote);
    }

    /** Tightens the bitfield and index checks once a magnet transfer has its metadata. */
    public void pieceCount(int pieces) {
        limits = limits.withPieceCount(pieces);
        if (decoder != null && remote != null && local != null) {
            decoder = PeerWire.Decoder.negotiated(limits, local, remote);
        }
    }

    @Override
    public boolean acceptOutboundMessage(Object msg) {
        return msg instanceof PeerWire.Handshake || msg instanceof PeerWire.Message;
    }

    @Override
    protected void encode(ChannelHandlerContext ctx, Object msg, ByteBuf out) {
        byte[] bytes = msg instanceof PeerWire.Handshake h ? PeerWire.encodeHandshake(h)
                : PeerWire.encode((PeerWire.Message) msg);
        out.writeBytes(bytes);
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (failed) {
            in.skipBytes(in.readableBytes());
            return;
        }
        ByteBuffer view = in.nioBuffer(in.readerIndex(), in.readableBytes()).order(ByteOrder.BIG_ENDIAN);
        int start = view.position();
        try {
            if (decoder == null) {
                if (remote != null) {
                    if (in.readableBytes() > 4 + limits.maxMessage()) {
                        throw new TorrentException("peer sent " + in.readableBytes() + " bytes before we answered its handshake");
                    }
                    return; // inbound: waiting for accept()
                }
                remote = PeerWire.decodeHandshake(view);
                if (remote != null) {
                    in.skipBytes(PeerWire.HANDSHAKE_LENGTH);
                    if (local != null) {
                        decoder = PeerWire.Decoder.negotiated(limits, local, remote);
                    }
                    out.add(remote);
                }
                return;
            }
            PeerWire.Message m = decoder.next(view);
            if (m != null) {
                in.skipBytes(view.position() - start);
                out.add(m);
            } else if (in.readableBytes() - 4 > limits.maxMessage()) {
                throw new TorrentException("more than " + (4 + limits.maxMessage()) + " bytes buffered");
            }
        } catch (TorrentException e) {
            failed = true;
            in.skipBytes(in.readableBytes());
            ctx.fireExceptionCaught(new DecoderException(e));
            ctx.close();
        }
    }
}
