package io.chiral.node.internal;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

/**
 * What the control channel answers: a status, a JSON body and an optional action to run once the response has
 * been flushed to the client (used to stop the framework only after the client got its answer).
 */
record ControlResponse(int status, JsonElement body, Runnable afterFlush) {

    static ControlResponse ok(JsonElement body) {
        return new ControlResponse(200, body, null);
    }

    static ControlResponse error(int status, String message) {
        JsonObject o = new JsonObject();
        o.addProperty("error", oneLine(message));
        return new ControlResponse(status, o, null);
    }

    /** First line of {@code message}, at most 500 characters, never empty. */
    static String oneLine(String message) {
        if (message == null || message.isBlank()) {
            return "unexpected error";
        }
        String s = message.strip();
        int nl = s.indexOf('\n');
        if (nl >= 0) {
            s = s.substring(0, nl).strip();
        }
        s = s.replace('\r', ' ').replace('\t', ' ');
        return s.length() <= 500 ? s : s.substring(0, 497) + "...";
    }
}
