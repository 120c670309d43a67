#!/usr/bin/env python3
"""Ask the mim-sender-jid sidecar who sent archived MUC messages.

Sends the given payload files (as stored by MongooseIM: Erlang term format, compressed or not,
or XML) as one batch and prints one line per file, in order:

    FILE<TAB>user@server                      the sender's bare JID
    FILE<TAB>ERROR_CODE_...<TAB>detail        why there is none

With --fields, the message's other archive columns instead (ExtractMessageFields):

    FILE<TAB>origin_id=ID|NULL|ERROR_CODE_...<TAB>is_groupchat=true|false|ERROR_CODE_...

Stubs come from clients/python/setup.sh (grpcio-tools). Example:

    .tmp/venv/bin/python clients/python/extract_sender_jid.py --address 127.0.0.1:50051 msg1.bin msg2.xml
"""
import argparse
import pathlib
import sys

import grpc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "gen"))
from mongooseim.mam.v1 import sender_jid_pb2, sender_jid_pb2_grpc  # noqa: E402

FORMATS = {
    "auto": sender_jid_pb2.PAYLOAD_FORMAT_AUTO,
    "eterm": sender_jid_pb2.PAYLOAD_FORMAT_ETERM,
    "xml": sender_jid_pb2.PAYLOAD_FORMAT_XML,
}


def channel_for(args):
    if args.ca is None:
        return grpc.insecure_channel(args.address)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pathlib.Path(args.ca).read_bytes(),
        private_key=pathlib.Path(args.key).read_bytes() if args.key else None,
        certificate_chain=pathlib.Path(args.cert).read_bytes() if args.cert else None,
    )
    return grpc.secure_channel(args.address, credentials)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=pathlib.Path, help="payload files, one archived message each")
    parser.add_argument("--address", default="127.0.0.1:50051", help="sidecar host:port (default %(default)s)")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="payload format (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds (default %(default)s)")
    parser.add_argument("--ca", help="PEM CA of the server's certificate: turns TLS on")
    parser.add_argument("--cert", help="PEM client certificate, for mutual TLS")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument("--fields", action="store_true", help="answer origin_id and is_groupchat instead of the sender")
    args = parser.parse_args()
    rpc, request_type, line = (
        ("ExtractMessageFields", sender_jid_pb2.ExtractMessageFieldsRequest, fields_line)
        if args.fields
        else ("ExtractSenderJid", sender_jid_pb2.ExtractSenderJidRequest, sender_line)
    )
    request = request_type(
        format=FORMATS[args.format],
        items=[sender_jid_pb2.Item(key=str(path), payload=path.read_bytes()) for path in args.files],
    )
    with channel_for(args) as channel:
        stub = sender_jid_pb2_grpc.SenderJidServiceStub(channel)
        try:
            response = getattr(stub, rpc)(request, timeout=args.timeout)
        except grpc.RpcError as error:
            print(f"sidecar call failed: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    for result in response.results:
        print(line(result))
    return 0


def sender_line(result):
    if result.WhichOneof("outcome") == "jid":
        return f"{result.key}\t{result.jid.bare_jid}"
    code = sender_jid_pb2.ErrorCode.Name(result.error.code)
    return f"{result.key}\t{code}\t{result.error.detail}"


def fields_line(result):
    origin = result.origin_id
    kind = origin.WhichOneof("outcome")
    if kind == "origin_id":
        origin_text = origin.origin_id
    elif kind == "none":
        origin_text = "NULL"
    else:
        origin_text = sender_jid_pb2.ErrorCode.Name(origin.error.code)
    groupchat = result.is_groupchat
    if groupchat.WhichOneof("outcome") == "is_groupchat":
        groupchat_text = "true" if groupchat.is_groupchat else "false"
    else:
        groupchat_text = sender_jid_pb2.ErrorCode.Name(groupchat.error.code)
    return f"{result.key}\torigin_id={origin_text}\tis_groupchat={groupchat_text}"


if __name__ == "__main__":
    sys.exit(main())
