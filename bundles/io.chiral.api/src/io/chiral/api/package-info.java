/**
 * The Chiral node API: content identifiers and metadata, the {@link io.chiral.api.ContentProtocol} SPI every
 * transport registers as an OSGi service, the {@link io.chiral.api.ProtocolManager} that routes identifiers
 * and runs transfers, the {@link io.chiral.api.ContentStore}, and the EventAdmin topics in
 * {@link io.chiral.api.ChiralEvents}. No implementation lives here.
 */
@org.osgi.annotation.versioning.Version("0.2.0")
package io.chiral.api;
