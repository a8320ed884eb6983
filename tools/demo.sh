#!/usr/bin/env bash
# Show the collection at work without Azure: start the IMDS emulator with the
# load balancer answer from Microsoft's documentation, then run
# examples/playbook.yml against this machine, which gathers
# imds.azure.loadbalancer_facts from the emulator, prints them, and renders
# an nginx configuration from them with the nginx_frontends role (HTTPS on
# the rule's backend port 443, with a self-signed certificate made here).
#
# Steps: tools/setup.sh; build and install the collection into
# .cache/collections; start tools/imds_emulator.py on 127.0.0.1 (a free
# port); run the playbook; stop the emulator, even on failure or Ctrl-C; show
# the listeners of the rendered configuration and what to do next.
# Exits non-zero when any step fails.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCENARIO="${IMDS_SCENARIO:-documented}"
DEMO_DIR="${REPO_ROOT}/.cache/demo"
COLLECTIONS_PATH="${REPO_ROOT}/.cache/collections"

say() { printf '==> %s\n' "$*"; }
die() { printf '==> demo failed: %s\n' "$*" >&2; exit 1; }

EMULATOR_STARTED=""
# The test support's launcher starts the emulator, waits until it is ready and
# stops it by the PID it recorded (tests/support/emulator.py).
stop_emulator() {
    if [[ -n "${EMULATOR_STARTED}" ]]; then
        "${PYTHON}" "${REPO_ROOT}/tests/support/emulator.py" --workdir "${DEMO_DIR}/emulator" --stop || true
    fi
    EMULATOR_STARTED=""
}
trap stop_emulator EXIT
trap 'exit 130' INT TERM

say "setting up (tools/setup.sh)"
bash "${REPO_ROOT}/tools/setup.sh"
PYTHON="${REPO_ROOT}/.venv/bin/python"
export PATH="${REPO_ROOT}/.venv/bin:${PATH}"

rm -rf "${DEMO_DIR}"
mkdir -p "${DEMO_DIR}/dist" "${COLLECTIONS_PATH}"
# Settings of the user's own ansible.cfg would change what the demo shows.
export ANSIBLE_CONFIG="${DEMO_DIR}/ansible.cfg"
printf '[defaults]\nretry_files_enabled = false\n' >"${ANSIBLE_CONFIG}"
export ANSIBLE_COLLECTIONS_PATH="${COLLECTIONS_PATH}"
export ANSIBLE_LOCAL_TEMP="${DEMO_DIR}/ansible-tmp"

say "building and installing the collection into .cache/collections"
ansible-galaxy collection build "${REPO_ROOT}" --output-path "${DEMO_DIR}/dist" >"${DEMO_DIR}/build.log" 2>&1 \
    || { cat "${DEMO_DIR}/build.log" >&2; die "ansible-galaxy collection build"; }
tarball="$(ls "${DEMO_DIR}"/dist/imds-azure-*.tar.gz)"
ansible-galaxy collection install --offline --force -p "${COLLECTIONS_PATH}" "${tarball}" >"${DEMO_DIR}/install.log" 2>&1 \
    || { cat "${DEMO_DIR}/install.log" >&2; die "ansible-galaxy collection install"; }

say "starting the IMDS emulator (scenario: ${SCENARIO})"
EMULATOR_STARTED=1
endpoint="$("${PYTHON}" "${REPO_ROOT}/tests/support/emulator.py" --workdir "${DEMO_DIR}/emulator" -- \
    --scenario "${SCENARIO}" --host 127.0.0.1 --port 0)" \
    || { cat "${DEMO_DIR}/emulator/emulator.log" >&2 2>/dev/null; die "the emulator did not start"; }
say "emulator listening on ${endpoint}"

# The role writes nginx.conf here instead of /etc/nginx, and nginx -t checks it.
# nginx -t binds the listen addresses; the scenario's private IPs are not on
# this machine, so the demo listens on all addresses of the rules' ports.
# The documented rules send frontend port 80 to backend port 443: serve it
# with TLS, from a self-signed certificate for demo.example.test.
nginx_dir="${DEMO_DIR}/nginx"
mkdir -p "${nginx_dir}/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj "/CN=demo.example.test" -addext "subjectAltName=DNS:demo.example.test" \
    -keyout "${nginx_dir}/tls/demo.key" -out "${nginx_dir}/tls/demo.crt" >"${DEMO_DIR}/openssl.log" 2>&1 \
    || { cat "${DEMO_DIR}/openssl.log" >&2; die "openssl could not make the demo certificate"; }
cat >"${DEMO_DIR}/nginx-vars.yml" <<VARS
nginx_frontends_listen_all_addresses: true
nginx_frontends_conf_path: ${nginx_dir}/nginx.conf
nginx_frontends_pid_path: ${nginx_dir}/nginx.pid
nginx_frontends_error_log: ${nginx_dir}/error.log
nginx_frontends_access_log: ${nginx_dir}/access.log
nginx_frontends_tls_dir: ${nginx_dir}/tls
nginx_frontends_http_includes: []
nginx_frontends_server_names: [demo.example.test]
nginx_frontends_sites:
  "443":
    tls:
      certificate: ${nginx_dir}/tls/demo.crt
      key: ${nginx_dir}/tls/demo.key
      http2: true
VARS

say "running examples/playbook.yml"
rc=0
ansible-playbook -i "${REPO_ROOT}/examples/inventory.yml" "${REPO_ROOT}/examples/playbook.yml" \
    -e "imds_endpoint=${endpoint}" -e "@${DEMO_DIR}/nginx-vars.yml" || rc=$?

stop_emulator
if [[ ${rc} -ne 0 ]]; then
    die "ansible-playbook exited ${rc}"
fi
say "the facts above came from the emulator at ${endpoint}"
conf="${nginx_dir}/nginx.conf"
[[ -s "${conf}" ]] || die "the role wrote no configuration to ${conf}"
nginx -t -q -c "${conf}" || die "nginx -t rejects ${conf}"
say "nginx configuration rendered from those facts and accepted by nginx -t: ${conf}"
say "listeners in it:"
awk '/^    # (Port|TCP port|UDP port|Health endpoint)/ { sub(/^ +# /, ""); print "      " $0 }
     /^ +listen / { sub(/^ +listen /, ""); sub(/;$/, ""); print "          listen " $0 }' "${conf}"
cat <<NEXT
==> what next:
      serve it here:   nginx -c ${conf}    (stop: nginx -s quit -c ${conf})
                       curl --cacert ${nginx_dir}/tls/demo.crt --resolve demo.example.test:443:127.0.0.1 \\
                         https://demo.example.test/healthz
      preview changes: run the role with --check: nginx -t checks the candidate and nothing is written
      other answers:   IMDS_SCENARIO=ipv6-dual-stack ./tools/demo.sh   (python tools/imds_emulator.py --list-scenarios)
      on Azure:        ansible-playbook -i YOUR_INVENTORY examples/playbook.yml --become   (no imds_endpoint)
      read:            docs/nginx_frontends.md (TLS, drain, idle timeout, PROXY protocol, check mode)
NEXT
