#!/usr/bin/env python3
"""Upload a file's parts into an existing reel upload with the real boto3.

The upload was created with reel's API (POST /v1/uploads), which names the
storage target: endpoint, bucket, key and S3 upload id. As an operator tool
holding the embedded endpoint's credentials, boto3 presigns each part
(generate_presigned_url("upload_part")), the parts go up with plain
`requests.put`, and boto3 lists them (header-signed ListParts). Prints
{"parts": [{"part_number", "etag", "size"}]} for reel's complete call.

Usage: s3-parts-for-upload.py FILE ENDPOINT BUCKET KEY UPLOAD_ID PART_SIZE
The secret is read from REEL_S3_SECRET, the access key id from REEL_S3_ACCESS_KEY.
"""

import json
import os
import sys

import boto3
import requests
from botocore.config import Config


def main():
    path, endpoint, bucket, key, upload_id, part_size = sys.argv[1:7]
    part_size = int(part_size)
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=os.environ["REEL_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["REEL_S3_SECRET"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    with open(path, "rb") as source:
        number = 1
        while True:
            chunk = source.read(part_size)
            if not chunk:
                break
            url = s3.generate_presigned_url(
                "upload_part",
                Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
                ExpiresIn=900,
            )
            response = requests.put(url, data=chunk, timeout=60)
            if response.status_code != 200:
                sys.exit(f"part {number}: {response.status_code} {response.text}")
            number += 1
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    parts = [
        {"part_number": part["PartNumber"], "etag": part["ETag"].strip('"'), "size": part["Size"]}
        for part in listed.get("Parts", [])
    ]
    print(json.dumps({"parts": parts}))


if __name__ == "__main__":
    main()
