package io.chiral.protocol.bittorrent.internal;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.logging.Level;
import java.util.logging.Logger;

import io.chiral.api.ChunkSource;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.timeout.IdleState;
import io.netty.handler.timeout.IdleStateEvent;

/**
 * A Chiral node's torrent of a file, used as a source of that file's chunks by CID (the dual lookup's CID →
 * BitTorrent direction). One peer-wire connection to the provider's BitTorrent address, handshaking with the
 * info-hash the provider published for the CID. Over the {@code chiral} extension it first fetches the file's
 * description (its chunk SHA-256s and the torrent's piece length), then maps each chunk the transfer engine asks
 * for onto 16 KiB block requests and hands back the chunk as received. The engine verifies every chunk against
 * its SHA-256, so a wrong byte costs this source its reputation there, not the file.
 *
 * <p>All state is confined to the channel's event loop. Bounded: the description is at most
 * {@value Extension#MAX_FILE_DESCRIPTION} bytes and is fetched piece by piece in order; blocks that were not asked
 * for are counted and, past a limit, end the connection.
 */
final class PeerChunkSource extends ChannelInboundHandlerAdapter implements ChunkSource {
    private static final Logger LOG = Logger.getLogger(PeerChunkSource.class.getName());
    /** Chunks asked for at once (16 × 256 KiB: 256 block requests in flight, half of what we accept ourselves). */
    static final int MAX_OUTSTANDING = 16;
    /** Blocks that arrive unasked (late after a choke, or duplicates) tolerated before the peer is dropped. */
    static final int MAX_UNEXPECTED_BLOCKS = 256;

    private final PeerInfo peer;
    private final String cid;
    private final io.netty.channel.EventLoop loop;
    private final byte[] peerId;
    private volatile PeerWire.Handshake local;
    private final Extension.ChiralHello hello;
    /** Signs with the key {@link #hello} names (null with it): proves our identity to the provider. */
    private final java.util.function.Function<byte[], byte[]> signer;
    private boolean proofSent;
    private final String client;
    /** Null while this source only fetches the description ({@link #description()}). */
    private final FileMetadata file;
    private final CompletableFuture<FileMetadata> described = new CompletableFuture<>();
    private final Map<Integer, Pending> pending = new LinkedHashMap<>();
    private final ArrayDeque<Integer> toSend = new ArrayDeque<>();
    private volatile Channel channel;
    private volatile boolean closed;
    private String closeReason;
    private int remoteChiralId;
    private boolean choked = true;
    private int pieceLength;
    private byte[] descBytes;
    private int descNext;
    private int unexpected;

    /** One chunk being fetched: its buffer, which of its blocks arrived, and whether they were asked for. */
    private static final class Pending {
        final int index;
        final ByteBuffer buf;
        final BitSet received = new BitSet();
        final int blocks;
        final CompletableFuture<ByteBuffer> done = new CompletableFuture<>();
        boolean requested;

        Pending(int index, int length) {
            this.index = index;
            this.buf = ByteBuffer.allocate(length);
            this.blocks = (length + PeerWire.BLOCK - 1) / PeerWire.BLOCK;
        }
    }

    /**
     * {@code file} null: a connection that only fetches the description of {@code cid}. {@code hello} may be null
     * (a node without a key still fetches, it just does not introduce itself). Chunks asked for before
     * {@link #infoHash} (the provider's torrent is still being looked up) wait; the connection runs on {@code loop}.
     */
    PeerChunkSource(io.netty.channel.EventLoop loop, PeerInfo peer, String cid, FileMetadata file, byte[] peerId,
            Extension.ChiralHello hello, java.util.function.Function<byte[], byte[]> signer, String client) {
        if (file != null && file.chunkSize() % PeerWire.BLOCK != 0) {
            throw new IllegalArgumentException("chunks of " + file.chunkSize()
                    + " bytes do not map onto BitTorrent's 16 KiB blocks");
        }
        this.loop = loop;
        this.peer = peer;
        this.cid = cid;
        this.file = file;
        this.peerId = peerId.clone();
        this.hello = hello;
        this.signer = signer;
        this.client = client;
    }

