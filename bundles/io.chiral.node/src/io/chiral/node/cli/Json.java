package io.chiral.node.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;

/** The Gson instances of the command line. */
final class Json {
    static final Gson COMPACT = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();
    static final Gson PRETTY = new GsonBuilder().disableHtmlEscaping().serializeNulls().setPrettyPrinting().create();

    private Json() {
    }
}
