package io.chiral.protocol.http.internal;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Pattern;

import io.chiral.api.ContentStore;
import io.chiral.api.FileMetadata;
import io.chiral.net.ConnectionLimiter;
import io.chiral.net.NetService;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.DefaultFileRegion;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpChunkedInput;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.stream.ChunkedNioFile;
import io.netty.handler.timeout.IdleStateEvent;

/**
 * Serves one inbound connection: GET and HEAD of {@code /file/{cid}} (whole file, single byte ranges),
 * {@code /file/{cid}/manifest} and {@code /file/{cid}/chunk/{i}}. Requests are answered one at a time and in
 * order; pipelined requests wait (reading pauses) while a file body is being sent. File bodies go out zero-copy
 * when there is no upload limit, else in {@value #PIECE} byte pieces that the traffic shaper can pace. Every
 * error is a one-line {@code text/plain} reason.
 */
final class HttpServerHandler extends SimpleChannelInboundHandler<HttpObject> {
    private static final Logger LOG = Logger.getLogger(HttpServerHandler.class.getName());
    /** Piece size of paced file bodies. */
    static final int PIECE = 64 * 1024;
    /** Requests a client may pipeline behind the one being answered. */
    static final int MAX_PIPELINED = 32;
    private static final Pattern MIME = Pattern.compile("[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,128}");

    private final ContentStore store;
    private final NetService net;
    private final UploadTracker uploads;
    private final ArrayDeque<HttpRequest> waiting = new ArrayDeque<>();
    private boolean responding;

    HttpServerHandler(ContentStore store, NetService net, UploadTracker uploads) {
        this.store = store;
        this.net = net;
        this.uploads = uploads;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, HttpObject msg) {
        if (!(msg instanceof HttpRequest req)) {
            return; // request bodies are not used by any route
        }
        ConnectionLimiter.busy(ctx.channel()); // a complete header: no longer subject to the header deadline
        if (responding) {
            if (waiting.size() >= MAX_PIPELINED) {
                LOG.fine(() -> "closing " + ctx.channel().remoteAddress() + ": more than " + MAX_PIPELINED + " pipelined requests");
                ctx.close();
                return;
            }
            waiting.add(req);
            ctx.channel().config().setAutoRead(false);
            return;
        }
        handle(ctx, req);
    }

