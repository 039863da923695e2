"""Drives the oras Python SDK against a Berth registry: push an artifact, pull it back, and
attach a second artifact that refers to the first (OCI 1.1 subject).

Usage: oras_roundtrip.py HOST TOKEN REPOSITORY WORKDIR
Prints one JSON object with what it pushed and pulled.
"""

import json
import os
import sys

import oras.client
import oras.oci


def main() -> None:
    host, token, repository, workdir = sys.argv[1:5]
    os.chdir(workdir)
    client = oras.client.OrasClient(
        hostname=host, insecure=True, tls_verify=False, auth_backend="basic"
    )
    client.login(username="oras", password=token, hostname=host, tls_verify=False)

    with open("artifact.txt", "w", encoding="utf-8") as handle:
        handle.write("hello from oras\n")
    target = f"{host}/{repository}:v1"
    pushed = client.push(files=["artifact.txt"], target=target)
    manifest = client.get_manifest(target)

    os.makedirs("pulled", exist_ok=True)
    files = client.pull(target=target, outdir="pulled")
    with open(files[0], encoding="utf-8") as handle:
        content = handle.read()

    with open("signature.txt", "w", encoding="utf-8") as handle:
        handle.write("a signature\n")
    subject = oras.oci.Subject.from_manifest(manifest)
    attached = client.push(
        files=["signature.txt"],
        target=f"{host}/{repository}:signature",
        subject=subject,
        manifest_annotations={"org.example.kind": "signature"},
    )
    print(
        json.dumps(
            {
                "push_status": pushed.status_code,
                "attach_status": attached.status_code,
                "subject": subject.digest,
                "pulled": content,
                "layers": [layer["digest"] for layer in manifest["layers"]],
            }
        )
    )


if __name__ == "__main__":
    main()
