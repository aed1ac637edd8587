#!/usr/bin/env bash
# Fetches the jars of the Apache Kafka broker that scripts/services/kafka.sh runs,
# once, from Maven Central (scripts/kafka/pom.xml: org.apache.kafka:kafka_2.13 and
# its runtime dependencies, plus log4j2), into
#   ${XDG_CACHE_HOME:-~/.cache}/dtk/kafka-VERSION/jars/
# and prints that directory. Idempotent and offline-safe once cached: a complete
# cache (its .complete marker) is used as it is, Maven is not run. VERSION is
# ${DTK_KAFKA_VERSION:-4.4.0} (docs/fleet-ground.md says why).
#
#   scripts/kafka/fetch.sh            # prints .../dtk/kafka-4.4.0/jars
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${DTK_KAFKA_VERSION:-4.4.0}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dtk/kafka-$version
jars=$cache/jars
if [ -f "$cache/.complete" ] && [ -f "$jars/kafka_2.13-$version.jar" ]; then
	echo "$jars"
	exit 0
fi
command -v mvn >/dev/null || {
	echo "kafka/fetch.sh: mvn is missing (scripts/install-services.sh installs maven)" >&2
	exit 1
}
mkdir -p "$cache"
# One fetch at a time (services.sh may start kafka while install-services.sh fetches).
exec 8>"$cache/.lock"
flock -w 600 8 || {
	echo "kafka/fetch.sh: another fetch holds $cache/.lock" >&2
	exit 1
}
if [ -f "$cache/.complete" ] && [ -f "$jars/kafka_2.13-$version.jar" ]; then
	echo "$jars"
	exit 0
fi
echo "kafka/fetch.sh: fetching Apache Kafka $version jars into $jars" >&2
tmp=$cache/jars.tmp.$$
rm -rf "$tmp"
if ! mvn -q -B -f "$here/pom.xml" -Dkafka.version="$version" \
	dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
	>"$cache/mvn.log" 2>&1; then
	echo "kafka/fetch.sh: mvn failed; last lines of $cache/mvn.log:" >&2
	tail -n 20 "$cache/mvn.log" >&2
	rm -rf "$tmp"
	exit 1
fi
[ -f "$tmp/kafka_2.13-$version.jar" ] || {
	echo "kafka/fetch.sh: no kafka_2.13-$version.jar after mvn" >&2
	rm -rf "$tmp"
	exit 1
}
rm -rf "$jars"
mv "$tmp" "$jars"
cp "$here/pom.xml" "$cache/pom.xml"
touch "$cache/.complete"
echo "$jars"