    private void handle(ChannelHandlerContext ctx, HttpRequest req) {
        boolean keepAlive = req.decoderResult().isSuccess() && HttpUtil.isKeepAlive(req);
        responding = true;
        ChannelFuture done;
        try {
            done = respond(ctx, req, keepAlive);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "internal error answering " + Route.abbreviate(req.uri()), e);
            done = error(ctx, req, HttpResponseStatus.INTERNAL_SERVER_ERROR, "internal error", false);
        }
        done.addListener((ChannelFutureListener) f -> afterResponse(ctx, f.isSuccess() && keepAlive));
    }

    private void afterResponse(ChannelHandlerContext ctx, boolean keepOpen) {
        responding = false;
        if (!keepOpen) {
            waiting.clear();
            ctx.close();
            return;
        }
        HttpRequest next = waiting.poll();
        if (next != null) {
            handle(ctx, next);
        } else {
            ConnectionLimiter.idle(ctx.channel());
            ctx.channel().config().setAutoRead(true);
        }
    }

    private ChannelFuture respond(ChannelHandlerContext ctx, HttpRequest req, boolean keepAlive) {
        if (req.decoderResult().isFailure()) {
            Throwable cause = req.decoderResult().cause();
            return error(ctx, req, HttpResponseStatus.BAD_REQUEST, "malformed request: "
                    + (cause != null && cause.getMessage() != null ? cause.getMessage() : "unparsable"), false);
        }
        boolean head = req.method().equals(HttpMethod.HEAD);
        if (!head && !req.method().equals(HttpMethod.GET)) {
            return error(ctx, req, HttpResponseStatus.METHOD_NOT_ALLOWED, "method " + Route.abbreviate(req.method().name())
                    + " not allowed (only GET and HEAD)", keepAlive);
        }
        Route route;
        try {
            route = Route.parse(req.uri());
        } catch (IllegalArgumentException e) {
            return error(ctx, req, HttpResponseStatus.NOT_FOUND, e.getMessage(), keepAlive);
        }
        Optional<Path> path = store.contentPath(route.id());
        Optional<FileMetadata> meta = path.isPresent() ? store.metadata(route.id()) : Optional.empty();
        if (meta.isEmpty()) {
            return error(ctx, req, HttpResponseStatus.NOT_FOUND, "no complete file with CID " + route.id().hex() + " here", keepAlive);
        }
        FileMetadata m = meta.get();
        uploads.requested(ctx.channel(), m.id());
        return switch (route.kind()) {
            case MANIFEST -> manifest(ctx, req, m, head, keepAlive);
            case CHUNK -> chunk(ctx, req, m, path.get(), route.chunk(), head, keepAlive);
            case FILE -> whole(ctx, req, m, path.get(), head, keepAlive);
        };
    }

    private ChannelFuture manifest(ChannelHandlerContext ctx, HttpRequest req, FileMetadata m, boolean head, boolean keepAlive) {
        ByteBuf json = Manifest.encode(m, ctx.alloc());
        int length = json.readableBytes();
        if (head) {
            json.release();
            json = Unpooled.EMPTY_BUFFER;
        }
        FullHttpResponse resp = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK, json);
        resp.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_JSON)
                .setInt(HttpHeaderNames.CONTENT_LENGTH, length);
        connection(resp.headers(), req, keepAlive);
        return ctx.writeAndFlush(resp);
    }

    private ChannelFuture chunk(ChannelHandlerContext ctx, HttpRequest req, FileMetadata m, Path path, int index, boolean head,
            boolean keepAlive) {
        if (index >= m.chunkCount()) {
            return error(ctx, req, HttpResponseStatus.NOT_FOUND, "no chunk " + index + ": " + m.id().shortHex() + " has "
                    + m.chunkCount() + " chunks", keepAlive);
        }
        HttpResponse resp = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
        resp.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_OCTET_STREAM);
        return body(ctx, req, resp, path, m.chunkOffset(index), m.chunkLength(index), head, keepAlive);
    }

    private ChannelFuture whole(ChannelHandlerContext ctx, HttpRequest req, FileMetadata m, Path path, boolean head,
            boolean keepAlive) {
        RangeRequest range = RangeRequest.parse(req.headers().get(HttpHeaderNames.RANGE), m.size());
        if (range instanceof RangeRequest.Unsatisfiable) {
            FullHttpResponse resp = text(HttpResponseStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                    "range not satisfiable: the file has " + m.size() + " bytes", head);
            resp.headers().set(HttpHeaderNames.CONTENT_RANGE, "bytes */" + m.size())
                    .set(HttpHeaderNames.ACCEPT_RANGES, HttpHeaderValues.BYTES);
            connection(resp.headers(), req, keepAlive);
            return ctx.writeAndFlush(resp);
        }
        long offset = 0;
        long length = m.size();
        HttpResponseStatus status = HttpResponseStatus.OK;
        if (range instanceof RangeRequest.Partial p) {
            offset = p.first();
            length = p.length();
            status = HttpResponseStatus.PARTIAL_CONTENT;
        }
        HttpResponse resp = new DefaultHttpResponse(HttpVersion.HTTP_1_1, status);
        HttpHeaders h = resp.headers();
        h.set(HttpHeaderNames.CONTENT_TYPE, MIME.matcher(m.mimeType()).matches() ? m.mimeType() : HttpHeaderValues.APPLICATION_OCTET_STREAM)
                .set(HttpHeaderNames.ACCEPT_RANGES, HttpHeaderValues.BYTES)
                .set(HttpHeaderNames.CONTENT_DISPOSITION, "inline; filename*=UTF-8''" + percentEncode(m.name()));
        if (range instanceof RangeRequest.Partial p) {
            h.set(HttpHeaderNames.CONTENT_RANGE, "bytes " + p.first() + "-" + p.last() + "/" + m.size());
        }
        return body(ctx, req, resp, path, offset, length, head, keepAlive);
    }

    /** Sends {@code resp} (headers complete but for length and connection) and {@code length} bytes of the file. */
    private ChannelFuture body(ChannelHandlerContext ctx, HttpRequest req, HttpResponse resp, Path path, long offset, long length,
            boolean head, boolean keepAlive) {
        HttpUtil.setContentLength(resp, length);
        connection(resp.headers(), req, keepAlive);
        if (head || length == 0) {
            FullHttpResponse full = new DefaultFullHttpResponse(resp.protocolVersion(), resp.status(), Unpooled.EMPTY_BUFFER);
            full.headers().set(resp.headers());
            return ctx.writeAndFlush(full);
        }
        FileChannel file;
        try {
            file = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            return error(ctx, req, HttpResponseStatus.NOT_FOUND, "file " + path.getFileName() + " is gone", keepAlive);
        } catch (IOException e) {
            LOG.warning("cannot open " + path + " for upload: " + e);
            return error(ctx, req, HttpResponseStatus.INTERNAL_SERVER_ERROR, "cannot read the file", keepAlive);
        }
        try {
            if (file.size() < offset + length) {
                closeQuietly(file);
                return error(ctx, req, HttpResponseStatus.NOT_FOUND, "file " + path.getFileName() + " changed on disk", keepAlive);
            }
            ctx.write(resp);
            ChannelFuture done;
            if (net.maxUploadRate() == 0) {
                ctx.write(new DefaultFileRegion(file, offset, length));
                done = ctx.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT);
            } else {
                done = ctx.writeAndFlush(new HttpChunkedInput(new ChunkedNioFile(file, offset, length, PIECE)));
            }
            done.addListener((ChannelFutureListener) f -> closeQuietly(file));
            return done;
        } catch (IOException | RuntimeException e) {
            closeQuietly(file);
            LOG.warning("cannot send " + path + ": " + e);
            return ctx.newFailedFuture(e);
        }
    }

    private ChannelFuture error(ChannelHandlerContext ctx, HttpRequest req, HttpResponseStatus status, String reason,
            boolean keepAlive) {
        FullHttpResponse resp = text(status, reason, req.method().equals(HttpMethod.HEAD));
        if (status.equals(HttpResponseStatus.METHOD_NOT_ALLOWED)) {
            resp.headers().set(HttpHeaderNames.ALLOW, "GET, HEAD");
        }
        connection(resp.headers(), req, keepAlive);
        return ctx.writeAndFlush(resp);
    }

    /** A one-line {@code text/plain} response; for HEAD only its headers. */
    private static FullHttpResponse text(HttpResponseStatus status, String reason, boolean head) {
        byte[] body = (reason.replace('\r', ' ').replace('\n', ' ') + "\n").getBytes(StandardCharsets.UTF_8);
        FullHttpResponse resp = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status,
                head ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(body));
        resp.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain; charset=utf-8")
                .setInt(HttpHeaderNames.CONTENT_LENGTH, body.length);
        return resp;
    }

    private static void connection(HttpHeaders h, HttpRequest req, boolean keepAlive) {
        if (!keepAlive) {
            h.set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        } else if (!req.protocolVersion().isKeepAliveDefault()) {
            h.set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
        }
    }

    /** RFC 8187 value characters of a file name; everything else percent-encoded as UTF-8. */
    private static String percentEncode(String name) {
        StringBuilder b = new StringBuilder();
        for (byte x : name.getBytes(StandardCharsets.UTF_8)) {
            int c = x & 0xff;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || "!#$&+-.^_`|~".indexOf(c) >= 0) {
                b.append((char) c);
            } else {
                b.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
            }
        }
        return b.toString();
    }

    private static void closeQuietly(FileChannel file) {
        try {
            file.close();
        } catch (IOException e) {
            LOG.log(Level.FINE, "closing an uploaded file", e);
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof IdleStateEvent) {
            ctx.close();
        } else {
            super.userEventTriggered(ctx, evt);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        uploads.closed(ctx.channel());
        waiting.clear();
        super.channelInactive(ctx);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.log(Level.FINE, "closing upload connection " + ctx.channel().remoteAddress() + ": " + cause);
        ctx.close();
    }
}
