package io.chiral.node.cli;

import java.io.PrintStream;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code chiral} command-line client: {@code chiral [--data DIR] [--json] <command> [args]}. It runs outside
 * OSGi with only the JDK and Gson, and talks to the node of {@code DIR} over its loopback control channel
 * (see {@link ControlClient}). Exit status: 0 success, 1 failure, 2 wrong usage; every error is one line
 * {@code chiral: <message>} on standard error.
 */
public final class Main {
    private final PrintStream out;
    private final PrintStream err;
    private final String envData;
    private final String home;

    Main(PrintStream out, PrintStream err, String envData, String home) {
        this.out = out;
        this.err = err;
        this.envData = envData;
        this.home = home;
    }

    public static void main(String[] args) {
        int status = new Main(System.out, System.err, System.getenv("CHIRAL_DATA"), System.getProperty("user.home")).run(args);
        System.out.flush();
        System.err.flush();
        System.exit(status);
    }

    int run(String[] args) {
        try {
            return dispatch(args);
        } catch (CliException e) {
            err.println("chiral: " + oneLine(e.getMessage()));
            return e.exitCode();
        } catch (RuntimeException e) {
            err.println("chiral: unexpected error: " + oneLine(String.valueOf(e)));
            return CliException.FAILURE;
        }
    }

    private int dispatch(String[] args) throws CliException {
        String data = null;
        boolean json = false;
        boolean help = false;
        List<String> rest = new ArrayList<>();
        boolean options = true;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (options && a.equals("--")) {
                options = false;
            } else if (options && a.equals("--data")) {
                if (i + 1 >= args.length) {
                    throw CliException.usage("--data needs a directory");
                }
                data = args[++i];
            } else if (options && a.startsWith("--data=")) {
                data = a.substring("--data=".length());
            } else if (options && a.equals("--json")) {
                json = true;
            } else if (options && (a.equals("--help") || a.equals("-h"))) {
                help = true;
            } else {
                rest.add(a);
            }
        }
        if (help || (!rest.isEmpty() && rest.get(0).equals("help"))) {
            out.println(Commands.USAGE);
            return 0;
        }
        if (rest.isEmpty()) {
            throw CliException.usage("no command given (see chiral help)");
        }
        return new Commands(dataDir(data), json, out, err).run(rest.get(0), rest.subList(1, rest.size()));
    }

    private Path dataDir(String given) throws CliException {
        String d = given;
        if (d == null || d.isBlank()) {
            d = envData != null && !envData.isBlank() ? envData : Path.of(home, ".chiral").toString();
        }
        try {
            return Path.of(d).toAbsolutePath().normalize();
        } catch (InvalidPathException e) {
            throw CliException.usage("not a directory name: '" + d + "'");
        }
    }

    private static String oneLine(String s) {
        if (s == null || s.isBlank()) {
            return "unexpected error";
        }
        String t = s.strip();
        int nl = t.indexOf('\n');
        return nl < 0 ? t : t.substring(0, nl).strip();
    }
}
