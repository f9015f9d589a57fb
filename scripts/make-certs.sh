#!/usr/bin/env bash
# Makes a throw-away PKI for running Sotto on loopback: a CA, a server certificate for localhost/127.0.0.1, and
# client certificates client-1..client-N, all signed by that CA (EC P-256, valid 30 days).
#   usage: scripts/make-certs.sh DIR [NUM_CLIENTS]
# Files: DIR/ca.pem, DIR/server.pem + server.key, DIR/client-<i>.pem + client-<i>.key. Never use them in production.
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR [NUM_CLIENTS]}
clients=${2:-0}
mkdir -p "$dir"
cd "$dir"

days=30
ecparams=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

openssl req -x509 "${ecparams[@]}" -keyout ca.key -out ca.pem -days "$days" \
  -subj "/CN=Sotto throw-away CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

issue() {  # name subject-CN extensions
  local name=$1 cn=$2 ext=$3
  openssl req "${ecparams[@]}" -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
  printf '%s\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" -days "$days" \
    -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

issue server localhost "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"

for ((i = 1; i <= clients; i++)); do
  issue "client-$i" "client-$i" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
done
chmod 600 ./*.key
