package io.chiral.api;

import java.nio.file.Path;
import java.util.concurrent.CompletionStage;

/** A running (or finished) download, as returned by {@link ProtocolManager#download}. */
public interface TransferHandle {
    /** Stable id of this transfer: the CID it downloads. */
    FileId fileId();

    TransferProgress progress();

    default TransferState state() {
        return progress().state();
    }

    /** Stops requesting chunks; verified chunks stay on disk. */
    void pause();

    void resume();

    /** Stops and deletes the partial file. */
    void cancel();

    /** Completes with the final path of the verified file, or exceptionally with the reason of failure. */
    CompletionStage<Path> completion();
}
