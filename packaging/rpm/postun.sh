# stepup %postun ($1: 0 on erase, 1 on upgrade). RPM has no purge: erase
# keeps /var/lib/stepup (enrolled factors, history, audit key); delete it by
# hand to forget them (docs/deploy.md). On upgrade, run the new binary.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart stepupd.service >/dev/null 2>&1 || :
    fi
fi
# On erase the catalog file is gone; on upgrade it may have changed.
command -v journalctl >/dev/null 2>&1 && journalctl --update-catalog >/dev/null 2>&1 || :
