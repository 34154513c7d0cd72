package io.chiral.api;

import java.nio.file.Path;
import java.util.concurrent.CompletionStage;

/** A running (or finished) download, as returned by {@link ProtocolManager#download}. */
public interface TransferHandle {
    /**
     * The CID this transfer downloads. A transfer run by a protocol itself (BitTorrent: a torrent whose pieces are
     * verified by SHA-1) learns its CID only once its content is complete and stored; until then this is
     * {@code null} and {@link #id()} names the transfer.
     */
    FileId fileId();

    /** Stable id of this transfer: the CID's hex, or for a protocol-run transfer its own id (a BitTorrent info-hash). */
    default String id() {
        return fileId().hex();
    }

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
