#!/usr/bin/env bash
# Builds the local control-plane binaries from the pinned tools modules in this
# directory and caches them outside the repository. Prints the cache directory.
# A complete cache (marked by .complete) is reused as is.
set -euo pipefail

command -v go >/dev/null 2>&1 || { echo "missing prerequisite: the go command (Go 1.26 or newer)" >&2; exit 1; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s_version=v1.37.2
k8s_minor=37
etcd_version=v3.7.0
kwok_version=v0.8.0

dir="${SERIN_TESTBIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/serin/testbin/k8s-${k8s_version}-etcd-${etcd_version}-kwok-${kwok_version}}"
if [[ -f "${dir}/.complete" ]]; then
	echo "${dir}"
	exit 0
fi
mkdir -p "${dir}/bin" "${dir}/kwok-stages"
trap 'echo "could not build the local control plane (see the errors above; the Go module proxy must be reachable)" >&2' ERR
echo "building the local control plane from source into ${dir}: first time only, about 10 minutes on an idle 2-core machine (up to 30 under load)" >&2
start=${SECONDS}

# Without these the servers report v0.0.0-master, which clients reject.
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${k8s_minor} -X k8s.io/component-base/version.gitTreeState=clean"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
	echo "[$((SECONDS - start))s] building ${cmd} ${k8s_version}" >&2
	(cd "${here}" && CGO_ENABLED=0 go build -trimpath -ldflags "${ldflags}" -o "${dir}/bin/${cmd}" "k8s.io/kubernetes/cmd/${cmd}")
done
echo "[$((SECONDS - start))s] building etcd ${etcd_version}" >&2
(cd "${here}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${dir}/bin/etcd" go.etcd.io/etcd/server/v3)
echo "[$((SECONDS - start))s] building kwok ${kwok_version}" >&2
(cd "${here}/kwok" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${dir}/bin/kwok" sigs.k8s.io/kwok/cmd/kwok)

# kwok's stage definitions ship inside its module; keep the ones the harness uses.
kwok_dir="$(cd "${here}/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
for stage in node/fast node/heartbeat pod/fast; do
	for f in "${kwok_dir}/kustomize/stage/${stage}"/*.yaml; do
		[[ "$(basename "$f")" == kustomization.yaml ]] && continue
		cp "$f" "${dir}/kwok-stages/${stage//\//-}-$(basename "$f")"
	done
done
chmod -R u+w "${dir}/kwok-stages"
touch "${dir}/.complete"
echo "[$((SECONDS - start))s] local control plane built" >&2
echo "${dir}"
