#!/bin/sh
# Install relaywatch as a systemd service, from a checkout (normally /opt/relaywatch), as root:
#   the system user, the virtual environment, /etc/relaywatch with a commented config and an
#   owner-only secrets file, the state directory, and the unit. Safe to run again: it never
#   overwrites a config or secrets file that exists.
#
#   sudo deploy/install.sh
#
# Overrides (the deployment test uses them to install into a scratch root):
#   RELAYWATCH_USER (relaywatch), ETC_DIR (/etc/relaywatch), STATE_DIR (/var/lib/relaywatch),
#   UNIT_DIR (/etc/systemd/system), VENV (<checkout>/.venv), PYTHON (python3)
set -eu

user="${RELAYWATCH_USER:-relaywatch}"
etc="${ETC_DIR:-/etc/relaywatch}"
state="${STATE_DIR:-/var/lib/relaywatch}"
unit_dir="${UNIT_DIR:-/etc/systemd/system}"
checkout="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$checkout/.venv}"
python="${PYTHON:-python3}"

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (it creates a system user and writes to $etc)" >&2
    exit 2
fi

if ! id -u "$user" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$state" --no-create-home \
        --shell /usr/sbin/nologin "$user"
fi
# read the mail logs: Debian's adm group for /var/log/mail.log, systemd-journal for the journal
for group in adm systemd-journal; do
    if getent group "$group" >/dev/null; then usermod -a -G "$group" "$user"; fi
done

if [ ! -x "$venv/bin/relaywatch" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q "$checkout"
fi

# root owns the directory and the config; the service's group may read them, nobody else
install -d -m 0750 -o root -g "$user" "$etc"
if [ ! -e "$etc/config.toml" ]; then
    "$venv/bin/relaywatch" config init "$etc/config.toml" --secrets "$etc/secrets.env"
fi
chown root:"$user" "$etc/config.toml"
chmod 0640 "$etc/config.toml"
# relaywatch refuses a secrets file others can read; the service user owns it
chown "$user":"$user" "$etc/secrets.env"
chmod 0600 "$etc/secrets.env"

# systemd creates it too (StateDirectory=); made here so `relaywatch` works before the first start
install -d -m 0700 -o "$user" -g "$user" "$state"

install -d "$unit_dir"
sed -e "s#/opt/relaywatch#$checkout#g" \
    -e "s#/etc/relaywatch#$etc#g" \
    -e "s#^User=relaywatch#User=$user#" \
    -e "s#^Group=relaywatch#Group=$user#" \
    "$checkout/deploy/relaywatch.service" >"$unit_dir/relaywatch.service"
chmod 0644 "$unit_dir/relaywatch.service"

if [ -d /run/systemd/system ]; then
    systemd-analyze verify --man=no "$unit_dir/relaywatch.service"
    systemctl daemon-reload
fi

cat <<NEXT
relaywatch is installed. Next:
  1. add the Slack tokens to $etc/secrets.env
  2. set the resolver, the LAN and the log path in $etc/config.toml, then check it:
       sudo -u $user $venv/bin/relaywatch --config $etc/config.toml config check
  3. sudo systemctl enable --now relaywatch && journalctl -u relaywatch -f
NEXT
