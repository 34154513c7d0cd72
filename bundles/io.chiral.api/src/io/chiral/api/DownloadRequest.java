package io.chiral.api;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * What to download ({@code identifier}: a CID, or anything a protocol {@link ContentProtocol#canHandle handles}),
 * from which peers (may be empty when a protocol or, later, the DHT finds them) and into which directory.
 * {@code sourceTimeout}, when not null, is how long a transfer that finds its sources itself (a torrent) may go
 * without any usable source before it fails (it stays resumable); null = the protocol's configured default,
 * {@link java.time.Duration#ZERO} = wait for ever.
 *
 * @since 0.5
 */
public record DownloadRequest(String identifier, List<PeerInfo> sources, Path outputDirectory,
        java.time.Duration sourceTimeout) {
    public DownloadRequest {
        Objects.requireNonNull(identifier, "identifier");
        sources = sources == null ? List.of() : List.copyOf(sources);
        if (sourceTimeout != null && sourceTimeout.isNegative()) {
            throw new IllegalArgumentException("negative source timeout: " + sourceTimeout);
        }
    }

    /** A request with the protocol's default source timeout. */
    public DownloadRequest(String identifier, List<PeerInfo> sources, Path outputDirectory) {
        this(identifier, sources, outputDirectory, null);
    }
}
