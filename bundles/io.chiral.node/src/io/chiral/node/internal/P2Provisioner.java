package io.chiral.node.internal;

import java.net.URI;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.logging.Logger;

import org.eclipse.core.runtime.IProgressMonitor;
import org.eclipse.core.runtime.IStatus;
import org.eclipse.core.runtime.NullProgressMonitor;
import org.eclipse.equinox.internal.provisional.configurator.Configurator;
import org.eclipse.equinox.p2.core.IProvisioningAgent;
import org.eclipse.equinox.p2.engine.IProfile;
import org.eclipse.equinox.p2.engine.IProfileRegistry;
import org.eclipse.equinox.p2.metadata.IInstallableUnit;
import org.eclipse.equinox.p2.operations.InstallOperation;
import org.eclipse.equinox.p2.operations.ProfileModificationJob;
import org.eclipse.equinox.p2.operations.ProvisioningJob;
import org.eclipse.equinox.p2.operations.ProvisioningSession;
import org.eclipse.equinox.p2.operations.UninstallOperation;
import org.eclipse.equinox.p2.query.IQueryResult;
import org.eclipse.equinox.p2.query.QueryUtil;
import org.eclipse.equinox.p2.repository.artifact.IArtifactRepositoryManager;
import org.eclipse.equinox.p2.repository.metadata.IMetadataRepository;
import org.eclipse.equinox.p2.repository.metadata.IMetadataRepositoryManager;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.wiring.FrameworkWiring;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * Provisioning through p2, the way the Eclipse IDE installs plugins: resolve the feature against this node's own
 * profile ({@code SELF}), run the plan (bundles are fetched into the install and the profile updated), then
 * apply the new configuration to the running framework with the simple configurator, which installs, starts or
 * uninstalls bundles without a restart. Only offered when the node runs from a p2-managed install (the product).
 */
@Component(service = Provisioner.class)
public class P2Provisioner implements Provisioner {
    private static final Logger LOG = Logger.getLogger(P2Provisioner.class.getName());
    private static final String GROUP = ".feature.group";

    private final IProvisioningAgent agent;
    private final Configurator configurator;
    private final BundleContext context;

    @Activate
    public P2Provisioner(@Reference(target = "(agent.current=true)") IProvisioningAgent agent,
            @Reference Configurator configurator, BundleContext context) {
        this.agent = agent; // the agent of the running system, registered by org.eclipse.equinox.p2.core
        if (agent.getService(IProfileRegistry.class) == null) {
            throw new IllegalStateException("this runtime has no p2 profile to provision");
        }
        this.configurator = configurator;
        this.context = context;
    }

    private static String iuId(String featureId) {
        return featureId.endsWith(GROUP) ? featureId : featureId + GROUP;
    }

    @Override
    public synchronized List<String> install(URI repository, String featureId) throws Exception {
        IProgressMonitor monitor = new NullProgressMonitor();
        IMetadataRepositoryManager mrm = agent.getService(IMetadataRepositoryManager.class);
        IArtifactRepositoryManager arm = agent.getService(IArtifactRepositoryManager.class);
        IMetadataRepository repo;
        try {
            repo = mrm.loadRepository(repository, monitor);
            arm.loadRepository(repository, monitor);
        } catch (Exception e) {
            throw new IllegalArgumentException("cannot read update site " + repository + ": " + e.getMessage(), e);
        }
        IQueryResult<IInstallableUnit> found = repo.query(QueryUtil.createLatestQuery(QueryUtil.createIUQuery(iuId(featureId))), monitor);
        if (found.isEmpty()) {
            throw new IllegalArgumentException("update site " + repository + " has no feature " + featureId);
        }
        Set<String> before = bundleNames();
        ProvisioningSession session = new ProvisioningSession(agent);
        InstallOperation op = new InstallOperation(session, found.toUnmodifiableSet());
        op.setProfileId(IProfileRegistry.SELF);
        op.getProvisioningContext().setMetadataRepositories(repository);
        op.getProvisioningContext().setArtifactRepositories(repository);
        run(op.resolveModal(monitor), op.getProvisioningJob(monitor), "install " + featureId, monitor);
        apply();
        List<String> added = new ArrayList<>(bundleNames());
        added.removeAll(before);
        LOG.info("installed " + featureId + " from " + repository + ": " + added);
        return added;
    }

    @Override
    public synchronized List<String> uninstall(String featureId) throws Exception {
        IProgressMonitor monitor = new NullProgressMonitor();
        IProfile profile = agent.getService(IProfileRegistry.class).getProfile(IProfileRegistry.SELF);
        IQueryResult<IInstallableUnit> found = profile.query(QueryUtil.createIUQuery(iuId(featureId)), monitor);
        if (found.isEmpty()) {
            throw new IllegalArgumentException("feature " + featureId + " is not installed");
        }
        Set<String> before = bundleNames();
        UninstallOperation op = new UninstallOperation(new ProvisioningSession(agent), found.toUnmodifiableSet());
        op.setProfileId(IProfileRegistry.SELF);
        run(op.resolveModal(monitor), op.getProvisioningJob(monitor), "uninstall " + featureId, monitor);
        apply();
        List<String> removed = new ArrayList<>(before);
        removed.removeAll(bundleNames());
        LOG.info("uninstalled " + featureId + ": " + removed);
        return removed;
    }

    private static void run(IStatus resolution, ProvisioningJob job, String what, IProgressMonitor monitor) {
        if (resolution.getSeverity() == IStatus.ERROR || resolution.getSeverity() == IStatus.CANCEL || job == null) {
            throw new IllegalStateException("cannot " + what + ": " + flatten(resolution));
        }
        if (job instanceof ProfileModificationJob pmj) {
            pmj.setRestartPolicy(ProvisioningJob.RESTART_NONE);
        }
        IStatus result = job.runModal(monitor);
        if (result.getSeverity() == IStatus.ERROR || result.getSeverity() == IStatus.CANCEL) {
            throw new IllegalStateException("cannot " + what + ": " + flatten(result));
        }
    }

    /** Makes the running framework match the profile: installs/starts new bundles, uninstalls removed ones. */
    private void apply() throws Exception {
        configurator.applyConfiguration();
        FrameworkWiring wiring = context.getBundle(0).adapt(FrameworkWiring.class);
        java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
        wiring.refreshBundles(null, e -> done.countDown());
        done.await(30, java.util.concurrent.TimeUnit.SECONDS);
    }

    private Set<String> bundleNames() {
        Set<String> names = new HashSet<>();
        for (Bundle b : context.getBundles()) {
            if (b.getState() != Bundle.UNINSTALLED) {
                names.add(b.getSymbolicName());
            }
        }
        return names;
    }

    @Override
    public List<String> installedFeatures() {
        IProfile profile = agent.getService(IProfileRegistry.class).getProfile(IProfileRegistry.SELF);
        List<String> out = new ArrayList<>();
        if (profile == null) {
            return out;
        }
        for (IInstallableUnit iu : profile.query(QueryUtil.createIUGroupQuery(), new NullProgressMonitor())) {
            if (iu.getId().endsWith(GROUP)) {
                out.add(iu.getId().substring(0, iu.getId().length() - GROUP.length()) + " " + iu.getVersion());
            }
        }
        out.sort(null);
        return out;
    }

    private static String flatten(IStatus s) {
        StringBuilder b = new StringBuilder(s.getMessage());
        for (IStatus c : s.getChildren()) {
            if (c.getSeverity() >= IStatus.WARNING) {
                b.append("; ").append(flatten(c));
            }
        }
        return b.toString();
    }
}
