#!/usr/bin/env bash
# Re-vendors the API reference renderer the gateway serves at /docs:
# Redoc's standalone bundle, from the npm registry (`npm pack` checks the
# tarball against the registry's integrity hash), pinned by version and by
# the sha256 of the file we keep. The gateway compiles it in
# (crates/vdm-gateway/assets/redoc/), so nothing is fetched at build or run
# time; this script only runs when the version changes.
#
#   scripts/vendor-redoc.sh            # check the vendored file against the pin
#   scripts/vendor-redoc.sh --update   # fetch the pinned version and copy it in
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REDOC_VERSION="2.5.4"
REDOC_SHA256="dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b"
dest=crates/vdm-gateway/assets/redoc

if [[ "${1:-}" == "--update" ]]; then
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' EXIT
  (cd "${work}" && npm pack --silent "redoc@${REDOC_VERSION}" >/dev/null && tar xzf "redoc-${REDOC_VERSION}.tgz")
  cp "${work}/package/bundles/redoc.standalone.js" "${dest}/redoc.standalone.js"
  cp "${work}/package/bundles/redoc.standalone.js.LICENSE.txt" "${dest}/THIRD-PARTY-NOTICES.txt"
  cp "${work}/package/LICENSE" "${dest}/LICENSE"
fi
echo "${REDOC_SHA256}  ${dest}/redoc.standalone.js" | sha256sum --check --quiet \
  || { echo "${dest}/redoc.standalone.js is not Redoc ${REDOC_VERSION} (sha256 mismatch)" >&2; exit 1; }
echo "Redoc ${REDOC_VERSION}: ${dest}/redoc.standalone.js matches its pin"
