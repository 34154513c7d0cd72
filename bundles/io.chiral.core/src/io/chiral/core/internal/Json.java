package io.chiral.core.internal;

import java.io.IOException;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.TypeAdapter;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonWriter;

import io.chiral.api.FileId;

/** The Gson used for the store's own files. */
final class Json {
    static final Gson GSON = new GsonBuilder()
            .registerTypeAdapter(FileId.class, new TypeAdapter<FileId>() {
                @Override
                public void write(JsonWriter out, FileId value) throws IOException {
                    out.value(value == null ? null : value.hex());
                }

                @Override
                public FileId read(JsonReader in) throws IOException {
                    return FileId.parse(in.nextString());
                }
            })
            .disableHtmlEscaping()
            .setPrettyPrinting()
            .create();

    private Json() {
    }
}
