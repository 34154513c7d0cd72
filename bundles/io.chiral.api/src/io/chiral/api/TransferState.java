package io.chiral.api;

/** Life cycle of a download. */
public enum TransferState {
    /** Looking up metadata or waiting for a protocol that can reach a source. */
    RESOLVING,
    DOWNLOADING,
    PAUSED,
    /** All chunks verified; checking the whole file against its CID and moving it into place. */
    VERIFYING,
    COMPLETED,
    FAILED,
    CANCELLED;

    public boolean isFinal() {
        return this == COMPLETED || this == FAILED || this == CANCELLED;
    }
}
