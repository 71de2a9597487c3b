"""The operator-facing text files written into a deploy package (README.txt, licenses/README.txt)."""

from __future__ import annotations

from inferpack.deploy.manifest import TIME_FORMAT, Manifest


def licenses_readme(name: str) -> str:
    return f"""\
Drop the license file for this machine here as {name}.lic, then run, from the package folder:

    python3 install.py lu {name}

No license yet? `python3 install.py fingerprint --out licenses/request.json` writes this
machine's license request: send it to your vendor. (Files you put in this folder are yours;
everything else in the package is checked against its signed manifest.)
"""


def package_readme(manifest: Manifest) -> str:
    name, version = manifest.deploy_name, manifest.model_version
    gpu = " with an NVIDIA GPU and the NVIDIA container runtime" if manifest.gpu else ""
    header = f"""\
inferpack deploy package {name} {version} ({manifest.package_type} package)
created {manifest.created.strftime(TIME_FORMAT)}, inferpack {manifest.inferpack_version}
server image {manifest.image.tag} ({manifest.image.id})
vendor key id {manifest.key_id}

Check this vendor key id, and the sha256sum of the .tar.gz, against your delivery note first:
they are what proves the package comes from your vendor.

Needs: Linux x86_64, python3.11 and a running Docker Engine{gpu}. No network.
"""
    if manifest.package_type == "update":
        return (
            header
            + f"""
This is an update package: it carries the new model, not the server image. From the folder of
the package that installed {name}, run

    python3 install.py update {name} /path/to/{name}-{version}.tar.gz

It checks this package against the vendor key recorded when {name} was installed, keeps the
current version serving, starts this one, and goes back to the current one if it is not healthy.
It needs the server image already in Docker (it is, if the full package of that release was
installed here): {manifest.image.tag}
"""
        )
    port = " [--port 8080]" + (" [--gpu 0]" if manifest.gpu else "")
    return (
        header
        + f"""
1. Unpack it in a fresh folder (done, if you are reading this), and go there.
2. Verify the package and load its server image into Docker:
       bash original/download.sh
   It checks the vendor signature and the SHA-256 of every file, and loads nothing if any
   check fails.
3. Get a license for this machine:
       python3 install.py fingerprint --out licenses/request.json
   send licenses/request.json to your vendor, and save the license you get back as
   licenses/{name}.lic
4. Install and start the service:
       python3 install.py install {name}{port}
5. Later: python3 install.py status {name} | list | update | rollback | lu | remove {name}
   (python3 install.py --help).

Something wrong? From this folder, or anywhere after `tar vxf trouble_shooting.tar`:
       bash trouble_shooting/trouble_shooting.sh [--bundle support.tar.gz]
   It checks every installed service and prints PASS/WARN/FAIL with the next step; the
   bundle is what to send your vendor.

Work root: every installed service lives under one folder, /opt/inferpack/work unless you
choose another with --work-root DIR or INFERPACK_WORK_ROOT=DIR (the same for every command,
download.sh and trouble_shooting.sh included): its versions, license, logs, start/start-1.sh,
and the Python environment install.py makes (.inferpack/, shared by packages with the same
wheels).
"""
    )
