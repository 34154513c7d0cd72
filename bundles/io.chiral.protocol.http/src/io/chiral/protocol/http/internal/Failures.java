package io.chiral.protocol.http.internal;

import java.io.IOException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;
import java.nio.channels.ClosedChannelException;
import java.util.Locale;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

import io.chiral.api.PeerInfo;
import io.netty.channel.ConnectTimeoutException;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.TooLongFrameException;

/** Turns what went wrong with a peer into one-line IOExceptions that name the peer: {@code host:port: reason}. */
final class Failures {
    private Failures() {
    }

    static IOException of(PeerInfo peer, String reason) {
        return new IOException(peer.address() + ": " + oneLine(reason));
    }

    static IOException of(PeerInfo peer, Throwable cause) {
        return new IOException(peer.address() + ": " + describe(peer, cause), cause);
    }

    /** Whether a failure is of the connection itself (worth sending an unanswered request again), not of the data. */
    static boolean isTransport(Throwable cause) {
        Throwable t = unwrap(cause);
        return t instanceof IOException && !(t instanceof ConnectException);
    }

    private static String describe(PeerInfo peer, Throwable cause) {
        Throwable t = unwrap(cause);
        String msg = t.getMessage() == null ? "" : t.getMessage();
        String lower = msg.toLowerCase(Locale.ROOT);
        if (t instanceof ConnectTimeoutException) {
            return "connection timed out";
        }
        if (t instanceof UnknownHostException) {
            return "unknown host " + peer.host();
        }
        if (t instanceof NoRouteToHostException) {
            return "no route to host";
        }
        if (t instanceof ConnectException) {
            return lower.contains("refused") ? "connection refused" : "cannot connect: " + withoutAddress(msg);
        }
        if (t instanceof ClosedChannelException) {
            return "connection closed";
        }
        if (t instanceof TooLongFrameException || t instanceof DecoderException) {
            return "malformed HTTP response: " + oneLine(msg.isEmpty() ? t.getClass().getSimpleName() : msg);
        }
        if (t instanceof IOException && lower.contains("reset")) {
            return "connection reset by peer";
        }
        if (t instanceof IOException && lower.contains("broken pipe")) {
            return "connection closed by peer (broken pipe)";
        }
        return msg.isEmpty() ? t.getClass().getSimpleName() : oneLine(withoutAddress(msg));
    }

    private static Throwable unwrap(Throwable cause) {
        Throwable t = cause;
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    /** Netty appends {@code : /1.2.3.4:5} to connect errors; the peer is named in front already. */
    private static String withoutAddress(String msg) {
        int i = msg.indexOf(": /");
        return (i > 0 ? msg.substring(0, i) : msg).toLowerCase(Locale.ROOT);
    }

    static String oneLine(String s) {
        return s.replace('\r', ' ').replace('\n', ' ').strip();
    }
}
