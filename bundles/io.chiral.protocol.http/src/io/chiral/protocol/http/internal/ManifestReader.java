package io.chiral.protocol.http.internal;

import java.io.ByteArrayOutputStream;
import java.io.IOException;

import io.chiral.api.FileMetadata;
import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.HttpResponse;

/** Reads the body of {@code GET /file/{cid}/manifest}, at most {@link #MAX_BYTES}, and parses it. */
final class ManifestReader implements ResponseReader<FileMetadata> {
    /** Largest manifest accepted: 64 MiB (about a million chunk hashes). */
    static final int MAX_BYTES = 64 * 1024 * 1024;
    private static final int INITIAL = 16 * 1024;

    private ByteArrayOutputStream data;

    @Override
    public void head(HttpResponse response) throws IOException {
        long announced = ResponseReader.contentLength(response);
        if (announced > MAX_BYTES) {
            throw new IOException("manifest of " + announced + " bytes exceeds the limit of " + MAX_BYTES + " bytes");
        }
        data = new ByteArrayOutputStream(announced >= 0 ? (int) Math.min(announced, INITIAL * 64L) : INITIAL);
    }

    @Override
    public void body(ByteBuf content) throws IOException {
        int n = content.readableBytes();
        if (n > MAX_BYTES - data.size()) {
            throw new IOException("manifest exceeds the limit of " + MAX_BYTES + " bytes");
        }
        content.getBytes(content.readerIndex(), data, n);
    }

    @Override
    public FileMetadata finish() throws IOException {
        return Manifest.decode(data.toByteArray());
    }
}
