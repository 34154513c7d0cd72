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

    /**
     * What the transfer is doing or waiting for when its bytes alone do not tell, in a few words for a progress line
     * (e.g. {@code fetching metadata: 2 of 5 pieces from 1 peer}, {@code waiting for peers: 2 trackers tried (1
     * failed), 14 DHT nodes asked, 0 peers known, 0 connected, 1 banned}); null when there is nothing to add.
     *
     * @since 0.5
     */
    default String status() {
        return null;
    }

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
