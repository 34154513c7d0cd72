package io.chiral.fuzz;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.net.spi.InetAddressResolver;
import java.net.spi.InetAddressResolverProvider;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * A JDK name-service provider (JEP 418, registered in {@code META-INF/services}) that turns any host-name lookup
 * made while a decoder runs on fuzzer input into a finding: a decoder of untrusted bytes must never make the node
 * resolve a name (DNS traffic, and seconds of latency, on a peer's say-so). Outside {@link #during} lookups go to
 * the JDK's own resolver.
 */
public final class NoLookups extends InetAddressResolverProvider {
    private static final ThreadLocal<Boolean> ACTIVE = ThreadLocal.withInitial(() -> false);

    /** Runs {@code decode} with name lookups forbidden on this thread. */
    public static <T> T during(Callable<T> decode) throws Exception {
        ACTIVE.set(true);
        try {
            return decode.call();
        } finally {
            ACTIVE.set(false);
        }
    }

    @Override
    public InetAddressResolver get(Configuration configuration) {
        InetAddressResolver builtin = configuration.builtinResolver();
        return new InetAddressResolver() {
            @Override
            public Stream<InetAddress> lookupByName(String host, LookupPolicy policy) throws UnknownHostException {
                forbid("name lookup of '" + host + "'");
                return builtin.lookupByName(host, policy);
            }

            @Override
            public String lookupByAddress(byte[] addr) throws UnknownHostException {
                forbid("reverse lookup");
                return builtin.lookupByAddress(addr);
            }
        };
    }

    private static void forbid(String what) {
        if (ACTIVE.get()) {
            // an Error: InetAddress turns a RuntimeException from a resolver into an UnknownHostException
            throw new AssertionError(what + " while decoding untrusted input");
        }
    }

    @Override
    public String name() {
        return "chiral-fuzz-no-lookups";
    }
}
