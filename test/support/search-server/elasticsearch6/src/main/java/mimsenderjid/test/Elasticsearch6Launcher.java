package mimsenderjid.test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.elasticsearch.cli.Terminal;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.transport.Netty4Plugin;

/**
 * Starts a single Elasticsearch 6.8 node from Maven Central jars, for tests only.
 *
 * The stock main class refuses to run as root and expects a distribution's plugin layout; a
 * Node subclass that passes the HTTP/transport module as a classpath plugin needs neither (the
 * approach of Elasticsearch's own MockNode). Arguments are node settings, each `key=value`; the
 * node stops (and flushes) when the JVM receives SIGTERM.
 */
public final class Elasticsearch6Launcher {
    private static final String CONSOLE_LOGGING = String.join("\n",
        "status = error",
        "appender.console.type = Console",
        "appender.console.name = console",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%c{1}] %m%n",
        "rootLogger.level = warn",
        "rootLogger.appenderRef.console.ref = console",
        // The line the launcher's caller may wait for in the log is printed at info.
        "logger.node.name = org.elasticsearch.node.Node",
        "logger.node.level = info",
        "");

    private static final class ClasspathPluginNode extends Node {
        ClasspathPluginNode(Environment environment) {
            super(environment, List.of(Netty4Plugin.class), true);
        }

        @Override
        protected void registerDerivedNodeNameWithLogger(String nodeName) {
            LogConfigurator.setNodeName(nodeName);
        }
    }

    public static void main(String[] args) throws Exception {
        Settings.Builder builder = Settings.builder();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("expected key=value, got " + arg);
            builder.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        Settings settings = builder.build();
        String home = settings.get("path.home");
        if (home == null) throw new IllegalArgumentException("path.home=DIR is required");
        Path homePath = Path.of(home);
        for (String dir : List.of("config", "data", "logs", "plugins")) Files.createDirectories(homePath.resolve(dir));
        Path logging = homePath.resolve("config").resolve("log4j2.properties");
        if (!Files.exists(logging)) Files.writeString(logging, CONSOLE_LOGGING, StandardCharsets.UTF_8);

        String nodeName = settings.get("node.name", "mim-test");
        // 6.8: no default-node-name supplier; the name is a plain setting.
        Settings named = Settings.builder().put(settings).put("node.name", nodeName).build();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(named, Terminal.DEFAULT, Map.of(), homePath.resolve("config"));
        LogConfigurator.setNodeName(nodeName);
        LogConfigurator.configure(environment);

        Node node = new ClasspathPluginNode(environment);
        // The node's own threads are daemons: the main thread keeps the JVM alive until SIGTERM.
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (IOException e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "stop-node"));
        node.start();
        stopped.await();
    }
}
