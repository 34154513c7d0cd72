package io.chiral.protocol.http.internal;

import java.io.IOException;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpResponse;

/**
 * Takes in one successful (200) response: checks its head, collects its body within fixed bounds, and turns it
 * into a result. Methods throw IOException with a one-line reason (without the peer, which the caller adds).
 */
interface ResponseReader<T> {
    void head(HttpResponse response) throws IOException;

    /** Consumes {@code content} (the caller keeps ownership of the buffer). */
    void body(ByteBuf content) throws IOException;

    /** The response is complete. */
    T finish() throws IOException;

    /** The Content-Length of {@code response}, or -1 when it has none. */
    static long contentLength(HttpResponse response) throws IOException {
        String value = response.headers().get(HttpHeaderNames.CONTENT_LENGTH);
        if (value == null) {
            return -1;
        }
        String v = value.strip();
        if (v.isEmpty() || v.length() > 18 || !v.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new IOException("malformed Content-Length '" + Route.abbreviate(value) + "'");
        }
        return Long.parseLong(v);
    }
}
