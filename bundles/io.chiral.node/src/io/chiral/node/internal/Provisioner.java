package io.chiral.node.internal;

import java.net.URI;
import java.util.List;

/** Installs and removes features (protocol plugins) in the running node from a p2 update site. */
public interface Provisioner {
    /** Installs {@code featureId} from {@code repository}; returns the symbolic names of the bundles now active. */
    List<String> install(URI repository, String featureId) throws Exception;

    /** Uninstalls {@code featureId}; returns the symbolic names of the bundles removed. */
    List<String> uninstall(String featureId) throws Exception;

    /** Features installed as roots of this node's p2 profile ({@code id version}). */
    List<String> installedFeatures();
}
