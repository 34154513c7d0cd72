package io.chiral.net.internal;

import java.util.concurrent.TimeUnit;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

import io.chiral.net.NetService;
import io.netty.channel.ChannelHandler;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.traffic.GlobalTrafficShapingHandler;
import io.netty.util.concurrent.DefaultThreadFactory;

@Component(configurationPid = NetServiceImpl.PID)
public class NetServiceImpl implements NetService {
    static final String PID = "io.chiral.net";

    @ObjectClassDefinition(name = "Chiral networking", description = "Shared event loops and node-wide rate limits")
    public @interface Config {
        @AttributeDefinition(description = "Event loop threads; 0 = one per core")
        int threads() default 0;

        @AttributeDefinition(description = "Upload limit in bytes per second over all protocols; 0 = unlimited")
        long maxUploadRate() default 0;

        @AttributeDefinition(description = "Download limit in bytes per second over all protocols; 0 = unlimited")
        long maxDownloadRate() default 0;
    }

    private final EventLoopGroup group;
    private final GlobalTrafficShapingHandler shaper;
    private volatile long maxUploadRate;

    @Activate
    public NetServiceImpl(Config config) {
        int threads = config.threads() > 0 ? config.threads() : Runtime.getRuntime().availableProcessors();
        group = new MultiThreadIoEventLoopGroup(threads, new DefaultThreadFactory("chiral-net", true),
                NioIoHandler.newFactory());
        shaper = new GlobalTrafficShapingHandler(group.next(), Math.max(0, config.maxUploadRate()),
                Math.max(0, config.maxDownloadRate()), 100);
        maxUploadRate = Math.max(0, config.maxUploadRate());
    }

    @Modified
    void modified(Config config) {
        maxUploadRate = Math.max(0, config.maxUploadRate());
        shaper.configure(maxUploadRate, Math.max(0, config.maxDownloadRate()));
    }

    @Deactivate
    void deactivate() {
        shaper.release();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
    }

    @Override
    public EventLoopGroup group() {
        return group;
    }

    @Override
    public Class<? extends ServerChannel> serverChannelType() {
        return NioServerSocketChannel.class;
    }

    @Override
    public Class<? extends SocketChannel> socketChannelType() {
        return NioSocketChannel.class;
    }

    @Override
    public ChannelHandler trafficShaper() {
        return shaper;
    }

    @Override
    public long maxUploadRate() {
        return maxUploadRate;
    }
}
