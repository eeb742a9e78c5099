"""Uploads FILE to a tus ENDPOINT with tuspy in two sessions, as reel's tus
integration tests do: the first uploader stops at --stop-at bytes, then a
new client and uploader resume from the upload URL alone.

Usage: tuspy-upload.py FILE ENDPOINT --stop-at BYTES --chunk-size BYTES [--checksum]
The API key is read from REEL_API_KEY. Prints {"url": ..., "offset_after_stop": ...}.
"""

import argparse
import json
import os
import sys

from tusclient import client


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("endpoint")
    parser.add_argument("--stop-at", type=int, required=True)
    parser.add_argument("--chunk-size", type=int, required=True)
    parser.add_argument("--checksum", action="store_true")
    args = parser.parse_args()
    key = os.environ.get("REEL_API_KEY")
    if not key:
        sys.exit("REEL_API_KEY is not set")
    headers = {"Authorization": f"Bearer {key}"}

    first = client.TusClient(args.endpoint, headers=headers)
    uploader = first.uploader(
        args.file,
        chunk_size=args.chunk_size,
        upload_checksum=args.checksum,
        metadata={"filename": os.path.basename(args.file)},
    )
    uploader.upload(stop_at=args.stop_at)
    url = uploader.url
    offset_after_stop = uploader.offset

    # A new process would know only the URL: a fresh client and uploader.
    second = client.TusClient(args.endpoint, headers=headers)
    resumed = second.uploader(
        args.file, url=url, chunk_size=args.chunk_size, upload_checksum=args.checksum
    )
    offset_on_resume = resumed.offset
    resumed.upload()
    print(
        json.dumps(
            {
                "url": url,
                "offset_after_stop": offset_after_stop,
                "offset_on_resume": offset_on_resume,
                "final_offset": resumed.offset,
            }
        )
    )


if __name__ == "__main__":
    main()
