#!/usr/bin/env python3
"""Verify a reel playback token with the origin's JWKS, as another server would.

    verify-token.py --jwks JWKS_FILE_OR_URL --video VIDEO_ID TOKEN

Prints the claims as JSON and exits 0 when the token is valid for VIDEO_ID;
prints the reason and exits 1 otherwise. This is the README's verification
example (PyJWT + cryptography, pinned in requirements.txt).
"""
import argparse
import json
import sys
import urllib.request

import jwt  # PyJWT

AUDIENCE = "reel-playback/1"


def load_jwks(source):
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as response:
            return json.load(response)
    with open(source, encoding="utf-8") as handle:
        return json.load(handle)


def verify(token, video, jwks):
    kid = jwt.get_unverified_header(token).get("kid")
    keys = {key["kid"]: key for key in jwks["keys"]}
    if kid not in keys:
        raise jwt.InvalidTokenError(f"unknown kid {kid!r}")
    key = jwt.PyJWK(keys[kid], algorithm="EdDSA")
    claims = jwt.decode(
        token,
        key=key.key,
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        options={"require": ["exp", "sub", "aud"]},
    )
    if claims["sub"] != video:
        raise jwt.InvalidTokenError("token is for another video")
    return claims


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jwks", required=True, help="JWKS file or URL (/.well-known/reel-jwks.json)")
    parser.add_argument("--video", required=True)
    parser.add_argument("token")
    args = parser.parse_args()
    try:
        claims = verify(args.token, args.video, load_jwks(args.jwks))
    except jwt.InvalidTokenError as error:
        print(f"refused: {type(error).__name__}: {error}")
        return 1
    print(json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
