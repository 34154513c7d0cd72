package io.chiral.node.cli;

/** An error to report as one line {@code chiral: <message>} with an exit status. */
final class CliException extends Exception {
    private static final long serialVersionUID = 1L;
    /** Wrong use of the command line. */
    static final int USAGE = 2;
    /** Anything else that went wrong. */
    static final int FAILURE = 1;

    private final int exitCode;

    CliException(String message) {
        this(message, FAILURE);
    }

    CliException(String message, int exitCode) {
        super(message, null, false, false);
        this.exitCode = exitCode;
    }

    static CliException usage(String message) {
        return new CliException(message, USAGE);
    }

    int exitCode() {
        return exitCode;
    }
}
