package io.chiral.api;

import java.util.List;
import java.util.Optional;

/**
 * Tracks the {@link ContentProtocol} services present right now, routes identifiers to them and runs downloads
 * through the core's verifying, resumable transfer engine.
 */
public interface ProtocolManager {
    /** Protocols available now, sorted by name. */
    List<ContentProtocol> protocols();

    Optional<ContentProtocol> protocol(String name);

    /**
     * Starts (or joins, when the same CID is already downloading) a download.
     *
     * @throws IllegalArgumentException for a malformed identifier or a source whose protocol is not installed,
     *                                  with a message fit for a user
     */
    TransferHandle download(DownloadRequest request);

    Optional<TransferHandle> transfer(FileId id);

    /** Transfers of this run, including finished ones, oldest first. */
    List<TransferHandle> transfers();

    /** The transfer with this {@link TransferHandle#id() id} (a CID's hex, or a protocol's own id such as a BitTorrent info-hash). */
    default Optional<TransferHandle> transfer(String id) {
        return transfers().stream().filter(t -> t.id().equalsIgnoreCase(id.strip())).findFirst();
    }
}