    io.netty.channel.EventLoop loop() {
        return loop;
    }

    /** The info-hash of the provider's torrent of the file: call before connecting. */
    void infoHash(byte[] infoHash) {
        local = PeerWire.Handshake.of(infoHash, peerId, true, false, false);
    }

    PeerWire.Handshake localHandshake() {
        return local;
    }

    boolean isClosed() {
        return closed;
    }

    /** The file's description as the peer sent it (the engine checks it against the CID and Merkle root). */
    CompletionStage<FileMetadata> description() {
        return described;
    }

    // ---- ChunkSource ----

    @Override
    public PeerInfo peer() {
        return peer;
    }

    @Override
    public int maxOutstanding() {
        return MAX_OUTSTANDING;
    }

    @Override
    public CompletionStage<ByteBuffer> fetchChunk(int index) {
        if (file == null) {
            return CompletableFuture.failedFuture(new IllegalStateException("a description-only connection"));
        }
        int length = file.chunkLength(index);
        Pending p = new Pending(index, length);
        if (closed) {
            p.done.completeExceptionally(new java.io.IOException(peer.label() + ": " + reason()));
            return p.done;
        }
        loop.execute(() -> {
            if (closed) {
                p.done.completeExceptionally(new java.io.IOException(peer.label() + ": " + reason()));
                return;
            }
            Pending old = pending.put(index, p);
            if (old != null) {
                old.done.completeExceptionally(new java.io.IOException("chunk " + index + " asked for again"));
            }
            toSend.add(index);
            sendRequests();
        });
        return p.done;
    }

    @Override
    public void close() {
        fail("closed");
    }

    /** Why this source ended (null while it is open). */
    String closeReason() {
        return closeReason;
    }

    private String reason() {
        String r = closeReason;
        return r == null ? "connection closed" : r;
    }

    /** Closes the connection and fails everything outstanding with {@code why} (first reason wins). */
    void fail(String why) {
        if (loop.inEventLoop()) {
            failLocally(why);
            return;
        }
        try {
            loop.execute(() -> failLocally(why));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            failLocally(why); // the event loops are stopping: nothing runs there any more
        }
    }

    private void failLocally(String why) {
        if (closeReason == null) {
            closeReason = why;
        }
        closed = true;
        java.io.IOException e = new java.io.IOException(peer.label() + ": " + closeReason);
        described.completeExceptionally(e);
        for (Pending p : pending.values()) {
            p.done.completeExceptionally(e);
        }
        pending.clear();
        toSend.clear();
        Channel ch = channel;
        if (ch != null && ch.isOpen()) {
            LOG.log(Level.FINE, () -> "closing CID source " + peer.label() + ": " + why);
            ch.close();
        }
    }

