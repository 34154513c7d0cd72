/**
 * The Chiral node API: content identifiers and metadata, the {@link io.chiral.api.ContentProtocol} SPI every
 * transport registers as an OSGi service, the {@link io.chiral.api.ProtocolManager} that routes identifiers
 * and runs transfers, the {@link io.chiral.api.ContentStore}, and the EventAdmin topics in
 * {@link io.chiral.api.ChiralEvents}; discovery through the {@link io.chiral.api.Dht} instances and the
 * Chiral network's {@link io.chiral.api.ContentDirectory}; the node's signing {@link io.chiral.api.NodeKey}.
 * No implementation lives here.
 */
@org.osgi.annotation.versioning.Version("0.5.0")
package io.chiral.api;
