package io.chiral.protocol.bittorrent.internal;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;

/**
 * A minimal single-peer downloader of a single-file v1 torrent over the peer wire (BEP 3, with BEP 6 HaveAll /
 * HaveNone / Reject): connects, handshakes, declares interest, requests 16 KiB blocks with a pipeline of
 * {@link #PIPELINE} outstanding requests while unchoked, verifies every piece's SHA-1 against the metainfo (a bad
 * piece is counted, discarded and requested again) and writes verified pieces into {@code directory/name}.
 *
 * <p>One instance downloads once. All connection state is confined to the channel's event loop; the counters are
 * safe to read from any thread.
 */
public final class PeerDownload {
    /** Requests kept outstanding while unchoked. */
    public static final int PIPELINE = 16;

    private final Metainfo meta;
    private final Path directory;
    private final Duration timeout;
    private final byte[] peerId;
    private final AtomicInteger verified = new AtomicInteger();
    private final AtomicInteger failed = new AtomicInteger();
    private final CompletableFuture<Path> result = new CompletableFuture<>();

    /**
     * A download of {@code meta} (single-file) into {@code directory}, failing with a {@link TimeoutException}
     * after {@code timeout} from connecting.
     */
    public PeerDownload(Metainfo meta, Path directory, Duration timeout) {
        if (!meta.singleFile()) {
            throw new IllegalArgumentException("only single-file torrents are supported");
        }
        this.meta = meta;
        this.directory = directory;
        this.timeout = timeout;
        this.peerId = newPeerId();
    }

    /** A random peer id in Azureus style, {@code -CH0001-} followed by 12 random bytes. */
    static byte[] newPeerId() {
        byte[] id = new byte[20];
        new SecureRandom().nextBytes(id);
        byte[] prefix = "-CH0001-".getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(prefix, 0, id, 0, prefix.length);
        return id;
    }

    /** Our peer id. */
    public byte[] peerId() {
        return peerId.clone();
    }

    /** Pieces that arrived complete and matched their SHA-1. */
    public int verifiedPieces() {
        return verified.get();
    }

    /** Pieces that arrived complete and did not match their SHA-1 (discarded and requested again). */
    public int failedPieces() {
        return failed.get();
    }

