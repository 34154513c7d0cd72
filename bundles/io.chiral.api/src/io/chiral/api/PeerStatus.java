package io.chiral.api;

import java.util.Objects;
import java.util.Set;

/**
 * One connected peer of a transfer as its protocol sees it: who it is, flags ({@code chiral} for a peer that
 * identified itself as a Chiral node, {@code seed} for one that has everything, {@code incoming}, {@code choked}
 * when it chokes us, {@code choking} when we choke it, {@code interested}, {@code snubbed}), its current rates in
 * bytes per second, the bytes exchanged so far, and how much of the content it has (0..1).
 */
public record PeerStatus(PeerInfo peer, Set<String> flags, long downloadRate, long uploadRate, long downloaded,
        long uploaded, double progress) {
    public PeerStatus {
        Objects.requireNonNull(peer, "peer");
        flags = Set.copyOf(flags);
    }
}
