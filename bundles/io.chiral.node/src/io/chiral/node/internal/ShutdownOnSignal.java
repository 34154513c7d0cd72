package io.chiral.node.internal;

import java.util.logging.Logger;

import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.BundleException;
import org.osgi.framework.Constants;
import org.osgi.framework.launch.Framework;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;

/**
 * Ctrl-C (SIGINT) or SIGTERM stops the framework the orderly way, so every component deactivates: downloads
 * checkpoint, sockets close, {@code control.json} is removed. Without this the JVM would exit around a running
 * framework.
 */
@Component(immediate = true)
public class ShutdownOnSignal {
    private static final Logger LOG = Logger.getLogger(ShutdownOnSignal.class.getName());
    static final long STOP_TIMEOUT_MILLIS = 20_000;

    private final Thread hook;

    @Activate
    public ShutdownOnSignal(BundleContext context) {
        Bundle system = context.getBundle(Constants.SYSTEM_BUNDLE_ID);
        hook = new Thread(() -> stop(system), "chiral-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    private static void stop(Bundle system) {
        if (system.getState() != Bundle.ACTIVE && system.getState() != Bundle.STARTING) {
            return;
        }
        LOG.info("signal received: stopping the node");
        try {
            system.stop();
            if (system instanceof Framework f) {
                f.waitForStop(STOP_TIMEOUT_MILLIS);
            }
        } catch (BundleException | InterruptedException | IllegalStateException e) {
            LOG.warning("orderly stop failed: " + e);
        }
    }

    @Deactivate
    void deactivate() {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException alreadyShuttingDown) {
            // we are running inside the hook's stop(); nothing to remove
        }
    }
}
