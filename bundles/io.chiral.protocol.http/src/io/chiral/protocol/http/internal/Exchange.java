package io.chiral.protocol.http.internal;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;

/**
 * One GET and its outcome. A 200 response goes to a fresh {@link ResponseReader}; any other status fails the
 * exchange with the status and the first line of the peer's text. Used on a single connection's event loop at a
 * time; the result may be completed from anywhere.
 */
final class Exchange<T> {
    /** Characters of an error response's text kept for the message. */
    private static final int MAX_ERROR_TEXT = 200;

    private final String path;
    private final boolean lastOnConnection;
    private final Supplier<ResponseReader<T>> readers;
    private final CompletableFuture<T> result = new CompletableFuture<>();
    private ResponseReader<T> reader;
    private HttpResponseStatus errorStatus;
    private byte[] errorText;
    private int errorLength;
    private boolean started;
    private boolean retried;

    /**
     * @param lastOnConnection ask the peer to close the connection after this exchange
     */
    Exchange(String path, boolean lastOnConnection, Supplier<ResponseReader<T>> readers) {
        this.path = path;
        this.lastOnConnection = lastOnConnection;
        this.readers = readers;
    }

    CompletableFuture<T> result() {
        return result;
    }

    boolean lastOnConnection() {
        return lastOnConnection;
    }

    /** Whether any part of a response arrived. */
    boolean started() {
        return started;
    }

    /** Marks this exchange as sent again after its connection went stale; false when it was already. */
    boolean markRetried() {
        if (retried) {
            return false;
        }
        retried = true;
        return true;
    }

    FullHttpRequest request(String host) {
        discard();
        started = false;
        FullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, path, Unpooled.EMPTY_BUFFER);
        req.headers().set(HttpHeaderNames.HOST, host)
                .set(HttpHeaderNames.USER_AGENT, "chiral")
                .set(HttpHeaderNames.ACCEPT, "*/*");
        if (lastOnConnection) {
            req.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        }
        return req;
    }

    void head(HttpResponse response) throws IOException {
        if (started) {
            throw new IOException("second response head for one request");
        }
        started = true;
        if (response.status().code() == HttpResponseStatus.OK.code()) {
            reader = readers.get();
            reader.head(response);
        } else {
            errorStatus = HttpResponseStatus.valueOf(response.status().code());
            errorText = new byte[MAX_ERROR_TEXT];
            errorLength = 0;
        }
    }

    void body(ByteBuf content) throws IOException {
        if (!started) {
            throw new IOException("response body without a head");
        }
        if (reader != null) {
            reader.body(content);
        } else {
            int n = Math.min(content.readableBytes(), errorText.length - errorLength);
            content.getBytes(content.readerIndex(), errorText, errorLength, n);
            errorLength += n;
        }
    }

    /** The response is complete: completes the result, or throws why the response is not acceptable. */
    void finish() throws IOException {
        if (!started) {
            throw new IOException("response ended without a head");
        }
        if (reader == null) {
            String text = new String(errorText, 0, errorLength, StandardCharsets.UTF_8);
            discard();
            int eol = text.indexOf('\n');
            String line = Failures.oneLine(Route.abbreviate(eol >= 0 ? text.substring(0, eol) : text));
            throw new IOException("HTTP " + errorStatus.code() + " " + errorStatus.reasonPhrase() + (line.isEmpty() ? "" : ": " + line));
        }
        result.complete(reader.finish());
    }

    /** Fails the result (no effect once it is complete) and drops what was collected. */
    void fail(IOException cause) {
        discard();
        result.completeExceptionally(cause);
    }

    private void discard() {
        reader = null;
        errorText = null;
    }
}
