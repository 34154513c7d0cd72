package io.chiral.node.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import io.chiral.api.FileId;
import io.chiral.api.FileMetadata;
import io.chiral.api.TransferProgress;

/** JSON of the control channel: API objects out, validated request fields in. */
final class ControlJson {
    static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();

    private ControlJson() {
    }

    static JsonObject metadata(FileMetadata m) {
        JsonObject o = new JsonObject();
        o.addProperty("cid", m.id().hex());
        o.addProperty("name", m.name());
        o.addProperty("size", m.size());
        o.addProperty("chunkSize", m.chunkSize());
        o.addProperty("chunks", m.chunkCount());
        o.addProperty("merkleRoot", m.merkleRoot());
        o.addProperty("mimeType", m.mimeType());
        return o;
    }

    static JsonObject progress(io.chiral.api.TransferHandle h) {
        JsonObject o = progress(h.id(), h.fileId(), h.progress());
        o.addProperty("status", h.status());
        return o;
    }

    /** A transfer's progress; {@code cid} is null while a protocol-run transfer (a torrent) does not know it. */
    static JsonObject progress(String id, FileId cid, TransferProgress p) {
        JsonObject o = new JsonObject();
        o.addProperty("id", id);
        o.addProperty("cid", cid == null ? null : cid.hex());
        o.addProperty("state", p.state().name());
        o.addProperty("name", p.name());
        o.addProperty("totalBytes", p.totalBytes());
        o.addProperty("verifiedBytes", p.verifiedBytes());
        o.addProperty("resumedBytes", p.resumedBytes());
        o.addProperty("fetchedBytes", p.fetchedBytes());
        o.addProperty("chunksTotal", p.chunksTotal());
        o.addProperty("chunksVerified", p.chunksVerified());
        o.addProperty("corruptChunks", p.corruptChunks());
        JsonObject per = new JsonObject();
        if (p.bytesPerSource() != null) {
            for (Map.Entry<String, Long> e : p.bytesPerSource().entrySet()) {
                per.addProperty(e.getKey(), e.getValue());
            }
        }
        o.add("bytesPerSource", per);
        o.add("bannedSources", strings(p.bannedSources() == null ? List.of() : p.bannedSources()));
        JsonObject dropped = new JsonObject();
        if (p.droppedSources() != null) {
            p.droppedSources().forEach(dropped::addProperty);
        }
        o.add("droppedSources", dropped);
        o.addProperty("elapsedSeconds", Math.round(p.elapsedSeconds() * 1000.0) / 1000.0);
        o.addProperty("output", p.output());
        o.addProperty("error", p.error());
        return o;
    }

    static JsonArray strings(List<String> values) {
        JsonArray a = new JsonArray();
        values.forEach(a::add);
        return a;
    }

    /** The request body as a JSON object; an empty body counts as {@code {}}. */
    static JsonObject object(String body) {
        if (body == null || body.isBlank()) {
            return new JsonObject();
        }
        JsonElement e;
        try {
            e = JsonParser.parseString(body);
        } catch (JsonParseException ex) {
            throw ControlException.badRequest("request body is not valid JSON");
        }
        if (!e.isJsonObject()) {
            throw ControlException.badRequest("request body must be a JSON object");
        }
        return e.getAsJsonObject();
    }

    static String requiredString(JsonObject o, String field, int maxLength) {
        String s = optionalString(o, field, maxLength);
        if (s == null || s.isBlank()) {
            throw ControlException.badRequest("missing field \"" + field + "\"");
        }
        return s;
    }

    /** A string field, or null when absent, null or empty. */
    static String optionalString(JsonObject o, String field, int maxLength) {
        JsonElement e = o.get(field);
        if (e == null || e.isJsonNull()) {
            return null;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw ControlException.badRequest("field \"" + field + "\" must be a string");
        }
        String s = e.getAsString();
        if (s.length() > maxLength) {
            throw ControlException.badRequest("field \"" + field + "\" is longer than " + maxLength + " characters");
        }
        return s.isEmpty() ? null : s;
    }

    /** A field holding a string or an array of strings; absent or null gives an empty list. */
    static List<String> stringList(JsonObject o, String field, int maxItems, int maxLength) {
        JsonElement e = o.get(field);
        List<String> out = new ArrayList<>();
        if (e == null || e.isJsonNull()) {
            return out;
        }
        JsonArray items;
        if (e.isJsonArray()) {
            items = e.getAsJsonArray();
        } else {
            items = new JsonArray();
            items.add(e);
        }
        if (items.size() > maxItems) {
            throw ControlException.badRequest("field \"" + field + "\" has more than " + maxItems + " entries");
        }
        for (JsonElement item : items) {
            if (!item.isJsonPrimitive() || !item.getAsJsonPrimitive().isString()) {
                throw ControlException.badRequest("field \"" + field + "\" must hold strings");
            }
            String s = item.getAsString();
            if (s.length() > maxLength) {
                throw ControlException.badRequest("an entry of \"" + field + "\" is longer than " + maxLength + " characters");
            }
            if (!s.isBlank()) {
                out.add(s.strip());
            }
        }
        return out;
    }

    static FileId cid(String text) {
        try {
            return FileId.parse(text);
        } catch (IllegalArgumentException e) {
            throw ControlException.badRequest(e.getMessage());
        }
    }
}
