#!/usr/bin/env bash
# Re-creates the pinned KEDA files of this directory from the Go module
# github.com/kedacore/keda/v2 at $KEDA_VERSION, fetched with `go mod download`
# (the Go toolchain checks the module against its checksum database), and
# checks them against README.md's hashes. Not run by CI (it needs the
# network); tests/py/test_k8s_manifests.py checks the committed files'
# hashes against README.md.
#
#   deploy/k8s/schemas/fetch-keda.sh            # v2.21.0, as pinned
#   KEDA_VERSION=v2.22.0 deploy/k8s/schemas/fetch-keda.sh --update
#
# --update writes the files of another version (then update README.md's
# version and hashes, and run the tests).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${KEDA_VERSION:-v2.21.0}
update=${1:-}
module=github.com/kedacore/keda/v2
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export GOPATH="$tmp/gopath" GOMODCACHE="$tmp/modcache" GOFLAGS=-mod=mod
cd "$tmp"
info=$(go mod download -json "$module@$version")
dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<<"$info")
sum=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Sum"])' <<<"$info")
echo "fetched $module@$version ($sum)" >&2

crd="$dir/config/crd/bases/keda.sh_scaledobjects.yaml"
scaler="$dir/pkg/scalers/kafka_scaler.go"
out="$tmp/out"
mkdir -p "$out"
cp "$crd" "$out/keda.sh_scaledobjects.yaml"
# The Kafka scaler's trigger parameters, from the `keda:"name=...,order=..."`
# tags of its kafkaMetadata struct.
python3 - "$scaler" "$version" >"$out/keda-kafka-scaler-params.json" <<'EOF'
import json, re, sys
src = open(sys.argv[1]).read()
body = re.search(r"type kafkaMetadata struct \{(.*?)\n\}", src, re.S).group(1)
params = []
for tag in re.findall(r'`keda:"([^"]*)"`', body):
    p = {}
    for part in tag.split(","):
        k, _, v = part.partition("=")
        p[k.strip()] = v.strip() if v else True
    entry = {"name": p["name"], "order": p["order"].split(";")}
    if "default" in p:
        entry["default"] = p["default"]
    if "enum" in p:
        entry["enum"] = p["enum"].split(";")
    entry["optional"] = bool(p.get("optional")) or "default" in p
    params.append(entry)
json.dump({"source": "github.com/kedacore/keda/v2@%s pkg/scalers/kafka_scaler.go (kafkaMetadata)"
           % sys.argv[2], "params": params}, sys.stdout, indent=1)
print()
EOF

if [ "$update" = --update ]; then
	cp "$out"/* "$here/"
	echo "wrote $here; now put into README.md: module sum $sum and:" >&2
	(cd "$here" && sha256sum keda.sh_scaledobjects.yaml keda-kafka-scaler-params.json) >&2
	exit 0
fi
# As pinned: the module sum and both files must be README.md's.
grep -qF "$sum" "$here/README.md" || { echo "module sum $sum is not README.md's" >&2; exit 1; }
for f in keda.sh_scaledobjects.yaml keda-kafka-scaler-params.json; do
	cmp -s "$out/$f" "$here/$f" || { echo "$f differs from $module@$version" >&2; exit 1; }
	h=$(sha256sum "$here/$f" | cut -d' ' -f1)
	grep -qF "$h" "$here/README.md" || { echo "$f: sha256 $h is not README.md's" >&2; exit 1; }
done
echo "deploy/k8s/schemas matches $module@$version" >&2
