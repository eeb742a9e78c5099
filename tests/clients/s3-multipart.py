#!/usr/bin/env python3
"""Drive an S3 endpoint with the real boto3 for reel-s3's integration tests.

Runs one scenario of a presigned multipart upload and prints one JSON object
on stdout; the Rust test asserts on it. boto3 signs create/list/complete with
SigV4 headers; every part goes up with `generate_presigned_url("upload_part")`
and a plain `requests.put`, as a browser would.

Scenarios:
  upload         split --file into --part-size parts, upload, list, complete
  wrong-etag     complete with part 1's ETag altered        (expect InvalidPart)
  out-of-order   complete with the parts listed in reverse  (expect InvalidPartOrder)
  small-middle   parts of --part-size, 1000 B, rest         (expect EntityTooSmall)
  abort          abort, then PUT a part and list parts      (expect NoSuchUpload)
  wrong-secret   create with a wrong secret                 (expect SignatureDoesNotMatch)
  tamper         PUT part 1's URL with partNumber=2, then with a changed signature
  checksums      boto3's own upload_part (header-signed) with its default checksum
                 (CRC32 in current SDKs), then with ChecksumAlgorithm CRC32C,
                 CRC64NVME (a FULL_OBJECT upload, completed with the whole
                 file's CRC64NVME), SHA1 and SHA256; prints what storage echoed
  trailers       the same with the checksum in an aws-chunked trailer
                 (STREAMING-UNSIGNED-PAYLOAD-TRAILER), as boto3 sends it over
                 TLS: boto3 is made to believe the endpoint is https
  bad-checksum   part 2 with a wrong x-amz-checksum-crc32 (expect BadDigest),
                 then sent right; completion with a wrong full-object
                 CRC64NVME (expect BadDigest), then right
"""

import argparse
import base64
import json
import sys
import urllib.parse
import xml.etree.ElementTree as ElementTree

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError


def make_client(args, secret):
    return boto3.client(
        "s3",
        endpoint_url=args.endpoint,
        region_name=args.region,
        aws_access_key_id=args.access_key,
        aws_secret_access_key=secret,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )


def client_error(error):
    return {
        "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
        "code": error.response["Error"]["Code"],
        "message": error.response["Error"].get("Message", ""),
    }


def http_error(response):
    """The S3 error code and message of a plain HTTP response."""
    code, message = None, None
    try:
        root = ElementTree.fromstring(response.content)
        code, message = root.findtext("Code"), root.findtext("Message")
    except ElementTree.ParseError:
        pass
    return {"status": response.status_code, "code": code, "message": message}


def presigned_put(s3, args, upload_id, part_number, data):
    url = s3.generate_presigned_url(
        "upload_part",
        Params={"Bucket": args.bucket, "Key": args.key, "UploadId": upload_id, "PartNumber": part_number},
        ExpiresIn=900,
    )
    response = requests.put(url, data=data, timeout=60)
    return url, response


def split(data, sizes):
    chunks, offset = [], 0
    for size in sizes:
        chunks.append(data[offset : offset + size])
        offset += size
    if offset < len(data):
        chunks.append(data[offset:])
    return chunks


def upload_chunks(s3, args, upload_id, chunks):
    parts = []
    for index, chunk in enumerate(chunks):
        _, response = presigned_put(s3, args, upload_id, index + 1, chunk)
        if response.status_code != 200:
            raise SystemExit(f"part {index + 1} upload failed: {response.status_code} {response.text}")
        parts.append({"PartNumber": index + 1, "ETag": response.headers["ETag"]})
    return parts


def list_all_parts(s3, args, upload_id, page_size):
    """Every part, fetched `page_size` at a time to exercise pagination."""
    listed, pages, marker = [], 0, 0
    while True:
        page = s3.list_parts(
            Bucket=args.bucket, Key=args.key, UploadId=upload_id, MaxParts=page_size, PartNumberMarker=marker
        )
        pages += 1
        listed += [{"PartNumber": p["PartNumber"], "ETag": p["ETag"], "Size": p["Size"]} for p in page.get("Parts", [])]
        if not page["IsTruncated"]:
            return listed, pages
        marker = page["NextPartNumberMarker"]