    // ---- Netty ----

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
        channel = ctx.channel();
        if (closed) {
            ctx.close();
            return;
        }
        ctx.writeAndFlush(local);
        super.channelActive(ctx);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (closed) {
            return;
        }
        try {
            if (msg instanceof PeerWire.Handshake h) {
                onHandshake(ctx, h);
            } else if (msg instanceof PeerWire.Message m) {
                onMessage(m);
            }
        } catch (TorrentException e) {
            failLocally("protocol error: " + e.getMessage());
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "CID source " + peer.label() + ": " + e, e);
            failLocally("internal error: " + e);
        }
    }

    private void onHandshake(ChannelHandlerContext ctx, PeerWire.Handshake h) throws TorrentException {
        if (!java.util.Arrays.equals(h.infoHash(), local.infoHash())) {
            throw new TorrentException("peer answered with another info-hash");
        }
        if (!h.extensionProtocol()) {
            throw new TorrentException("peer does not support BEP 10 extensions: not a Chiral node");
        }
        Map<String, Integer> m = new LinkedHashMap<>();
        m.put(Extension.CHIRAL, Torrent.EXT_CHIRAL);
        ctx.write(new PeerWire.Extended(0, Extension.encodeHandshake(
                new Extension.Handshake(m, client, 0, Peer.MAX_QUEUED_REQUESTS, -1))));
        if (file != null) {
            ctx.write(new PeerWire.Interested());
        }
        ctx.flush();
    }

    private void onMessage(PeerWire.Message m) throws TorrentException {
        switch (m) {
            case PeerWire.Extended e when e.extId() == 0 -> {
                Extension.Handshake h = Extension.decodeHandshake(e.payload());
                remoteChiralId = h.id(Extension.CHIRAL);
                if (remoteChiralId <= 0) {
                    throw new TorrentException("peer does not speak the chiral extension: not a Chiral node");
                }
                if (hello != null) {
                    send(new PeerWire.Extended(remoteChiralId, Extension.encodeChiral(hello)));
                }
                send(new PeerWire.Extended(remoteChiralId, Extension.encodeChiral(new Extension.FileRequest(cid, 0))));
                channel.flush();
            }
            case PeerWire.Extended e when e.extId() == Torrent.EXT_CHIRAL -> onChiral(Extension.decodeChiral(e.payload()));
            case PeerWire.Unchoke u -> {
                if (choked) {
                    choked = false;
                    sendRequests();
                }
            }
            case PeerWire.Choke c -> {
                // BEP 3: a choke drops every request; they are asked again after the next unchoke
                choked = true;
                toSend.clear();
                for (Pending p : pending.values()) {
                    p.requested = false;
                    toSend.add(p.index);
                }
            }
            case PeerWire.Piece p -> onBlock(p);
            default -> {
                // have, bitfield, keep-alive, interest: a provider has the whole file and we upload nothing
            }
        }
    }

    private void onChiral(Extension.ChiralMessage m) throws TorrentException {
        switch (m) {
            case Extension.FileData d -> {
                if (!d.cid().equals(cid)) {
                    throw new TorrentException("description of another file");
                }
                if (pieceLength == 0) {
                    pieceLength = d.pieceLength();
                    if (file != null) {
                        sendRequests();
                        return; // a source knows the chunk hashes already; the piece length was all it needed
                    }
                    descBytes = new byte[d.totalSize()];
                } else if (file != null || descBytes == null || d.totalSize() != descBytes.length
                        || d.pieceLength() != pieceLength) {
                    throw new TorrentException("unexpected or inconsistent description piece");
                }
                if (d.piece() != descNext) {
                    throw new TorrentException("description piece " + d.piece() + " arrived, " + descNext + " was asked for");
                }
                byte[] data = d.data();
                System.arraycopy(data, 0, descBytes, d.piece() * Extension.METADATA_PIECE, data.length);
                descNext++;
                if (descNext < Extension.metadataPieces(descBytes.length)) {
                    send(new PeerWire.Extended(remoteChiralId, Extension.encodeChiral(new Extension.FileRequest(cid, descNext))));
                    channel.flush();
                    return;
                }
                FileMetadata meta = Extension.decodeFileDescription(descBytes, cid);
                descBytes = null;
                described.complete(meta);
            }
            case Extension.FileReject r -> failLocally("peer does not serve " + cid.substring(0, 12) + "… over this torrent");
            case Extension.ChiralHello h -> prove(h);
            default -> {
                // its hello (identity is the provider record's business here) or a message of a later version
            }
        }
    }

    /**
     * The provider's hello: when it carries a nonce, we sign it (once) so that the provider counts us as the Chiral
     * node our hello named (its fast lane). The provider's own identity is the provider record's business here.
     */
    private void prove(Extension.ChiralHello h) {
        if (h.nonce() == null || hello == null || signer == null || proofSent || remoteChiralId <= 0) {
            return;
        }
        byte[] sig = signer.apply(ChiralAuth.proofMessage(local.infoHash(),
                java.util.HexFormat.of().parseHex(hello.chiralPeerId()), h.nonce().toByteArray()));
        if (sig != null) {
            proofSent = true;
            send(new PeerWire.Extended(remoteChiralId,
                    Extension.encodeChiral(new Extension.ChiralProof(io.chiral.bencode.Bytes.of(sig)))));
            channel.flush();
        }
    }

    private void onBlock(PeerWire.Piece b) throws TorrentException {
        if (file == null || pieceLength == 0) {
            throw new TorrentException("a block that was never asked for");
        }
        long offset = (long) b.index() * pieceLength + b.begin();
        int chunk = (int) (offset / file.chunkSize());
        Pending p = chunk < file.chunkCount() ? pending.get(chunk) : null;
        int block = p == null ? -1 : (int) ((offset - file.chunkOffset(chunk)) / PeerWire.BLOCK);
        int len = b.length();
        if (p == null || !p.requested || (offset - file.chunkOffset(chunk)) % PeerWire.BLOCK != 0
                || p.received.get(block) || len != Math.min(PeerWire.BLOCK, p.buf.capacity() - block * PeerWire.BLOCK)) {
            if (++unexpected > MAX_UNEXPECTED_BLOCKS) {
                throw new TorrentException("too many blocks that were not asked for");
            }
            return;
        }
        p.buf.put(block * PeerWire.BLOCK, b.block());
        p.received.set(block);
        if (p.received.cardinality() == p.blocks) {
            pending.remove(chunk);
            p.done.complete(p.buf.position(0).limit(p.buf.capacity()));
        }
    }

    /** Asks for every block of the chunks waiting, once the piece length is known and the peer has unchoked us. */
    private void sendRequests() {
        if (closed || choked || pieceLength == 0 || channel == null) {
            return;
        }
        boolean any = false;
        while (!toSend.isEmpty()) {
            Pending p = pending.get(toSend.poll());
            if (p == null || p.requested) {
                continue;
            }
            p.requested = true;
            for (PeerWire.Request r : blocks(p)) {
                send(r);
                any = true;
            }
        }
        if (any) {
            channel.flush();
        }
    }

    /**
     * The block requests covering what chunk {@code p} still lacks: 16 KiB blocks, none crossing a piece boundary
     * (the piece length is a multiple of 16 KiB, so blocks of a chunk are 16 KiB apart from its start).
     */
    private List<PeerWire.Request> blocks(Pending p) {
        List<PeerWire.Request> out = new ArrayList<>(p.blocks);
        long from = file.chunkOffset(p.index);
        long end = from + p.buf.capacity();
        for (long pos = from; pos < end;) {
            int piece = (int) (pos / pieceLength);
            int begin = (int) (pos % pieceLength);
            int length = (int) Math.min(Math.min(PeerWire.BLOCK, pieceLength - begin), end - pos);
            if (!p.received.get((int) ((pos - from) / PeerWire.BLOCK))) {
                out.add(new PeerWire.Request(piece, begin, length)); // after a choke: only what is still missing
            }
            pos += length;
        }
        return out;
    }

    private void send(Object msg) {
        channel.write(msg, channel.voidPromise());
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (cause instanceof DecoderException d && d.getCause() instanceof TorrentException te) {
            failLocally("protocol error: " + te.getMessage());
        } else {
            failLocally(String.valueOf(cause));
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof IdleStateEvent e) {
            if (e.state() == IdleState.WRITER_IDLE) {
                ctx.writeAndFlush(new PeerWire.KeepAlive(), ctx.voidPromise());
            } else if (e.state() == IdleState.READER_IDLE) {
                failLocally("silent for too long");
            }
        }
        super.userEventTriggered(ctx, evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        failLocally("connection closed by the peer");
        super.channelInactive(ctx);
    }
}
