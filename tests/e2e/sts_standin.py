#!/usr/bin/env python3
"""A local stand-in for AWS STS GetCallerIdentity, for rkube's IAM end-to-end tests.

It answers presigned GetCallerIdentity URLs as AWS does: the SigV4 query signature is
recomputed with botocore from the request's own query parameters and headers (so a URL
signed for another cluster id, a tampered URL or an expired one is refused like AWS refuses
it), and the caller is the principal of the signing access key.

Usage: sts_standin.py --cert CERT --key KEY --principals FILE
FILE is JSON: {"<access key id>": {"secret": ..., "arn": ..., "user_id": ..., "account": ...}}.
Prints "listening on <port>" once serving HTTPS on 127.0.0.1.
"""

import argparse
import datetime
import hmac
import json
import ssl
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# AWS accepts a presigned GetCallerIdentity URL for 15 minutes after X-Amz-Date.
VALIDITY = datetime.timedelta(minutes=15)
PRINCIPALS = {}


class StsError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def expected_signature(host, query, headers, secret):
    """The signature botocore computes for this request, with the request's own timestamp."""
    params = dict(query)
    akid, _date, region, service, _term = params["X-Amz-Credential"].split("/")
    credentials = Credentials(akid, secret, params.get("X-Amz-Security-Token"))
    signed = params["X-Amz-SignedHeaders"].split(";")
    # botocore adds the X-Amz-* parameters itself from the credentials, scope and timestamp.
    unsigned_query = [(k, v) for k, v in query if not k.startswith("X-Amz-")]
    request = AWSRequest(
        method="GET",
        url="https://%s/?%s" % (host, urlencode(unsigned_query)),
        headers={h: headers.get(h, "") for h in signed if h != "host"},
    )
    auth = SigV4QueryAuth(credentials, service, region, expires=int(params["X-Amz-Expires"]))
    request.context["timestamp"] = params["X-Amz-Date"]
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


def caller_identity(host, raw_query, headers):
    query = parse_qsl(raw_query, keep_blank_values=True)
    params = dict(query)
    if params.get("Action") != "GetCallerIdentity" or params.get("Version") != "2011-06-15":
        raise StsError(400, "InvalidAction", "Could not find operation %s for version %s" % (params.get("Action"), params.get("Version")))
    for required in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"):
        if required not in params:
            raise StsError(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
    akid = params["X-Amz-Credential"].split("/")[0]
    principal = PRINCIPALS.get(akid)
    if principal is None:
        raise StsError(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
    signed_at = datetime.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    if datetime.datetime.utcnow() > signed_at + VALIDITY:
        raise StsError(403, "ExpiredToken", "The security token included in the request is expired")
    want = expected_signature(host, query, headers, principal["secret"])
    if not hmac.compare_digest(want, params["X-Amz-Signature"]):
        raise StsError(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
    return principal


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        wants_json = "application/json" in self.headers.get("Accept", "")
        request_id = str(uuid.uuid4())
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            if url.path != "/":
                raise StsError(404, "NotFound", "no such path")
            p = caller_identity(self.headers.get("Host", ""), url.query, headers)
            if wants_json:
                body = json.dumps({"GetCallerIdentityResponse": {
                    "GetCallerIdentityResult": {"Account": p["account"], "Arn": p["arn"], "UserId": p["user_id"]},
                    "ResponseMetadata": {"RequestId": request_id}}})
            else:
                body = ('<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                        "<GetCallerIdentityResult><Arn>%s</Arn><UserId>%s</UserId><Account>%s</Account>"
                        "</GetCallerIdentityResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
                        "</GetCallerIdentityResponse>" % (p["arn"], p["user_id"], p["account"], request_id))
            self.answer(200, body, wants_json)
        except StsError as e:
            if wants_json:
                body = json.dumps({"Error": {"Code": e.code, "Message": e.message, "Type": "Sender"}, "RequestId": request_id})
            else:
                body = ("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
                        "<Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>" % (e.code, e.message, request_id))
            self.answer(e.status, body, wants_json)

    def answer(self, status, body, wants_json):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if wants_json else "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "standin")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("sts-standin: " + (fmt % args) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--principals", required=True)
    args = parser.parse_args()
    with open(args.principals) as f:
        PRINCIPALS.update(json.load(f))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("listening on %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
