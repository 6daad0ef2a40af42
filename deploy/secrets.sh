#!/bin/sh
# Every secret deploy/compose.yaml needs, fresh, as an env file:
#   sh deploy/secrets.sh deploy/.env     # written readable by you only; never overwritten
#   sh deploy/secrets.sh                 # printed instead
# Once only: new values replace the keyring master key (without it the sealed personal
# data cannot be opened) and every other key. Needs only openssl (1.1.1 or later, for
# Ed25519). Kubernetes takes the same values as Secrets (deploy/kubernetes/config.yaml);
# rotation is in docs/security.md.
set -eu

if [ $# -gt 0 ]; then
  if [ -e "$1" ]; then
    echo "$1 exists: its secrets are in use (rotate them one by one, docs/security.md)" >&2
    exit 1
  fi
  umask 077
  exec > "$1"
fi

# the services that sign what they publish, and every SASL user (crm/acls.py)
services="customer sales interaction analytics"
users="$services inbound operator exporter"

upper() { printf '%s' "$1" | tr '[:lower:]' '[:upper:]'; }

# An Ed25519 key: the base64 of its 32-byte seed (the last 32 bytes of the PKCS#8 DER
# form), and of its raw public key (the last 32 bytes of the SubjectPublicKeyInfo).
signing_key() {
  pem=$(openssl genpkey -algorithm ed25519)
  seed=$(printf '%s\n' "$pem" | openssl pkey -outform DER | tail -c 32 | openssl base64 -A)
  public=$(printf '%s\n' "$pem" | openssl pkey -pubout -outform DER | tail -c 32 | openssl base64 -A)
}

echo "CRM_AUTH_SECRET=$(openssl rand -base64 48 | tr -d '\n')"
echo "CRM_KEYRING_MASTER_KEY=$(openssl rand -base64 32)"
trusted=""
for service in $services; do
  signing_key
  echo "CRM_SIGNING_KEY_$(upper "$service")=$seed"
  trusted="$trusted${trusted:+, }\"$service\": [\"$public\"]"
done
echo "CRM_SIGNING_TRUSTED_KEYS='{$trusted}'"
for user in $users; do
  # hex: no character that SCRAM's configuration syntax or a shell would treat specially
  echo "CRM_KAFKA_PASSWORD_$(upper "$user")=$(openssl rand -hex 24)"
done
