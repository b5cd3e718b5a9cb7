# stepup %post ($1: 1 on install, 2 on upgrade). Never edits /etc/pam.d; the
# default policy is report-only.
install -d -m 0700 -o root -g root /var/lib/stepup
# journalctl -x explains stepup's events from the catalog we ship.
command -v journalctl >/dev/null 2>&1 && journalctl --update-catalog >/dev/null 2>&1 || :
if [ "$1" -eq 1 ]; then
    # The module asks a running daemon, so the unit starts at boot. Enabled
    # on first install only: an administrator's "disable" survives upgrades.
    systemctl enable stepupd.service >/dev/null 2>&1 || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    [ "$1" -eq 1 ] && systemctl start stepupd.service >/dev/null 2>&1 || :
fi
if [ -S /run/dbus/system_bus_socket ] && command -v dbus-send >/dev/null 2>&1; then
    dbus-send --system --type=method_call --dest=org.freedesktop.DBus \
        / org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || :
fi
