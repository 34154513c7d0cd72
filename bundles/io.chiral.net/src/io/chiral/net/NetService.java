package io.chiral.net;

import io.netty.channel.ChannelHandler;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.socket.SocketChannel;

/**
 * Shared Netty resources of a node. Protocol bundles build their bootstraps on {@link #group()} instead of
 * creating threads of their own, and add {@link #trafficShaper()} first in every peer pipeline so that the
 * node-wide rate limits hold across protocols. Closing channels is the caller's job; the event loops belong to
 * this service and stop with the {@code io.chiral.net} bundle.
 */
public interface NetService {
    /** Event loops for all TCP and UDP channels of the node. */
    EventLoopGroup group();

    Class<? extends ServerChannel> serverChannelType();

    Class<? extends SocketChannel> socketChannelType();

    /**
     * A sharable handler enforcing the node-wide upload and download limits (bytes per second, 0 = unlimited).
     * Add it at the head of peer pipelines (not of the loopback control channel).
     */
    ChannelHandler trafficShaper();

    /** Node-wide upload limit in bytes per second, 0 when unlimited. */
    long maxUploadRate();
}
