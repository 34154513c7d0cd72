# Sourced by ./build, ./chiral and .ci/run: finds a JDK >= 21 and a Maven >= 3.9 without any download
# host other than Maven Central (ARCHITECTURE §1). Sets CHIRAL_JAVA_HOME and CHIRAL_MVN.
CHIRAL_ROOT=${CHIRAL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
CHIRAL_MAVEN_VERSION=3.9.16

_chiral_java_major() { # $1 = java binary -> major version on stdout
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p' | head -n1
}

chiral_find_java() {
  [ -n "${CHIRAL_JAVA_HOME:-}" ] && return 0
  local cand best="" bestv=0 v
  for cand in "${JAVA_HOME:-}" /usr/lib/jvm/* /opt/java/* /usr/local/java/*; do
    [ -n "$cand" ] && [ -x "$cand/bin/java" ] && [ -x "$cand/bin/javac" ] || continue
    v=$(_chiral_java_major "$cand/bin/java"); v=${v:-0}
    if [ "$v" -ge 21 ] && [ "$v" -gt "$bestv" ]; then best=$cand; bestv=$v; fi
  done
  if [ -z "$best" ]; then
    echo "chiral: no JDK 21 or newer found (looked at \$JAVA_HOME and /usr/lib/jvm); install one, e.g. apt-get install openjdk-21-jdk" >&2
    return 1
  fi
  CHIRAL_JAVA_HOME=$best
  export CHIRAL_JAVA_HOME
}

chiral_find_mvn() {
  [ -n "${CHIRAL_MVN:-}" ] && return 0
  chiral_find_java || return 1
  local dist="$CHIRAL_ROOT/.mvn/dist/apache-maven-$CHIRAL_MAVEN_VERSION/bin/mvn" sysv
  if command -v mvn >/dev/null 2>&1; then
    sysv=$(JAVA_HOME=$CHIRAL_JAVA_HOME mvn -v 2>/dev/null | sed -n 's/^Apache Maven \([0-9]*\.[0-9]*\).*/\1/p')
    case "$sysv" in 3.9|3.1[0-9]|4.*) CHIRAL_MVN=$(command -v mvn); export CHIRAL_MVN; return 0;; esac
  fi
  if [ ! -x "$dist" ]; then
    command -v mvn >/dev/null 2>&1 || { echo "chiral: Maven is needed to fetch Maven $CHIRAL_MAVEN_VERSION (apt-get install maven)" >&2; return 1; }
    echo "chiral: fetching Maven $CHIRAL_MAVEN_VERSION from Maven Central into .mvn/dist" >&2
    # from an empty folder: inside the project, Maven 3.8 would load the project's Tycho extension and fail
    local scratch; scratch=$(mktemp -d)
    (cd "$scratch" && mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:unpack \
      -Dartifact=org.apache.maven:apache-maven:$CHIRAL_MAVEN_VERSION:zip:bin \
      -DoutputDirectory="$CHIRAL_ROOT/.mvn/dist") >&2 || { rm -rf "$scratch"; echo "chiral: could not fetch Maven $CHIRAL_MAVEN_VERSION" >&2; return 1; }
    rm -rf "$scratch"
    chmod +x "$dist"
  fi
  CHIRAL_MVN=$dist
  export CHIRAL_MVN
}

# The materialized headless node product.
chiral_product_dir() {
  echo "$CHIRAL_ROOT/product/target/products/io.chiral.node.product/linux/gtk/x86_64/chiral-node"
}
