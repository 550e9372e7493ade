#!/bin/sh
# The container's entrypoint (deploy/Containerfile): on the first start, a SoftHSM2 token with the
# PIN from STRONGROOM_TOKEN_PIN or the secret file STRONGROOM_TOKEN_PIN_FILE, a strongroom.toml
# that reads the PIN from either (never from argv), and `strongroom init`; then `strongroom serve`.
# A data directory that already has its strongroom.toml (a later start, or one written for a
# hardware HSM) is served as it is. Arguments are passed to `strongroom serve`.
set -eu
data=${STRONGROOM_DATA_DIR:-/var/lib/strongroom}
pin_file=${STRONGROOM_TOKEN_PIN_FILE:-/run/secrets/strongroom_token_pin}
token_dir=${STRONGROOM_SOFTHSM_TOKENDIR:-$data/tokens}
module=${STRONGROOM_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
umask 077

if [ ! -f "$data/strongroom.toml" ]; then
    if [ -n "${STRONGROOM_TOKEN_PIN:-}" ]; then
        pin=$STRONGROOM_TOKEN_PIN
    elif [ -r "$pin_file" ]; then
        pin=$(cat "$pin_file")
    else
        echo "strongroom: no token PIN: set STRONGROOM_TOKEN_PIN or mount it as the secret $pin_file" >&2
        exit 2
    fi
    if [ "${#pin}" -lt 4 ]; then
        echo "strongroom: the token PIN must have at least 4 characters" >&2
        exit 2
    fi
    mkdir -p "$data/softhsm" "$token_dir"
    conf=$data/softhsm/softhsm2.conf
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
        "$token_dir" >"$conf"
    if ! SOFTHSM2_CONF=$conf softhsm2-util --show-slots | grep -q 'Label:[[:space:]]*strongroom[[:space:]]*$'; then
        # The SO PIN is random and not kept: the token's user PIN is the only one an operator needs.
        so_pin=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
        SOFTHSM2_CONF=$conf softhsm2-util --init-token --free --label strongroom \
            --so-pin "$so_pin" --pin "$pin" >/dev/null
    fi
    unset pin so_pin
    tmp=$data/strongroom.toml.tmp
    cat >"$tmp" <<TOML
# Strongroom settings (written by the container's entrypoint on its first start).
# Every setting can be overridden by STRONGROOM_<SETTING> (host and port are, by the image).
[token]
module = "$module"
label = "strongroom"
# the PIN: the variable if it is set, else the secret file; never on a command line
pin_env = "STRONGROOM_TOKEN_PIN"
pin_file = "$pin_file"
softhsm2_conf = "softhsm/softhsm2.conf"
TOML
    mv "$tmp" "$data/strongroom.toml"
    # The organization id and the root API key's files (keys/root.*) are in init.json.
    strongroom --data-dir "$data" init >"$data/init.json"
    echo "strongroom: initialised $data: $(cat "$data/init.json")" >&2
fi
exec strongroom --data-dir "$data" serve "$@"
