package io.chiral.api;

import java.util.Map;

/**
 * A snapshot of a download.
 *
 * @param state           where it is in its life cycle
 * @param name            file name (may be the CID while metadata is unknown)
 * @param totalBytes      file size, -1 while unknown
 * @param verifiedBytes   bytes written and verified so far, including those resumed from disk
 * @param resumedBytes    verified bytes found on disk when the transfer (re)started: not fetched again
 * @param fetchedBytes    bytes received from peers in this run, good or bad
 * @param chunksTotal     chunk count, -1 while unknown
 * @param chunksVerified  chunks verified so far
 * @param corruptChunks   chunks that failed verification and were fetched again
 * @param bytesPerSource  verified bytes per source ({@link PeerInfo#label()})
 * @param bannedSources   sources dropped for sending bad data
 * @param droppedSources  sources this download gave up on (banned ones included), each with the reason: sent bad
 *                        data, failed repeatedly (gone, refused), or stalled (connected but silent)
 * @param elapsedSeconds  seconds since this run of the transfer started
 * @param output          final path once completed, else null
 * @param error           reason of failure, else null
 */
public record TransferProgress(TransferState state, String name, long totalBytes, long verifiedBytes,
        long resumedBytes, long fetchedBytes, int chunksTotal, int chunksVerified, int corruptChunks,
        Map<String, Long> bytesPerSource, java.util.List<String> bannedSources, Map<String, String> droppedSources,
        double elapsedSeconds, String output, String error) {
}
