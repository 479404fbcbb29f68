#!/usr/bin/env bash
# Installs from Debian what the interoperability tests need: Postfix, swaks, miltertest,
# PostgreSQL, an unpacked Exim, the DKIM/ARC/DMARC peers (dkimpy, OpenDKIM, OpenDMARC), and
# Chromium with chromedriver for the tests that load generated HTML in a browser. It
# runs before `npm test`. As root it installs whatever is missing (one `apt-get update`, then
# `apt-get install -y`); otherwise it says loudly what is missing, and the tests that need it
# skip themselves, naming it again.
set -u

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

have /usr/sbin/postfix || missing+=(postfix)
have swaks || missing+=(swaks)
have miltertest || missing+=(miltertest)
have_postgres || missing+=(postgresql)
# Debian's exim4 conflicts with postfix, so Exim is unpacked, not installed: the binary under
# /opt/mailgate-test/exim4 (run with -C and -bh by test/support/exim.ts), the libraries it links
# that postfix does not pull in, and its compiled-in user, which must exist even when the test
# configuration runs it as nobody.
EXIM_ROOT=/opt/mailgate-test/exim4
EXIM="$EXIM_ROOT/usr/sbin/exim4"
exim_libs_ok() { [ -x "$EXIM" ] && ! ldd "$EXIM" 2>/dev/null | grep -q 'not found'; }
have_exim() { exim_libs_ok && getent passwd Debian-exim >/dev/null; }
have_exim || missing+=(exim4-daemon-light)
# The DKIM and ARC peers (test/support/dkim-peers.ts): dkimpy's module and scripts, which Debian
# installs for its own /usr/bin/python3 (not whatever python3 comes first on PATH), and authres,
# which dkimpy's ARC sealing imports but the package only suggests; OpenDKIM's signer/verifier and
# opendkim-tools (opendkim-testmsg, opendkim-genkey); OpenDMARC for the DMARC benchmark.
have_python_module() { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }
{ have_python_module dkim && have arcverify; } || missing+=(python3-dkim)
have_python_module authres || missing+=(python3-authres)
have /usr/sbin/opendkim || missing+=(opendkim)
have opendkim-testmsg || missing+=(opendkim-tools)
have /usr/sbin/opendmarc || missing+=(opendmarc)
# Headless Chromium driven over WebDriver (test/support/browser.ts) loads the HTML the report and
# the status page write.
have /usr/bin/chromium || missing+=(chromium)
have /usr/bin/chromedriver || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
  echo "pretest: postfix, swaks, miltertest, postgresql, exim (unpacked), python3-dkim," \
    "python3-authres, opendkim, opendkim-tools, opendmarc, chromium and chromium-driver are installed"
  exit 0
fi

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "================================================================" >&2
  echo "pretest: MISSING ${missing[*]}" >&2
  echo "pretest: not root (or no apt-get), so they cannot be installed here;" >&2
  echo "pretest: the interoperability tests that need them will be SKIPPED." >&2
  echo "================================================================" >&2
  exit 0
fi

echo "pretest: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix must not be configured as this machine's mailer, and PostgreSQL must not create and
# start a system cluster on the common port: the tests run their own, on ports of their own.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
fi
# OpenDMARC's database schema is optional (its reports); without this it pulls in dbconfig-mysql.
echo "opendmarc opendmarc/dbconfig-install boolean false" | debconf-set-selections
packages=()
want_exim=no
for m in "${missing[@]}"; do
  if [ "$m" = exim4-daemon-light ]; then
    want_exim=yes
    packages+=(libidn12)
  elif [ "$m" = opendmarc ]; then
    packages+=(opendmarc dbconfig-no-thanks)
  elif [ "$m" = chromium ]; then
    # Only recommended by chromium, but without a font the screenshots show no text.
    packages+=(chromium fonts-liberation)
  else
    packages+=("$m")
  fi
done
# OpenDKIM's and OpenDMARC's postinst start their daemons (milters on sockets of their own), which
# the tests never use. invoke-rc.d and deb-systemd-invoke ask policy-rc.d first; exit 101 means
# "do not start". A policy-rc.d already there (containers have one) is left as it is.
policy_rc=/usr/sbin/policy-rc.d
if [ ! -e "$policy_rc" ]; then
  printf '#!/bin/sh\n# mailgate pretest: no daemon starts while packages install\nexit 101\n' >"$policy_rc"
  chmod 755 "$policy_rc"
  trap 'rm -f "$policy_rc"' EXIT
fi
if ! apt-get update -q >/tmp/mailgate-apt-update.log 2>&1; then
  echo "pretest: apt-get update failed (see /tmp/mailgate-apt-update.log); interop tests may skip" >&2
  exit 0
fi
if ! apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "${packages[@]}" \
  >/tmp/mailgate-apt-install.log 2>&1; then
  echo "pretest: apt-get install ${packages[*]} failed (see /tmp/mailgate-apt-install.log)" >&2
  tail -n 20 /tmp/mailgate-apt-install.log >&2
  exit 0
fi
echo "pretest: installed ${packages[*]}"
for daemon in opendkim opendmarc; do
  pidfile="/run/$daemon/$daemon.pid"
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "pretest: WARNING: $daemon is running (pid $(cat "$pidfile")); the tests do not need it" >&2
  fi
done

if [ "$want_exim" = yes ]; then
  if [ ! -x "$EXIM" ]; then
    download=$(mktemp -d)
    if (cd "$download" && apt-get download -q exim4-daemon-light) >/tmp/mailgate-exim.log 2>&1 &&
      mkdir -p "$EXIM_ROOT" && dpkg-deb -x "$download"/exim4-daemon-light_*.deb "$EXIM_ROOT"; then
      echo "pretest: unpacked exim4-daemon-light into $EXIM_ROOT"
    else
      echo "pretest: could not download or unpack exim4-daemon-light (see /tmp/mailgate-exim.log)" >&2
    fi
    rm -rf "$download"
  fi
  if ! getent passwd Debian-exim >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      --user-group Debian-exim && echo "pretest: created the system user Debian-exim"
  fi
  if [ -x "$EXIM" ] && ! exim_libs_ok; then
    echo "================================================================" >&2
    echo "pretest: $EXIM lacks libraries; the Exim interop test will be SKIPPED:" >&2
    ldd "$EXIM" | grep 'not found' >&2
    echo "================================================================" >&2
  fi
fi
