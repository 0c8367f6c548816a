#!/usr/bin/env bash
# The composite action's run step (action.yml at the repository root): the
# caller's scenario files on the local lab, through this repository's CLI.
# Thin on purpose: the lab, the tools, the report and the exit status are
# all `cargo xtask e2e`'s; this only turns the action's inputs into its
# arguments. See docs/ci.md.
#
# Environment, as GitHub Actions sets it for a composite action's step:
#   GITHUB_ACTION_PATH    this repository, checked out at the ref the caller named
#   GITHUB_WORKSPACE      the caller's checkout: relative inputs are relative to it
#   GITHUB_OUTPUT         the step's outputs file (optional outside Actions)
#   INPUT_SCENARIOS       scenario files or folders, one per line (required)
#   INPUT_REPORT_DIR      the report folder (default: oci-e2e-report)
#   INPUT_ARGOCD_VERSION  `--argocd-version` (optional)
#   INPUT_ARGS            more `cargo xtask e2e` arguments, split on blanks (optional)
#   CARGO_TARGET_DIR      where the CLI is built (default: ~/.cache/oci-e2e-action/target)
# Exit status: the CLI's: 0 every scenario passed, 1 one failed, 2 bad input
# or a lab that could not start.
set -euo pipefail

action_path="${GITHUB_ACTION_PATH:?is not set: this script is the run step of action.yml}"
workspace="${GITHUB_WORKSPACE:?is not set: this script is the run step of action.yml}"

absolute() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$workspace" "$1" ;;
  esac
}

paths=()
while IFS= read -r line; do
  line="${line#"${line%%[![:space:]]*}"}"
  line="${line%"${line##*[![:space:]]}"}"
  if [ -n "$line" ]; then
    paths+=("$(absolute "$line")")
  fi
done <<<"${INPUT_SCENARIOS:-}"
if [ "${#paths[@]}" -eq 0 ]; then
  echo "::error title=oci-e2e::the action's 'scenarios' input is empty: name scenario files or folders of your repository, one per line" >&2
  exit 2
fi

report="$(absolute "${INPUT_REPORT_DIR:-oci-e2e-report}")"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "report-dir=$report"
    echo "junit=$report/junit.xml"
  } >>"$GITHUB_OUTPUT"
fi

# The local lab's registry and redis come from Debian/Ubuntu packages
# (REGISTRY and REDIS in harness/tools/src/versions.rs). As root the CLI
# installs them itself; a hosted runner's user is not root, so ask sudo.
if [ "$(id -u)" -ne 0 ]; then
  packages=()
  command -v docker-registry >/dev/null || command -v registry >/dev/null || packages+=(docker-registry)
  command -v redis-server >/dev/null || packages+=(redis-server)
  if [ "${#packages[@]}" -gt 0 ]; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
  fi
fi

args=(e2e --lab local "${paths[@]}" --report "$report")
if [ -n "${INPUT_ARGOCD_VERSION:-}" ]; then
  args+=(--argocd-version "$INPUT_ARGOCD_VERSION")
fi
if [ -n "${INPUT_ARGS:-}" ]; then
  read -r -a extra <<<"$INPUT_ARGS"
  args+=("${extra[@]}")
fi

# `cargo xtask` is an alias of this repository's .cargo/config.toml. The
# build goes where action.yml's cargo cache is, unless the caller chose.
cd "$action_path"
export CI="${CI:-true}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/oci-e2e-action/target}"
exec cargo xtask "${args[@]}"
