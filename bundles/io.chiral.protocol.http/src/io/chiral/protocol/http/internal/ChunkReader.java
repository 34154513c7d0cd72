package io.chiral.protocol.http.internal;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpUtil;

/**
 * Reads the body of {@code GET /file/{cid}/chunk/{i}}: exactly the chunk's length as the metadata gives it, no
 * more, no less. The buffer is allocated from that trusted length, never from what the peer announces.
 */
final class ChunkReader implements ResponseReader<ByteBuffer> {
    private final int index;
    private final int length;
    private ByteBuffer data;

    ChunkReader(int index, int length) {
        this.index = index;
        this.length = length;
    }

    @Override
    public void head(HttpResponse response) throws IOException {
        if (HttpUtil.isTransferEncodingChunked(response)) {
            throw new IOException("chunk " + index + " came with chunked transfer encoding; Content-Length " + length + " expected");
        }
        long announced = ResponseReader.contentLength(response);
        if (announced < 0) {
            throw new IOException("chunk " + index + " came without Content-Length; " + length + " expected");
        }
        if (announced != length) {
            throw new IOException("chunk " + index + " has Content-Length " + announced + " but is " + length + " bytes long");
        }
        data = ByteBuffer.allocate(length);
    }

    @Override
    public void body(ByteBuf content) throws IOException {
        int n = content.readableBytes();
        if (n > data.remaining()) {
            throw new IOException("peer sent more than the " + length + " bytes of chunk " + index);
        }
        content.getBytes(content.readerIndex(), data.array(), data.arrayOffset() + data.position(), n);
        data.position(data.position() + n);
    }

    @Override
    public ByteBuffer finish() throws IOException {
        if (data.hasRemaining()) {
            throw new IOException("peer sent " + data.position() + " of the " + length + " bytes of chunk " + index);
        }
        return data.flip();
    }
}