    /**
     * Connects to {@code peer} on {@code group} (an NIO event loop group) and downloads; the future completes with
     * the written file, or exceptionally; the channel is closed either way.
     */
    public CompletableFuture<Path> start(EventLoopGroup group, InetSocketAddress peer) {
        Path file = directory.resolve(meta.name());
        PeerWire.Handshake local = PeerWire.Handshake.of(meta.infoHash(), peerId, true, true, false);
        PeerWire.Limits limits = PeerWire.Limits.DEFAULT.withPieceCount(meta.pieceCount());
        Bootstrap b = new Bootstrap().group(group).channel(NioSocketChannel.class)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(Integer.MAX_VALUE, timeout.toMillis()))
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(new PeerWireCodec(limits, local), new Handler(local, file));
                    }
                });
        b.connect(peer).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                result.completeExceptionally(f.cause());
            }
        });
        return result;
    }

    /** A piece being assembled. */
    private static final class PieceBuffer {
        final byte[] data;
        final BitSet received = new BitSet();
        final int blocks;

        PieceBuffer(int size) {
            data = new byte[size];
            blocks = (size + PeerWire.BLOCK - 1) / PeerWire.BLOCK;
        }
    }

    private final class Handler extends ChannelInboundHandlerAdapter {
        private final PeerWire.Handshake local;
        private final Path file;
        private final BitSet peerHas = new BitSet();
        private final BitSet done = new BitSet();
        private final Map<Integer, PieceBuffer> inProgress = new HashMap<>();
        private final ArrayDeque<PeerWire.Request> queue = new ArrayDeque<>();
        private final LinkedHashSet<PeerWire.Request> outstanding = new LinkedHashSet<>();
        private final MessageDigest sha1;
        private FileChannel out;
        private ScheduledFuture<?> timer;
        private boolean handshaken;
        private boolean fast;
        private boolean choked = true;

        Handler(PeerWire.Handshake local, Path file) {
            this.local = local;
            this.file = file;
            try {
                sha1 = MessageDigest.getInstance("SHA-1");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) throws Exception {
            timer = ctx.executor().schedule(() -> fail(ctx, new TimeoutException("download not finished after "
                    + timeout)), timeout.toMillis(), TimeUnit.MILLISECONDS);
            out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING);
            ctx.writeAndFlush(local);
            super.channelActive(ctx);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (result.isDone()) {
                return;
            }
            try {
                if (msg instanceof PeerWire.Handshake h) {
                    onHandshake(ctx, h);
                } else if (msg instanceof PeerWire.Message m) {
                    onMessage(ctx, m);
                }
            } catch (IOException e) {
                fail(ctx, e);
            } catch (RuntimeException e) {
                fail(ctx, e);
            }
        }

        private void onHandshake(ChannelHandlerContext ctx, PeerWire.Handshake remote) {
            if (!Arrays.equals(remote.infoHash(), meta.infoHash())) {
                fail(ctx, new TorrentException("peer answered with another info-hash"));
                return;
            }
            handshaken = true;
            fast = local.fast() && remote.fast();
            if (fast) {
                ctx.write(new PeerWire.HaveNone());
            }
            ctx.writeAndFlush(new PeerWire.Interested());
        }

        private void onMessage(ChannelHandlerContext ctx, PeerWire.Message m) throws IOException {
            switch (m) {
                case PeerWire.Bitfield bf -> {
                    for (int i = 0; i < meta.pieceCount(); i++) {
                        if (bf.has(i)) {
                            peerHas.set(i);
                        }
                    }
                }
                case PeerWire.HaveAll h -> peerHas.set(0, meta.pieceCount());
                case PeerWire.Have h -> peerHas.set(h.index());
                case PeerWire.Choke c -> {
                    choked = true;
                    requeueOutstanding();
                }
                case PeerWire.Unchoke u -> choked = false;
                case PeerWire.Reject r -> {
                    PeerWire.Request req = new PeerWire.Request(r.index(), r.begin(), r.length());
                    if (outstanding.remove(req)) {
                        queue.addFirst(req);
                    }
                }
                case PeerWire.Piece p -> onPiece(ctx, p);
                default -> {
                    // keep-alive, interest, requests (we serve nothing), extension messages, ...: ignored
                }
            }
            if (!result.isDone()) {
                fill(ctx);
            }
        }

        private void requeueOutstanding() {
            PeerWire.Request[] pending = outstanding.toArray(new PeerWire.Request[0]);
            outstanding.clear();
            for (int i = pending.length - 1; i >= 0; i--) {
                queue.addFirst(pending[i]);
            }
        }

        private void onPiece(ChannelHandlerContext ctx, PeerWire.Piece p) throws IOException {
            PeerWire.Request req = new PeerWire.Request(p.index(), p.begin(), p.length());
            PieceBuffer buf = inProgress.get(p.index());
            int block = p.begin() / PeerWire.BLOCK;
            if (buf == null || p.begin() % PeerWire.BLOCK != 0 || block >= buf.blocks || buf.received.get(block)
                    || p.length() != Math.min(PeerWire.BLOCK, buf.data.length - p.begin())) {
                outstanding.remove(req);
                return; // unrequested, duplicate or misshapen: ignore
            }
            if (!outstanding.remove(req)) {
                queue.remove(req); // arrived after a choke moved it back to the queue
            }
            p.copyTo(buf.data, p.begin());
            buf.received.set(block);
            if (buf.received.cardinality() < buf.blocks) {
                return;
            }
            inProgress.remove(p.index());
            byte[] digest = sha1.digest(buf.data);
            if (!Arrays.equals(digest, meta.pieceHash(p.index()))) {
                failed.incrementAndGet();
                return; // fill() starts it again from scratch
            }
            ByteBuffer data = ByteBuffer.wrap(buf.data);
            long position = (long) p.index() * meta.pieceLength();
            while (data.hasRemaining()) {
                position += out.write(data, position);
            }
            done.set(p.index());
            verified.incrementAndGet();
            if (done.cardinality() == meta.pieceCount()) {
                out.force(false);
                closeFile();
                timer.cancel(false);
                result.complete(file);
                ctx.close();
            }
        }

        /** Sends requests until the pipeline is full, while unchoked. */
        private void fill(ChannelHandlerContext ctx) {
            if (!handshaken || choked) {
                return;
            }
            boolean sent = false;
            while (outstanding.size() < PIPELINE) {
                if (queue.isEmpty() && !startPiece()) {
                    break;
                }
                PeerWire.Request req = queue.poll();
                outstanding.add(req);
                ctx.write(req);
                sent = true;
            }
            if (sent) {
                ctx.flush();
            }
        }

        /** Queues the blocks of the next piece the peer has and we neither have nor are assembling. */
        private boolean startPiece() {
            for (int i = done.nextClearBit(0); i < meta.pieceCount(); i = done.nextClearBit(i + 1)) {
                if (peerHas.get(i) && !inProgress.containsKey(i)) {
                    PieceBuffer buf = new PieceBuffer(meta.pieceSize(i));
                    inProgress.put(i, buf);
                    for (int k = 0; k < buf.blocks; k++) {
                        int begin = k * PeerWire.BLOCK;
                        queue.add(new PeerWire.Request(i, begin, Math.min(PeerWire.BLOCK, buf.data.length - begin)));
                    }
                    return true;
                }
            }
            return false;
        }

        private void fail(ChannelHandlerContext ctx, Throwable cause) {
            closeFile();
            if (timer != null) {
                timer.cancel(false);
            }
            result.completeExceptionally(cause);
            ctx.close();
        }

        private void closeFile() {
            if (out != null) {
                try {
                    out.close();
                } catch (IOException e) {
                    // nothing more to write; the result already reflects what happened
                } finally {
                    out = null;
                }
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            fail(ctx, cause);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) throws Exception {
            if (!result.isDone()) {
                fail(ctx, new IOException("peer closed the connection after " + verified.get() + " of "
                        + meta.pieceCount() + " pieces"));
            }
            closeFile();
            super.channelInactive(ctx);
        }
    }
}
