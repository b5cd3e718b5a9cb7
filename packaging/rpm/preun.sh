# stepup %preun ($1: 0 on erase, 1 on upgrade). On erase, stop and disable
# the daemon and warn about PAM stacks that still name the module about to go.
if [ "$1" -eq 0 ]; then
    wired=$(grep -l 'pam_stepup\.so' /etc/pam.d/* 2>/dev/null || :)
    if [ -n "$wired" ]; then
        echo "stepup: WARNING: these PAM files still name pam_stepup.so:" >&2
        echo "$wired" | sed 's/^/stepup:   /' >&2
        echo "stepup: with the module removed, their pam_stepup.so lines fail; edit them now." >&2
    fi
    systemctl --no-reload disable stepupd.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl stop stepupd.service >/dev/null 2>&1 || :
    fi
fi
