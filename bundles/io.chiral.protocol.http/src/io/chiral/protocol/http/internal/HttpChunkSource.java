package io.chiral.protocol.http.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

import io.chiral.api.ChunkSource;
import io.chiral.api.FileMetadata;
import io.chiral.api.PeerInfo;

/**
 * The chunks of one file at one HTTP peer. Keeps up to {@code maxConnections} keep-alive connections, opened as
 * requests need them, and runs one {@code GET /file/{cid}/chunk/{i}} at a time on each; requests beyond the free
 * connections wait in a queue. When a connection cannot be established and no other one is left, every waiting
 * request fails with the reason.
 */
final class HttpChunkSource implements ChunkSource, ClientConnection.Listener {
    private final HttpClient client;
    private final FileMetadata meta;
    private final PeerInfo peer;
    private final int maxConnections;
    private final long timeoutMillis;

    // guarded by this
    private final ArrayDeque<Exchange<?>> queue = new ArrayDeque<>();
    private final ArrayDeque<ClientConnection> idle = new ArrayDeque<>();
    private final Set<ClientConnection> connections = new HashSet<>();
    private final Set<ClientConnection> connecting = new HashSet<>();
    private boolean closed;
    /** How many connections may be open; lowered after a failed connect until one succeeds again. */
    private int ceiling;

    HttpChunkSource(HttpClient client, FileMetadata meta, PeerInfo peer, int maxConnections, long timeoutMillis) {
        this.client = client;
        this.meta = meta;
        this.peer = peer;
        this.maxConnections = maxConnections;
        this.timeoutMillis = timeoutMillis;
        this.ceiling = maxConnections;
    }

    @Override
    public PeerInfo peer() {
        return peer;
    }

    @Override
    public int maxOutstanding() {
        return maxConnections;
    }

    @Override
    public CompletionStage<ByteBuffer> fetchChunk(int index) {
        if (index < 0 || index >= meta.chunkCount()) {
            return CompletableFuture.failedFuture(new IllegalArgumentException("chunk " + index + " out of range: "
                    + meta.id().shortHex() + " has " + meta.chunkCount() + " chunks"));
        }
        int length = meta.chunkLength(index);
        Exchange<ByteBuffer> exchange = new Exchange<>(Route.PREFIX + meta.id().hex() + "/chunk/" + index, false,
                () -> new ChunkReader(index, length));
        synchronized (this) {
            if (closed) {
                return CompletableFuture.failedFuture(Failures.of(peer, "source closed"));
            }
            queue.add(exchange);
        }
        dispatch();
        return exchange.result().minimalCompletionStage();
    }

    /** Gives waiting requests to idle connections and opens connections for the rest, within the limit. */
    private void dispatch() {
        List<Runnable> actions = new ArrayList<>();
        synchronized (this) {
            if (closed) {
                return;
            }
            while (!queue.isEmpty() && !idle.isEmpty()) {
                ClientConnection c = idle.poll();
                Exchange<?> e = queue.poll();
                actions.add(() -> c.send(e));
            }
            int wanted = queue.size() - connecting.size();
            while (wanted-- > 0 && connections.size() < ceiling) {
                ClientConnection c = new ClientConnection(peer, timeoutMillis, this);
                connections.add(c);
                connecting.add(c);
                actions.add(() -> client.connect(c));
            }
        }
        actions.forEach(Runnable::run);
    }

    @Override
    public void connected(ClientConnection c) {
        makeIdle(c, true);
    }

    @Override
    public void idle(ClientConnection c) {
        makeIdle(c, false);
    }

    private void makeIdle(ClientConnection c, boolean fresh) {
        boolean usable;
        synchronized (this) {
            if (fresh) {
                connecting.remove(c);
                ceiling = maxConnections;
            }
            usable = !closed && connections.contains(c);
            if (usable) {
                idle.add(c);
            }
        }
        if (usable) {
            dispatch();
        } else {
            c.close("source closed");
        }
    }

    @Override
    public void retry(Exchange<?> e) {
        boolean queued;
        synchronized (this) {
            queued = !closed;
            if (queued) {
                queue.addFirst(e);
            }
        }
        if (queued) {
            dispatch();
        } else {
            e.fail(Failures.of(peer, "source closed"));
        }
    }

    @Override
    public void closed(ClientConnection c, IOException cause) {
        List<Exchange<?>> doomed = List.of();
        synchronized (this) {
            connections.remove(c);
            idle.remove(c);
            boolean neverConnected = connecting.remove(c);
            if (neverConnected && cause != null) {
                ceiling = Math.max(1, connections.size());
                if (connections.isEmpty()) {
                    doomed = new ArrayList<>(queue);
                    queue.clear();
                }
            }
        }
        for (Exchange<?> e : doomed) {
            e.fail(cause);
        }
        dispatch();
    }

    @Override
    public void close() {
        List<Exchange<?>> doomed;
        List<ClientConnection> open;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            doomed = new ArrayList<>(queue);
            queue.clear();
            open = new ArrayList<>(connections);
            connections.clear();
            connecting.clear();
            idle.clear();
        }
        IOException why = Failures.of(peer, "source closed");
        for (Exchange<?> e : doomed) {
            e.fail(why);
        }
        for (ClientConnection c : open) {
            c.close("source closed");
        }
        client.forget(this);
    }
}
