package io.chiral.protocol.bittorrent.internal;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.BitSet;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.timeout.IdleState;
import io.netty.handler.timeout.IdleStateEvent;

/**
 * One peer-wire connection. Decoding and bounds are the {@link PeerWireCodec}'s; this handler keeps the
 * connection's state (choke and interest both ways, the peer's pieces, our requests in flight, its requests
 * waiting for socket buffer space, rates) and hands every decision to its {@link Torrent}, under the torrent's
 * lock. An inbound connection has no torrent until the remote handshake names one.
 */
final class Peer extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = Logger.getLogger(Peer.class.getName());
    /** Requests we tell peers we accept (BEP 10 {@code reqq}); twice as many queued is a protocol abuse. */
    static final int MAX_QUEUED_REQUESTS = 500;

    final Session session;
    final boolean incoming;
    final PeerWireCodec codec;
    Channel channel;
    Torrent torrent;
    InetSocketAddress remote;

    // handshake
    byte[] peerId;
    String client;
    boolean fast;
    boolean extensions;
    boolean handshaken;
    Extension.Handshake extHandshake;
    int remoteMetadataId;
    int remotePexId;
    int remoteChiralId;
    /** The peer's Chiral identity, only once its proof verified (see {@link ChiralAuth}); null otherwise. */
    Extension.ChiralHello chiral;
    /** The identity its hello claims, until proven. */
    Extension.ChiralHello chiralClaim;
    /** The nonce our hello sent it (null: we sent none). */
    byte[] chiralNonce;
    boolean chiralProofSent;
    int listenPort;

    // state
    final BitSet has = new BitSet();
    boolean seed;
    boolean gotPieces;
    boolean amChoking = true;
    boolean amInterested;
    boolean peerChoking = true;
    boolean peerInterested;
    final Set<Picker.Block> outstanding = new LinkedHashSet<>();
    final ArrayDeque<PeerWire.Request> uploadQueue = new ArrayDeque<>();
    final Set<Integer> allowedFast = new java.util.HashSet<>();
    int maxRequests = 64;
    private boolean reading;
    private boolean flushPending;

    // statistics
    long downloaded;
    long uploaded;
    long downloadRate;
    long uploadRate;
    private long lastDownloaded;
    private long lastUploaded;
    long lastBlockNanos = System.nanoTime();
    long connectedNanos = System.nanoTime();
    /** When the handshake completed, the last message other than a keep-alive came, and the last sign of use. */
    long handshakeNanos;
    long lastMessageNanos;
    long lastUsefulNanos;
    /** When a block we sent last left for the socket (or the handshake): the clock of a peer that does not read. */
    volatile long lastWriteNanos;
    /** Since when the tick saw its socket full (0 while it takes more), guarded by the torrent. */
    long unwritableSinceNanos;
    /** Whether anything but keep-alives came after the handshake. */
    boolean spoke;
    int badPieces;
    int metadataRequestsServed;
    int descriptionRequestsServed;
    java.util.Set<InetSocketAddress> pexSent = new java.util.HashSet<>();

    Peer(Session session, Torrent torrent, InetSocketAddress remote, PeerWireCodec codec) {
        this.session = session;
        this.torrent = torrent;
        this.incoming = torrent == null;
        this.remote = remote;
        this.codec = codec;
        this.listenPort = incoming || remote == null ? 0 : remote.getPort();
    }

    /** The address others can connect to: the remote address with the peer's advertised listen port. */
    InetSocketAddress listenAddress() {
        if (remote == null || listenPort == 0) {
            return null;
        }
        return new InetSocketAddress(remote.getAddress(), listenPort);
    }

    private String label;

    String label() {
        if (label == null && remote != null) {
            label = remote.getAddress().getHostAddress() + ":" + remote.getPort();
        }
        return label == null ? "?" : label;
    }

    /** {@code bittorrent://host:port}, the key of this peer in a transfer's per-source statistics. */
    String sourceLabel() {
        if (sourceLabel == null) {
            sourceLabel = "bittorrent://" + label();
        }
        return sourceLabel;
    }

    private String sourceLabel;

    /** Display name: the BEP 10 {@code v}, else decoded from an Azureus-style peer id. */
    String clientName() {
        if (client != null) {
            return client;
        }
        if (peerId != null && peerId[0] == '-' && peerId[7] == '-') {
            return new String(peerId, 1, 6, StandardCharsets.ISO_8859_1);
        }
        return null;
    }

    /** Called once a second by the torrent (under its lock). */
    void tick() {
        downloadRate = (downloadRate + (downloaded - lastDownloaded)) / 2;
        uploadRate = (uploadRate + (uploaded - lastUploaded)) / 2;
        lastDownloaded = downloaded;
        lastUploaded = uploaded;
        // about two seconds of data in flight, between 16 and what the peer accepts
        int want = (int) Math.min(Math.max(64, 2 * downloadRate / PeerWire.BLOCK), 1000);
        maxRequests = Math.min(want, reqq());
    }

    /** Requests the peer accepts at once (BEP 10 {@code reqq}; 250, libtorrent's default, when it says nothing). */
    int reqq() {
        return extHandshake != null && extHandshake.reqq() > 0 ? extHandshake.reqq() : 250;
    }

    void send(Object msg) {
        channel.write(msg, channel.voidPromise());
    }

    /** Flushes now, or, while this peer's input is being read, once the read batch is done. */
    void flush() {
        if (reading && channel.eventLoop().inEventLoop()) {
            flushPending = true;
        } else {
            channel.flush();
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) throws Exception {
        reading = false;
        if (flushPending) {
            flushPending = false;
            ctx.flush();
        }
        super.channelReadComplete(ctx);
    }

    void close(String why) {
        if (channel != null && channel.isOpen()) {
            LOG.log(Level.FINE, () -> "closing " + label() + ": " + why);
            channel.close();
        }
    }

    // ---- Netty ----

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
        channel = ctx.channel();
        if (remote == null && ctx.channel().remoteAddress() instanceof InetSocketAddress a) {
            remote = a;
        }
        if (!incoming) {
            ctx.writeAndFlush(torrent.localHandshake());
        }
        super.channelActive(ctx);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        reading = true;
        try {
            if (msg instanceof PeerWire.Handshake h) {
                onHandshake(h);
            } else if (msg instanceof PeerWire.Message m && torrent != null) {
                torrent.onMessage(this, m);
            }
        } catch (TorrentException e) {
            protocolError(e.getMessage());
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "peer " + label() + ": " + e, e);
            close("internal error: " + e);
        }
    }

    private void onHandshake(PeerWire.Handshake h) throws TorrentException {
        if (incoming) {
            Torrent t = session.torrent(h.infoHash());
            if (t == null) {
                close("unknown info-hash");
                return;
            }
            torrent = t;
            codec.accept(t.localHandshake(), t.limits());
            channel.writeAndFlush(t.localHandshake());
        } else if (!java.util.Arrays.equals(h.infoHash(), torrent.infoHash())) {
            throw new TorrentException("peer answered with another info-hash");
        }
        peerId = h.peerId();
        handshakeNanos = lastMessageNanos = lastUsefulNanos = lastWriteNanos = System.nanoTime();
        fast = h.fast() && torrent.localHandshake().fast();
        extensions = h.extensionProtocol() && torrent.localHandshake().extensionProtocol();
        handshaken = true;
        torrent.onHandshake(this);
    }

    /** A peer breaking the protocol: dropped and banned from the torrent. */
    void protocolError(String why) {
        if (torrent != null) {
            torrent.ban(this, why);
        }
        close(why);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (cause instanceof DecoderException d && d.getCause() instanceof TorrentException te) {
            protocolError(te.getMessage());
        } else {
            close(String.valueOf(cause));
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof IdleStateEvent e) {
            if (e.state() == IdleState.WRITER_IDLE && handshaken) {
                ctx.writeAndFlush(new PeerWire.KeepAlive(), ctx.voidPromise());
            } else if (e.state() == IdleState.READER_IDLE) {
                close(handshaken ? "silent for too long" : "no handshake");
            }
        }
        super.userEventTriggered(ctx, evt);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) throws Exception {
        if (ctx.channel().isWritable() && torrent != null) {
            torrent.serveQueued(this);
        }
        super.channelWritabilityChanged(ctx);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        if (torrent != null) {
            torrent.onClose(this);
        }
        super.channelInactive(ctx);
    }

    /** Writes a piece message from a buffer read off disk, without copying it into a byte array. */
    void sendPiece(int index, int begin, ByteBuf data) {
        int n = data.readableBytes();
        ByteBuf header = channel.alloc().buffer(13);
        header.writeInt(9 + n).writeByte(PeerWire.PIECE).writeInt(index).writeInt(begin);
        channel.write(header, channel.voidPromise());
        session.uploadPending(n);
        // written to the socket, or dropped with the connection
        channel.write(data).addListener(f -> {
            session.uploadPending(-n);
            if (f.isSuccess()) {
                lastWriteNanos = System.nanoTime();
            }
        });
        uploaded += n;
    }
}
