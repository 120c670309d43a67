// Command extract-sender-jid asks the mim-sender-jid sidecar who sent archived MUC messages.
//
// It sends the given payload files (as MongooseIM stored them: Erlang term format, compressed or
// not, or XML) as one batch and prints one line per file, in order:
//
//	FILE<TAB>user@server                  the sender's bare JID
//	FILE<TAB>ERROR_CODE_...<TAB>detail    why there is none
//
// With -fields, the message's other archive columns instead (ExtractMessageFields):
//
//	FILE<TAB>origin_id=ID|NULL|ERROR_CODE_...<TAB>is_groupchat=true|false|ERROR_CODE_...
//
// Build it with `bash clients/go/setup.sh` (pinned plugins, stubs generated into gen/), then:
//
//	.tmp/go-bin/extract-sender-jid --address 127.0.0.1:50051 msg1.bin msg2.xml
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	mamv1 "mim-sender-jid/clients/go/gen/mongooseim/mam/v1"
)

var formats = map[string]mamv1.PayloadFormat{
	"auto":  mamv1.PayloadFormat_PAYLOAD_FORMAT_AUTO,
	"eterm": mamv1.PayloadFormat_PAYLOAD_FORMAT_ETERM,
	"xml":   mamv1.PayloadFormat_PAYLOAD_FORMAT_XML,
}

func main() {
	address := flag.String("address", "127.0.0.1:50051", "sidecar host:port")
	format := flag.String("format", "auto", "payload format: auto, eterm or xml")
	timeout := flag.Duration("timeout", 30*time.Second, "deadline of the call")
	ca := flag.String("ca", "", "PEM CA of the server's certificate: turns TLS on")
	cert := flag.String("cert", "", "PEM client certificate, for mutual TLS")
	key := flag.String("key", "", "PEM private key of -cert")
	fields := flag.Bool("fields", false, "answer origin_id and is_groupchat instead of the sender")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: extract-sender-jid [flags] FILE...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	batchFormat, ok := formats[*format]
	if !ok || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}

	var items []*mamv1.Item
	for _, file := range flag.Args() {
		payload, err := os.ReadFile(file)
		if err != nil {
			fail(err)
		}
		items = append(items, &mamv1.Item{Key: file, Payload: payload})
	}

	creds := insecure.NewCredentials()
	if *ca != "" {
		tlsConfig, err := tlsConfigFor(*ca, *cert, *key)
		if err != nil {
			fail(err)
		}
		creds = credentials.NewTLS(tlsConfig)
	}
	conn, err := grpc.NewClient(*address, grpc.WithTransportCredentials(creds))
	if err != nil {
		fail(err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := mamv1.NewSenderJidServiceClient(conn)
	if *fields {
		printFields(ctx, client, &mamv1.ExtractMessageFieldsRequest{Format: batchFormat, Items: items})
		return
	}
	response, err := client.ExtractSenderJid(ctx, &mamv1.ExtractSenderJidRequest{Format: batchFormat, Items: items})
	if err != nil {
		s := status.Convert(err)
		fmt.Fprintf(os.Stderr, "sidecar call failed: %s: %s\n", s.Code(), s.Message())
		os.Exit(1)
	}
	for _, result := range response.GetResults() {
		switch outcome := result.GetOutcome().(type) {
		case *mamv1.Result_Jid:
			fmt.Printf("%s\t%s\n", result.GetKey(), outcome.Jid.GetBareJid())
		case *mamv1.Result_Error:
			fmt.Printf("%s\t%s\t%s\n", result.GetKey(), outcome.Error.GetCode(), outcome.Error.GetDetail())
		}
	}
}

func printFields(ctx context.Context, client mamv1.SenderJidServiceClient, request *mamv1.ExtractMessageFieldsRequest) {
	response, err := client.ExtractMessageFields(ctx, request)
	if err != nil {
		s := status.Convert(err)
		fmt.Fprintf(os.Stderr, "sidecar call failed: %s: %s\n", s.Code(), s.Message())
		os.Exit(1)
	}
	for _, result := range response.GetResults() {
		origin := "NULL"
		switch outcome := result.GetOriginId().GetOutcome().(type) {
		case *mamv1.OriginIdAnswer_OriginId:
			origin = outcome.OriginId
		case *mamv1.OriginIdAnswer_Error:
			origin = outcome.Error.GetCode().String()
		}
		groupchat := ""
		switch outcome := result.GetIsGroupchat().GetOutcome().(type) {
		case *mamv1.IsGroupchatAnswer_IsGroupchat:
			groupchat = fmt.Sprint(outcome.IsGroupchat)
		case *mamv1.IsGroupchatAnswer_Error:
			groupchat = outcome.Error.GetCode().String()
		}
		fmt.Printf("%s\torigin_id=%s\tis_groupchat=%s\n", result.GetKey(), origin, groupchat)
	}
}

func tlsConfigFor(caFile, certFile, keyFile string) (*tls.Config, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	config := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "extract-sender-jid:", err)
	os.Exit(1)
}
