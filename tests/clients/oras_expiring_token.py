"""Drives the oras Python SDK through a push whose token expires half way. The SDK starts with
SHORT_TOKEN as its bearer token, which Berth accepts until the Unix time EXPIRES_AT, and uploads
the blob in chunks over a link that holds every chunk after the first until that time has
passed, so that the token runs out between two chunks. The chunk refused with 401 must reach the
SDK as a 401, not as a broken pipe: the SDK then reports that authentication is required, and a
new session that logs in (with LOGIN_TOKEN as its password, for which Berth hands out a fresh
token) pushes the artifact whole.

Usage: oras_expiring_token.py HOST LOGIN_TOKEN SHORT_TOKEN EXPIRES_AT REPOSITORY WORKDIR
Prints one JSON object: the answers to every chunk, what the first push raised, the blob's
digest and the layers of the manifest pulled back.
"""

import hashlib
import json
import os
import sys
import time

import oras.client

CHUNK = 16 * 1024 * 1024
CHUNKS = 3


def session(
    host: str, chunks: list, auth_backend: str, hold_until: float = 0.0
) -> oras.client.OrasClient:
    """An oras client whose link holds every chunk after the first until `hold_until`,
    recording each chunk's answer."""
    client = oras.client.OrasClient(
        hostname=host, insecure=True, tls_verify=False, auth_backend=auth_backend
    )
    request = client.session.request
    sent = []

    def slow_link(method, url, **kwargs):
        if method == "PATCH":
            if sent:
                time.sleep(max(0.0, hold_until - time.time()))
            sent.append(url)
        response = request(method, url, **kwargs)
        if method == "PATCH":
            chunks.append(response.status_code)
        return response

    client.session.request = slow_link
    return client


def main() -> None:
    host, login_token, short_token, expires_at, repository, workdir = sys.argv[1:7]
    os.chdir(workdir)
    blob = os.urandom(CHUNK * CHUNKS)
    with open("layer.bin", "wb") as handle:
        handle.write(blob)
    target = f"{host}/{repository}:v1"
    chunks = []

    expiring = session(host, chunks, "token", hold_until=float(expires_at) + 1.5)
    expiring.auth.set_token_auth(short_token)
    try:
        expiring.push(files=["layer.bin"], target=target, do_chunked=True, chunk_size=CHUNK)
        first_error = None
    except Exception as error:  # what the SDK raised, reported to the test as it is
        first_error = f"{type(error).__name__}: {error}"

    # This SDK asks for a new token only after a 403, and registries answer a token of too
    # narrow a scope with 401, so the new session sends its login as Basic credentials.
    client = session(host, chunks, "basic")
    client.login(username="oras", password=login_token, hostname=host, tls_verify=False)
    pushed = client.push(files=["layer.bin"], target=target, do_chunked=True, chunk_size=CHUNK)
    manifest = client.get_manifest(target)
    print(
        json.dumps(
            {
                "first_error": first_error,
                "push_status": pushed.status_code,
                "chunks": chunks,
                "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
                "layers": [layer["digest"] for layer in manifest["layers"]],
            }
        )
    )


if __name__ == "__main__":
    main()
