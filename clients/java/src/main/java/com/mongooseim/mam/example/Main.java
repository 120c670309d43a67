package com.mongooseim.mam.example;

import com.mongooseim.mam.v1.ExtractMessageFieldsRequest;
import com.mongooseim.mam.v1.ExtractMessageFieldsResponse;
import com.mongooseim.mam.v1.ExtractSenderJidRequest;
import com.mongooseim.mam.v1.ExtractSenderJidResponse;
import com.mongooseim.mam.v1.FieldsResult;
import com.mongooseim.mam.v1.Item;
import com.mongooseim.mam.v1.PayloadFormat;
import com.mongooseim.mam.v1.Result;
import com.mongooseim.mam.v1.SenderJidServiceGrpc;
import com.google.protobuf.ByteString;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Asks the mim-sender-jid sidecar who sent archived MUC messages.
 *
 * <p>Sends the given payload files (as MongooseIM stored them: Erlang term format, compressed or
 * not, or XML) as one batch and prints one line per file, in order: {@code FILE<TAB>user@server},
 * or {@code FILE<TAB>ERROR_CODE_...<TAB>detail}. With {@code --fields}, the message's other archive
 * columns instead (ExtractMessageFields): {@code FILE<TAB>origin_id=ID|NULL|ERROR_CODE_...<TAB>is_groupchat=true|false|ERROR_CODE_...}.
 *
 * <pre>java -jar clients/java/target/extract-sender-jid.jar [--address HOST:PORT] [--format auto|eterm|xml]
 *     [--timeout SECONDS] [--ca FILE [--cert FILE --key FILE]] [--fields] FILE...</pre>
 */
public final class Main {
  private static final Map<String, PayloadFormat> FORMATS = Map.of(
      "auto", PayloadFormat.PAYLOAD_FORMAT_AUTO,
      "eterm", PayloadFormat.PAYLOAD_FORMAT_ETERM,
      "xml", PayloadFormat.PAYLOAD_FORMAT_XML);

  private static final String USAGE = "usage: extract-sender-jid [--address HOST:PORT] [--format auto|eterm|xml]"
      + " [--timeout SECONDS] [--ca FILE [--cert FILE --key FILE]] [--fields] FILE...";

  public static void main(String[] args) throws Exception {
    String address = "127.0.0.1:50051";
    String format = "auto";
    double timeoutSeconds = 30;
    String ca = null;
    String cert = null;
    String key = null;
    boolean fields = false;
    List<String> files = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      boolean hasValue = i + 1 < args.length;
      switch (arg) {
        case "--address" -> address = hasValue ? args[++i] : usage();
        case "--format" -> format = hasValue ? args[++i] : usage();
        case "--timeout" -> timeoutSeconds = Double.parseDouble(hasValue ? args[++i] : usage());
        case "--ca" -> ca = hasValue ? args[++i] : usage();
        case "--cert" -> cert = hasValue ? args[++i] : usage();
        case "--key" -> key = hasValue ? args[++i] : usage();
        case "--fields" -> fields = true;
        default -> {
          if (arg.startsWith("--")) usage();
          files.add(arg);
        }
      }
    }
    PayloadFormat batchFormat = FORMATS.get(format);
    if (batchFormat == null || files.isEmpty()) usage();

    List<Item> items = new ArrayList<>();
    for (String file : files) {
      items.add(Item.newBuilder().setKey(file).setPayload(ByteString.copyFrom(Files.readAllBytes(Path.of(file)))).build());
    }
    ExtractSenderJidRequest.Builder request = ExtractSenderJidRequest.newBuilder().setFormat(batchFormat).addAllItems(items);

    // UTF-8 whatever the locale: JIDs are Unicode, and a C/POSIX locale would print them as "?".
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    ManagedChannel channel = Grpc.newChannelBuilder(address, credentials(ca, cert, key)).build();
    try {
      if (fields) {
        printFields(out, SenderJidServiceGrpc.newBlockingStub(channel)
            .withDeadlineAfter((long) (timeoutSeconds * 1000), TimeUnit.MILLISECONDS)
            .extractMessageFields(ExtractMessageFieldsRequest.newBuilder().setFormat(batchFormat).addAllItems(items).build()));
        return;
      }
      ExtractSenderJidResponse response = SenderJidServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter((long) (timeoutSeconds * 1000), TimeUnit.MILLISECONDS)
          .extractSenderJid(request.build());
      for (Result result : response.getResultsList()) {
        switch (result.getOutcomeCase()) {
          case JID -> out.println(result.getKey() + "\t" + result.getJid().getBareJid());
          case ERROR -> out.println(result.getKey() + "\t" + result.getError().getCode() + "\t" + result.getError().getDetail());
          default -> out.println(result.getKey() + "\tOUTCOME_NOT_SET");
        }
      }
    } catch (StatusRuntimeException e) {
      System.err.println("sidecar call failed: " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
      System.exit(1);
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static void printFields(PrintStream out, ExtractMessageFieldsResponse response) {
    for (FieldsResult result : response.getResultsList()) {
      String origin = switch (result.getOriginId().getOutcomeCase()) {
        case ORIGIN_ID -> result.getOriginId().getOriginId();
        case NONE -> "NULL";
        case ERROR -> result.getOriginId().getError().getCode().toString();
        default -> "OUTCOME_NOT_SET";
      };
      String groupchat = switch (result.getIsGroupchat().getOutcomeCase()) {
        case IS_GROUPCHAT -> Boolean.toString(result.getIsGroupchat().getIsGroupchat());
        case ERROR -> result.getIsGroupchat().getError().getCode().toString();
        default -> "OUTCOME_NOT_SET";
      };
      out.println(result.getKey() + "\torigin_id=" + origin + "\tis_groupchat=" + groupchat);
    }
  }

  private static ChannelCredentials credentials(String ca, String cert, String key) throws IOException {
    if (ca == null) return InsecureChannelCredentials.create();
    TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder().trustManager(new File(ca));
    if (cert != null) tls.keyManager(new File(cert), new File(key));
    return tls.build();
  }

  private static String usage() {
    System.err.println(USAGE);
    System.exit(2);
    return null;
  }
}
