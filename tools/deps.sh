#!/bin/sh
# Installs the Debian packages that building and testing logsponge need,
# only those that are missing.  Used by `make deps`, `make check`, `make
# demo` and CI.
set -e
PKGS="gcc make pkg-config libc6-dev libsqlite3-dev sqlite3 libesmtp-dev
libssl-dev openssl check libsubunit-dev libinih-dev libjansson-dev
zlib1g-dev python3 python3-aiosmtpd time man-db groff-base msmtp
rsyslog rsyslog-relp clang libclang-rt-14-dev valgrind postfix dovecot-core
maildrop mpack libemail-mime-perl chromium libglib2.0-0
libvectorscan-dev logcheck-database logrotate libsystemd-dev python3-venv
python3-wheel-whl python3-setuptools-whl
systemd-journal-remote"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: all build and test packages present"
	exit 0
fi
echo "deps: installing Debian packages:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
		echo "deps: not root and no sudo; install:$missing" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix and Dovecot are test peers, started by the tests from private
# configuration directories: no system configuration, no service started
# (a policy-rc.d that says no, unless the machine has one already).
echo "postfix postfix/main_mailer_type select No configuration" |
	$SUDO debconf-set-selections
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	made_policy=1
fi
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
[ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
echo "deps: done"