def complete(s3, args, upload_id, parts):
    try:
        result = s3.complete_multipart_upload(
            Bucket=args.bucket, Key=args.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        return {"etag": result["ETag"]}
    except ClientError as error:
        return {"error": client_error(error)}


CHECKSUM_FIELDS = ["ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1", "ChecksumSHA256"]


def crc64nvme_b64(data):
    from awscrt import checksums

    return base64.b64encode(checksums.crc64nvme(data).to_bytes(8, "big")).decode("ascii")


def checksum_upload(s3, args, data, algorithm):
    """One multipart upload through boto3's upload_part; `algorithm` None is
    boto3's default. Returns the part checksums storage echoed and the
    completion's answer."""
    create = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    if algorithm == "CRC64NVME":
        create["ChecksumType"] = "FULL_OBJECT"
    upload_id = s3.create_multipart_upload(Bucket=args.bucket, Key=args.key, **create)["UploadId"]
    parts, echoed, payloads = [], [], []

    def record_payload(request, **_):
        payloads.append(request.headers.get("x-amz-content-sha256", b""))

    s3.meta.events.register("before-send.s3.UploadPart", record_payload)
    for index, chunk in enumerate(split(data, [args.part_size] * max(1, -(-len(data) // args.part_size)))):
        extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
        answer = s3.upload_part(
            Bucket=args.bucket, Key=args.key, UploadId=upload_id, PartNumber=index + 1, Body=chunk, **extra
        )
        fields = {name: answer[name] for name in CHECKSUM_FIELDS if name in answer}
        echoed.append(fields)
        parts.append({"PartNumber": index + 1, "ETag": answer["ETag"], **fields})
    complete_extra = {}
    if algorithm == "CRC64NVME":
        complete_extra = {"ChecksumCRC64NVME": crc64nvme_b64(data), "ChecksumType": "FULL_OBJECT"}
    s3.meta.events.unregister("before-send.s3.UploadPart", record_payload)
    result = s3.complete_multipart_upload(
        Bucket=args.bucket, Key=args.key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **complete_extra
    )
    return {
        "algorithm": algorithm,
        # How each part's body was sent: a hex SHA-256 or a STREAMING-… mode.
        "payloads": [p.decode() if isinstance(p, bytes) else p for p in payloads],
        "echoed": echoed,
        "etag": result["ETag"],
        "crc64nvme": result.get("ChecksumCRC64NVME"),
        "checksum_type": result.get("ChecksumType"),
    }


def force_trailers():
    """boto3 puts checksums in aws-chunked trailers only over https; make it
    see every endpoint as https so the loopback endpoint gets what a TLS one
    gets from the same SDK."""
    import botocore.httpchecksum

    real = botocore.httpchecksum.urlparse
    botocore.httpchecksum.urlparse = lambda url: real(url)._replace(scheme="https")


def bad_checksum(s3, args, data):
    upload_id = s3.create_multipart_upload(Bucket=args.bucket, Key=args.key)["UploadId"]
    chunks = split(data, [args.part_size] * max(1, -(-len(data) // args.part_size)))
    parts = []
    refused, listed_after_refusal = None, []
    for index, chunk in enumerate(chunks):
        if index == 1:
            try:
                s3.upload_part(
                    Bucket=args.bucket,
                    Key=args.key,
                    UploadId=upload_id,
                    PartNumber=2,
                    Body=chunk,
                    ChecksumCRC32=base64.b64encode(b"\0\0\0\0").decode(),
                )
            except ClientError as error:
                refused = client_error(error)
            listed_after_refusal, _ = list_all_parts(s3, args, upload_id, page_size=1000)
        answer = s3.upload_part(Bucket=args.bucket, Key=args.key, UploadId=upload_id, PartNumber=index + 1, Body=chunk)
        parts.append({"PartNumber": index + 1, "ETag": answer["ETag"]})
    wrong_whole = base64.b64encode(b"\0" * 8).decode()
    try:
        s3.complete_multipart_upload(
            Bucket=args.bucket,
            Key=args.key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            ChecksumCRC64NVME=wrong_whole,
            ChecksumType="FULL_OBJECT",
        )
        wrong_complete = None
    except ClientError as error:
        wrong_complete = client_error(error)
    result = s3.complete_multipart_upload(
        Bucket=args.bucket,
        Key=args.key,
        UploadId=upload_id,
        MultipartUpload={"Parts": parts},
        ChecksumCRC64NVME=crc64nvme_b64(data),
        ChecksumType="FULL_OBJECT",
    )
    return {
        "refused_part": refused,
        "listed_after_refusal": [part["PartNumber"] for part in listed_after_refusal],
        "wrong_complete": wrong_complete,
        "crc64nvme": result.get("ChecksumCRC64NVME"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--file")
    parser.add_argument("--part-size", type=int, default=5 << 20)
    args = parser.parse_args()

    s3 = make_client(args, args.secret)
    if args.scenario == "wrong-secret":
        try:
            make_client(args, args.secret + "x").create_multipart_upload(Bucket=args.bucket, Key=args.key)
            print(json.dumps({"error": None}))
        except ClientError as error:
            print(json.dumps({"error": client_error(error)}))
        return

    data = open(args.file, "rb").read() if args.file else b"x" * 1000
    if args.scenario in ("checksums", "trailers"):
        if args.scenario == "trailers":
            force_trailers()
        algorithms = [None, "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
        print(json.dumps([checksum_upload(s3, args, data, algorithm) for algorithm in algorithms]))
        return
    if args.scenario == "bad-checksum":
        print(json.dumps(bad_checksum(s3, args, data)))
        return
    upload_id = s3.create_multipart_upload(Bucket=args.bucket, Key=args.key)["UploadId"]
    n_full_parts = max(1, -(-len(data) // args.part_size))
    sizes = [args.part_size] * n_full_parts

    if args.scenario == "upload":
        parts = upload_chunks(s3, args, upload_id, split(data, sizes))
        listed, n_pages = list_all_parts(s3, args, upload_id, page_size=2)
        result = complete(s3, args, upload_id, parts)
        print(json.dumps({"parts": parts, "listed": listed, "list_pages": n_pages, **result}))
    elif args.scenario == "wrong-etag":
        parts = upload_chunks(s3, args, upload_id, split(data, sizes))
        parts[0]["ETag"] = '"' + "0" * 32 + '"'
        print(json.dumps(complete(s3, args, upload_id, parts)))
    elif args.scenario == "out-of-order":
        parts = upload_chunks(s3, args, upload_id, split(data, sizes))
        print(json.dumps(complete(s3, args, upload_id, list(reversed(parts)))))
    elif args.scenario == "small-middle":
        parts = upload_chunks(s3, args, upload_id, split(data, [args.part_size, 1000]))
        print(json.dumps({"n_parts": len(parts), **complete(s3, args, upload_id, parts)}))
    elif args.scenario == "abort":
        upload_chunks(s3, args, upload_id, [data[: args.part_size]])
        s3.abort_multipart_upload(Bucket=args.bucket, Key=args.key, UploadId=upload_id)
        _, response = presigned_put(s3, args, upload_id, 2, data[: args.part_size])
        try:
            s3.list_parts(Bucket=args.bucket, Key=args.key, UploadId=upload_id)
            list_error = None
        except ClientError as error:
            list_error = client_error(error)
        print(json.dumps({"put_after_abort": http_error(response), "list_after_abort": list_error}))
    elif args.scenario == "tamper":
        url, _ = presigned_put(s3, args, upload_id, 1, data[: args.part_size])
        other_part = requests.put(url.replace("partNumber=1", "partNumber=2"), data=b"evil", timeout=60)
        last = url[-1]
        bad_signature = requests.put(url[:-1] + ("0" if last != "0" else "1"), data=b"evil", timeout=60)
        listed, _ = list_all_parts(s3, args, upload_id, page_size=1000)
        print(
            json.dumps(
                {
                    "other_part": http_error(other_part),
                    "bad_signature": http_error(bad_signature),
                    "listed": listed,
                }
            )
        )
    else:
        sys.exit(f"unknown scenario {args.scenario!r}")


if __name__ == "__main__":
    main()
