package io.chiral.protocol.http.internal;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.google.gson.stream.JsonWriter;
import com.google.gson.stream.MalformedJsonException;

import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufOutputStream;

/**
 * The JSON form of {@link FileMetadata} served at {@code /file/{cid}/manifest}:
 * {@code {"cid","name","size","chunkSize","chunks":[hex...],"merkleRoot","mimeType"}}. Parsing is strict: every
 * field must be present once with the right JSON type; unknown fields are skipped.
 */
final class Manifest {
    private static final Pattern LOCATION = Pattern.compile("at line \\d+ column \\d+");
    private Manifest() {
    }

    /** Encodes {@code meta} as UTF-8 JSON into a new buffer the caller owns. */
    static ByteBuf encode(FileMetadata meta, ByteBufAllocator alloc) {
        ByteBuf buf = alloc.buffer(256 + 67 * meta.chunkCount());
        try (JsonWriter w = new JsonWriter(new OutputStreamWriter(new ByteBufOutputStream(buf), StandardCharsets.UTF_8))) {
            w.beginObject();
            w.name("cid").value(meta.id().hex());
            w.name("name").value(meta.name());
            w.name("size").value(meta.size());
            w.name("chunkSize").value(meta.chunkSize());
            w.name("chunks").beginArray();
            for (String h : meta.chunkHashes()) {
                w.value(h);
            }
            w.endArray();
            w.name("merkleRoot").value(meta.merkleRoot());
            w.name("mimeType").value(meta.mimeType());
            w.endObject();
        } catch (IOException e) {
            buf.release();
            throw new UncheckedIOException("cannot encode manifest of " + meta.id().shortHex(), e);
        }
        return buf;
    }

    /**
     * Decodes a manifest.
     *
     * @throws IOException with a one-line reason when the JSON is malformed, a field is missing or mistyped, or
     *                     the values do not make a valid {@link FileMetadata}
     */
    static FileMetadata decode(byte[] json) throws IOException {
        String cid = null;
        String name = null;
        String merkleRoot = null;
        String mimeType = null;
        Long size = null;
        Integer chunkSize = null;
        List<String> chunks = null;
        try (JsonReader r = new JsonReader(new InputStreamReader(new ByteArrayInputStream(json), StandardCharsets.UTF_8))) {
            expect(r, JsonToken.BEGIN_OBJECT, "its top level");
            r.beginObject();
            Set<String> seen = new HashSet<>();
            while (r.hasNext()) {
                String field = r.nextName();
                if (!seen.add(field)) {
                    throw new IOException("manifest has field '" + Route.abbreviate(field) + "' twice");
                }
                switch (field) {
                    case "cid" -> cid = string(r, field);
                    case "name" -> name = string(r, field);
                    case "merkleRoot" -> merkleRoot = string(r, field);
                    case "mimeType" -> mimeType = string(r, field);
                    case "size" -> size = integer(r, field, Long.MAX_VALUE);
                    case "chunkSize" -> chunkSize = (int) integer(r, field, Integer.MAX_VALUE);
                    case "chunks" -> chunks = hashes(r);
                    default -> r.skipValue();
                }
            }
            r.endObject();
            if (r.peek() != JsonToken.END_DOCUMENT) {
                throw new IOException("manifest has data after its closing brace");
            }
        } catch (IllegalStateException | NumberFormatException e) {
            throw new IOException("malformed manifest: " + e.getMessage());
        } catch (MalformedJsonException | EOFException e) {
            Matcher where = LOCATION.matcher(String.valueOf(e.getMessage()));
            throw new IOException("malformed manifest JSON" + (where.find() ? " " + where.group() : ""));
        }
        require(cid, "cid");
        require(name, "name");
        require(size, "size");
        require(chunkSize, "chunkSize");
        require(chunks, "chunks");
        require(merkleRoot, "merkleRoot");
        require(mimeType, "mimeType");
        if (!FileId.isCid(cid)) {
            throw new IOException("manifest field 'cid' is not a CID: '" + Route.abbreviate(cid) + "'");
        }
        try {
            return new FileMetadata(FileId.parse(cid), name, size, chunkSize, chunks, merkleRoot.toLowerCase(Locale.ROOT),
                    mimeType);
        } catch (IllegalArgumentException e) {
            throw new IOException("invalid manifest: " + e.getMessage());
        }
    }

    private static void expect(JsonReader r, JsonToken token, String what) throws IOException {
        JsonToken actual = r.peek();
        if (actual != token) {
            throw new IOException("manifest: " + what + " must be " + describe(token) + ", not " + describe(actual));
        }
    }

    private static String string(JsonReader r, String field) throws IOException {
        expect(r, JsonToken.STRING, "field '" + field + "'");
        return r.nextString();
    }

    private static long integer(JsonReader r, String field, long max) throws IOException {
        expect(r, JsonToken.NUMBER, "field '" + field + "'");
        String text = r.nextString();
        if (text.isEmpty() || !text.chars().allMatch(c -> c >= '0' && c <= '9') || text.length() > 19) {
            throw new IOException("manifest field '" + field + "' must be a non-negative integer, not " + Route.abbreviate(text));
        }
        long v = Long.parseLong(text);
        if (v > max) {
            throw new IOException("manifest field '" + field + "' is too large: " + text);
        }
        return v;
    }

    private static List<String> hashes(JsonReader r) throws IOException {
        expect(r, JsonToken.BEGIN_ARRAY, "field 'chunks'");
        List<String> out = new ArrayList<>();
        r.beginArray();
        while (r.hasNext()) {
            if (out.size() >= FileMetadata.MAX_CHUNKS) {
                throw new IOException("manifest lists more than " + FileMetadata.MAX_CHUNKS + " chunk hashes");
            }
            expect(r, JsonToken.STRING, "every entry of 'chunks'");
            String h = r.nextString();
            if (!FileId.isCid(h)) {
                throw new IOException("manifest chunk hash " + out.size() + " is not 64 hex characters");
            }
            out.add(h.toLowerCase(Locale.ROOT));
        }
        r.endArray();
        return out;
    }

    private static void require(Object value, String field) throws IOException {
        if (value == null) {
            throw new IOException("manifest lacks field '" + field + "'");
        }
    }

    private static String describe(JsonToken t) {
        return switch (t) {
            case BEGIN_OBJECT -> "an object";
            case BEGIN_ARRAY -> "an array";
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            default -> t.name().toLowerCase(Locale.ROOT);
        };
    }
}
