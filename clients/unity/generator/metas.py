#!/usr/bin/env python3
"""Writes the Unity .meta file of every file and folder of the package
that lacks one; with --check, only lists the missing ones and fails.

Unity ignores files without a .meta inside an immutable package (one
installed from a git URL), so the package must ship them. Each GUID is
derived from the file's path, so running this again, or on another
machine, writes the same files. Folders ending in `~` (Samples~) and
dot files are not imported by Unity and get none; neither do the
generator and check script, which are not assets.
"""

import hashlib
import os
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SKIP = {"generator", "check.sh"}


def guid(relative):
    return hashlib.md5(("vdm-unity:" + relative).encode("utf-8")).hexdigest()


def meta_text(relative, is_dir):
    g = guid(relative)
    if is_dir:
        return "fileFormatVersion: 2\nguid: %s\nfolderAsset: yes\nDefaultImporter:\n  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n" % g
    if relative.endswith(".cs"):
        return ("fileFormatVersion: 2\nguid: %s\nMonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n"
                "  defaultReferences: []\n  executionOrder: 0\n  icon: {instanceID: 0}\n  userData: \n"
                "  assetBundleName: \n  assetBundleVariant: \n") % g
    if relative.endswith(".asmdef"):
        return "fileFormatVersion: 2\nguid: %s\nAssemblyDefinitionImporter:\n  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n" % g
    if relative == "package.json":
        return "fileFormatVersion: 2\nguid: %s\nPackageManifestImporter:\n  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n" % g
    return "fileFormatVersion: 2\nguid: %s\nTextScriptImporter:\n  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n" % g


def assets():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and not d.endswith("~") and (rel_dir != "." or d not in SKIP))
        for d in dirnames:
            yield os.path.normpath(os.path.join(rel_dir, d)), True
        for f in sorted(filenames):
            if f.startswith(".") or f.endswith(".meta") or (rel_dir == "." and f in SKIP):
                continue
            yield os.path.normpath(os.path.join(rel_dir, f)), False


def main(argv):
    check = "--check" in argv
    missing = []
    for relative, is_dir in assets():
        path = os.path.join(ROOT, relative + ".meta")
        if os.path.exists(path):
            continue
        missing.append(relative)
        if not check:
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(meta_text(relative.replace(os.sep, "/"), is_dir))
    if check and missing:
        for m in missing:
            print("missing %s.meta" % m)
        return 1
    if not check:
        print("wrote %d .meta files" % len(missing))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
