package io.chiral.api;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * What to download ({@code identifier}: a CID, or anything a protocol {@link ContentProtocol#canHandle handles}),
 * from which peers (may be empty when a protocol or, later, the DHT finds them) and into which directory.
 */
public record DownloadRequest(String identifier, List<PeerInfo> sources, Path outputDirectory) {
    public DownloadRequest {
        Objects.requireNonNull(identifier, "identifier");
        sources = sources == null ? List.of() : List.copyOf(sources);
    }
}
