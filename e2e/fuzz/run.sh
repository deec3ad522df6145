#!/usr/bin/env bash
# Runs every Go fuzz target of the repository (func FuzzXxx in a _test.go
# file under cmd, pkg or e2e), one after the other, each for FUZZTIME.
# A failing input is saved under the package's testdata/fuzz by go test.
#
# Go 1.26's fuzz coordinator can report "context deadline exceeded" as a
# failure when -fuzztime runs out while a worker is mid-call on a loaded
# machine (golang/go#75804, fixed in Go 1.27). That report names no input
# and writes none, so such a run is tried again, at most twice; a run that
# writes a failing input, panics or fails any other way fails at once.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

fuzztime="${FUZZTIME:-10s}"
minimizetime="${FUZZMINIMIZETIME:-1s}"

# shutdown_race reports whether a failed run's output is only the
# coordinator's deadline report.
shutdown_race() {
	grep -qxE '[[:space:]]*context deadline exceeded' "$1" &&
		! grep -qE 'Failing input written to|^panic:|_test\.go:[0-9]+:' "$1"
}

status=0
found=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for file in $(grep -rlE --include='*_test.go' --exclude-dir=testdata '^func Fuzz[A-Za-z0-9_]*\(' cmd pkg e2e | sort); do
	pkg="./$(dirname "$file")"
	for name in $(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\([a-z_]+ \*testing\.F\).*/\1/p' "$file"); do
		found=$((found + 1))
		for try in 1 2 3; do
			echo "fuzz: $pkg $name for $fuzztime (try $try)"
			if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" "$pkg" 2>&1 | tee "$out"; then
				break
			fi
			if [[ $try -lt 3 ]] && shutdown_race "$out"; then
				echo "fuzz: $pkg $name: the coordinator's deadline report (golang/go#75804), no input found; again"
				continue
			fi
			status=1
			echo "fuzz: $pkg $name FAILED"
			break
		done
	done
done
echo "fuzz: $found targets run"
[[ $found -gt 0 ]] || exit 1
exit $status
